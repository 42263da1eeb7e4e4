"""pymoo owns the loop: the callbacks, the termination with its spending caps, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from pymoo.core.callback import CallbackCollection
from pymoo.core.termination import TerminateIfAny
from standin import CapacityStandIn

from xpert_evo.app import CONF_DIR
from xpert_evo.search import SearchRun, SpendCaps, build_search, load_checkpoint
from xpert_evo.search.callbacks import (
    ArchiveCallback,
    CheckpointCallback,
    HistoryCallback,
    RoundsCallback,
)
from xpert_evo.search.termination import SearchClock, SpendTermination, budget_progress

TINY = ["accuracy=naswot", "constraints.precision_loss_pp=null", "algorithm.pop_size=16",
        "algorithm.n_gen=5", "accuracy.budget.initial=12", "accuracy.budget.per_round=3",
        "accuracy.budget.rounds=2"]


def setup_of(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*TINY, *overrides])
    return build_search(cfg, estimator=CapacityStandIn())


def test_pymoo_runs_the_loop_with_our_termination_and_callbacks(tmp_path: Path) -> None:
    run = SearchRun(setup_of(), tmp_path).start()
    algorithm = run.algorithm
    assert isinstance(algorithm.termination, TerminateIfAny)
    assert isinstance(algorithm.termination.criteria[1], SpendTermination)
    assert isinstance(algorithm.callback, CallbackCollection)
    kinds = [type(c) for c in algorithm.callback.callbacks]
    assert kinds == [ArchiveCallback, RoundsCallback, HistoryCallback, CheckpointCallback]
    res = run.run()
    assert algorithm.n_gen == 6  # pymoo counted 5 generations done
    assert res.history["generation"].tolist() == [1, 2, 3, 4, 5]
    # the archive callback keeps every evaluated design with the problem's accuracy outputs
    assert len(res.archive) == algorithm.evaluator.n_eval == 80
    assert set(res.archive.origin) <= {"proxy", "surrogate"}
    assert budget_progress(algorithm.termination) == 1.0


def test_rounds_follow_the_configured_budget_not_the_caps(tmp_path: Path) -> None:
    res = SearchRun(setup_of("algorithm.n_gen=6"), tmp_path).start().run()
    # two rounds at half and all of the 6 generations
    assert res.history["refit"].tolist() == [False, False, True, False, False, True]


def test_a_spent_cap_stops_the_run_and_runs_the_remaining_rounds(tmp_path: Path) -> None:
    run = SearchRun(setup_of("algorithm.n_gen=10"), tmp_path, caps=SpendCaps(cost_evals=40))
    res = run.start().run()
    assert len(res.archive) == run.cost_evals == 40
    assert res.history["n_evals"].tolist() == [16, 32, 40]
    assert run.rounds.done == 2 and res.history["refit"].iloc[-1]


def test_the_search_clock_counts_on_across_a_pickle() -> None:
    import pickle

    clock = SearchClock(before_s=10.0)
    again = pickle.loads(pickle.dumps(clock))
    assert 10.0 <= again.seconds() < 11.0 and again.started >= clock.started


def test_resume_rebuilds_termination_and_callbacks(tmp_path: Path) -> None:
    out = tmp_path / "a"
    out.mkdir()
    SearchRun(setup_of("algorithm.n_gen=2"), out).start().run()
    state = load_checkpoint(out)
    assert state["algorithm"].callback is None and state["algorithm"].problem is None
    assert state["algorithm"].n_gen == 2  # written in generation 2's callback
    run = SearchRun(setup_of("algorithm.n_gen=4"), tmp_path).resume(state)
    assert run.algorithm.n_gen == 3 and not run.algorithm.termination.has_terminated()
    res = run.run()
    assert res.history["generation"].tolist() == [1, 2, 3, 4]
    assert np.isfinite(res.history["hypervolume"]).all()

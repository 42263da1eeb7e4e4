"""Search: problem, constraints, duplicates, fronts, termination, checkpoint/resume (stand-in)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from pymoo.core.population import Population
from standin import CapacityStandIn

from xpert_evo.accuracy import AccuracyEstimate, search_predictor
from xpert_evo.app import CONF_DIR
from xpert_evo.config import ConfigError
from xpert_evo.search import (
    HW_METRICS,
    Bounds,
    CoDesignProblem,
    SearchRun,
    SpendCaps,
    build_search,
    load_checkpoint,
    nondominated,
)
from xpert_evo.search.algorithms import ArchiveDuplicateElimination
from xpert_evo.search.archive import Archive
from xpert_evo.search.rounds import candidates
from xpert_evo.space.genome import Genomes

EDAP = HW_METRICS.index("edap")
TINY = [
    "accuracy=naswot",  # the proxy + surrogate machinery (a stand-in replaces the proxy)
    "constraints.precision_loss_pp=null",  # mechanics under test; the penalty has its own tests
    "algorithm.pop_size=16",
    "algorithm.n_gen=6",
    "accuracy.budget.initial=12",
    "accuracy.budget.per_round=3",
    "accuracy.budget.rounds=2",
]


def config(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[*TINY, *overrides])


def setup_of(*overrides: str, noise: float = 0.0):
    return build_search(config(*overrides), estimator=CapacityStandIn(noise=noise))


def run(tmp_path: Path, *overrides: str, on_generation=None):
    out = tmp_path / "run"
    out.mkdir(parents=True, exist_ok=True)
    return SearchRun(setup_of(*overrides), out, on_generation).start().run()


def test_nondominated_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    f = rng.integers(0, 8, size=(300, 2)).astype(float)  # many ties
    idx = set(nondominated(f).tolist())
    for i in range(len(f)):
        dominated = np.any(np.all(f <= f[i], axis=1) & np.any(f < f[i], axis=1))
        assert (i in idx) == (not dominated)


def test_problem_is_vectorised_and_consistent() -> None:
    setup = setup_of(
        "constraints.latency_ns=1e6", "constraints.accuracy_floor=0.3",
        "constraints.precision_loss_pp=1.0",
    )
    accuracy = search_predictor(setup.estimator, setup.penalty, False, False, setup.backbone)
    problem = CoDesignProblem(setup.space, setup.cost_model, accuracy, setup.constraints)
    x = setup.space.random(64, np.random.default_rng(0))
    out = problem.evaluate(x, return_values_of=["F", "G", "hw", "net", "loss_pp", "clean"],
                           return_as_dictionary=True)
    rep = setup.cost_model.evaluate(setup.space.decode(x))
    assert out["F"].shape == (64, 2) and out["G"].shape == (64, 4)
    np.testing.assert_allclose(out["F"][:, 1], np.log10(rep.edap), rtol=1e-6)
    np.testing.assert_allclose(out["F"][:, 0], -out["net"])
    np.testing.assert_array_equal(out["net"], out["clean"])  # proxy scale: nothing subtracted
    np.testing.assert_allclose(out["G"][:, 0], rep.area_mm2 / setup.constraints.area_mm2 - 1,
                               rtol=1e-5)
    np.testing.assert_allclose(out["G"][:, 1], rep.latency_ns / 1e6 - 1, rtol=1e-5)
    assert np.all((out["G"][:, 2] <= 0) == (out["net"] >= 0.3))
    loss = setup.penalty.predict(setup.space.decode(x))  # proxy scale: a bound, not a subtraction
    limit = setup.constraints.precision_loss_pp
    np.testing.assert_allclose(out["loss_pp"], loss)
    np.testing.assert_allclose(out["G"][:, 3], loss / limit - 1)
    assert out["hw"].shape == (64, len(HW_METRICS))


def test_no_infeasible_design_on_the_front(tmp_path: Path) -> None:
    res = run(tmp_path, "constraints.area_mm2=50")
    a = res.archive
    area = a.hw[:, HW_METRICS.index("area_mm2")]
    assert (area > 50).any(), "the budget should cut off part of the space"
    assert len(res.front) > 0
    assert np.all(area[res.front] <= 50)
    assert np.all(a.cv[res.front] == 0)
    np.testing.assert_array_equal(a.cv > 0, area > 50)


def test_first_generation_seeds_feasible_designs(tmp_path: Path) -> None:
    res = run(tmp_path, "constraints.precision_loss_pp=1.0", "algorithm.n_gen=1")
    a, space = res.archive, res.setup.space
    assert len(a) == 16 and (a.generation == 1).all()
    genomes = space.decode(a.x)
    base = space.baseline
    seeded = np.ones(len(a), dtype=bool)
    for gene in ("col_share", "adc_flash", "adc_bits", "input_bits"):
        seeded &= (getattr(genomes, gene) == getattr(base, gene)).all(axis=1)
    assert seeded.sum() == 5  # the 4 uniform-width anchors and VGG16's channels
    anchors = np.repeat(np.sort(space.options["channels"])[:, None], 13, axis=1)
    np.testing.assert_array_equal(genomes.channels[seeded][:4], anchors)
    assert (a.cv[seeded] <= 0).any() and len(res.front) > 0
    assert (a.cv[~seeded] > 0).all(), "random peripheral genes break the precision bound"


def test_no_design_is_evaluated_twice(tmp_path: Path) -> None:
    res = run(tmp_path, "algorithm.n_gen=8")
    x = res.archive.x
    assert len(np.unique(x, axis=0)) == len(x)
    assert res.history["n_evals"].iloc[-1] == len(x)


def test_duplicate_elimination_against_archive_and_itself() -> None:
    archive = Archive(4)
    seen = np.array([[0, 1, 2, 3]])
    one = np.array([0.5])
    archive.add(seen, 1, np.ones((1, len(HW_METRICS))),
                AccuracyEstimate(one, one * 0, one, one * 0, np.array(["proxy"])), [0.0])
    pop = Population.new(X=np.array([[0, 1, 2, 3], [1, 1, 1, 1], [1, 1, 1, 1], [2, 2, 2, 2]]))
    kept = ArchiveDuplicateElimination(archive).do(pop)
    np.testing.assert_array_equal(kept.get("X"), [[1, 1, 1, 1], [2, 2, 2, 2]])
    other = Population.new(X=np.array([[2, 2, 2, 2]]))
    kept = ArchiveDuplicateElimination(archive).do(pop, other)
    np.testing.assert_array_equal(kept.get("X"), [[1, 1, 1, 1]])


def test_surrogate_rounds_spend_the_true_budget(tmp_path: Path) -> None:
    res = run(tmp_path)
    # 12 initial (incl. 4 uniform-width anchors and the baseline) + 2 rounds x 3
    assert res.accuracy.n_scored == 12 + 2 * 3
    assert len(res.accuracy.fits) == 3
    assert res.history["refit"].sum() == 2
    assert res.history["refit"].iloc[-1]
    # accuracy of measured designs is the true score, of the others the surrogate's
    channels = res.setup.space.decode(res.archive.x).channels
    known = res.accuracy.known(channels)
    np.testing.assert_array_equal(res.archive.origin == "proxy", known)
    np.testing.assert_array_equal(res.archive.origin[~known], "surrogate")
    np.testing.assert_allclose(res.archive.net[known], res.accuracy.score(channels[known]))
    assert (res.archive.std[known] == 0).all() and (res.archive.std[~known] > 0).all()


def test_random_search_uses_the_same_budget(tmp_path: Path) -> None:
    res = run(tmp_path, "algorithm=random", "algorithm.pop_size=16", "algorithm.n_gen=6")
    assert res.history["n_evals"].tolist() == [16 * g for g in range(1, 7)]


def test_termination_by_evaluations_and_time(tmp_path: Path) -> None:
    res = run(tmp_path, "algorithm.n_gen=null", "algorithm.n_evals=40")
    assert len(res.archive) == 48  # checked after each generation of 16
    res = run(tmp_path, "algorithm.n_gen=null", "algorithm.max_time_s=0.5")
    assert res.search_s >= 0.5 and len(res.history) >= 1
    with pytest.raises(ConfigError, match="never stops"):
        setup_of("algorithm.n_gen=null")


def test_spend_caps_cut_the_generation_that_would_overspend(tmp_path: Path) -> None:
    # no surrogate: every new channel list costs a true call (5 anchors + baseline first)
    capped = SpendCaps(true_calls=24)
    res = SearchRun(setup_of("accuracy.surrogate=null", "algorithm.n_gen=10"), tmp_path / "a",
                    caps=capped).start().run()
    assert res.accuracy.n_scored == 24
    n_evals = res.history["n_evals"].unique().tolist()
    assert n_evals[:-1] == [16 * g for g in range(1, len(n_evals))] and n_evals[-1] % 16
    # cost-model evaluations: the third generation of 16 is cut to 8
    res = SearchRun(setup_of("algorithm.n_gen=10"), tmp_path / "b",
                    caps=SpendCaps(cost_evals=40)).start().run()
    assert res.history["n_evals"].unique().tolist() == [16, 32, 40] and len(res.archive) == 40
    # surrogate rounds score fewer candidates once the cap is near: 12 + 3, not 12 + 2 x 3
    res = SearchRun(setup_of(), tmp_path / "c", caps=SpendCaps(true_calls=15)).start().run()
    assert res.accuracy.n_scored == 15
    with pytest.raises(ValueError, match="anchors and baseline"):
        SearchRun(setup_of(), tmp_path / "d", caps=SpendCaps(true_calls=3)).start()


def test_hypervolume_reference_is_fixed_by_the_space(tmp_path: Path) -> None:
    a = SearchRun(setup_of(), tmp_path).start()
    b = SearchRun(setup_of("algorithm=random", "seed=5"), tmp_path).start()
    np.testing.assert_array_equal(a.bounds.ideal, b.bounds.ideal)
    np.testing.assert_array_equal(a.bounds.nadir, b.bounds.nadir)
    bounds = Bounds(ideal=np.zeros(2), nadir=np.ones(2))
    assert bounds.hypervolume(np.array([[0.0, 0.0]])) == pytest.approx(1.21)
    assert bounds.hypervolume(np.array([[2.0, 0.0]])) == 0.0


def test_checkpoint_written_every_generation_and_atomic(tmp_path: Path) -> None:
    gens = []

    def spy(run: SearchRun, generation: int) -> None:
        state = load_checkpoint(run.out_dir)
        gens.append((generation, state["history"][-1]["generation"]))

    run(tmp_path, on_generation=spy)
    assert gens == [(g, g) for g in range(1, 7)]
    assert not list((tmp_path / "run").glob("*.tmp"))


@pytest.mark.parametrize("algorithm", ["nsga2", "random"])
def test_resume_equals_uninterrupted(tmp_path: Path, algorithm: str) -> None:
    overrides = (f"algorithm={algorithm}", *TINY, "seed=3")
    full = run(tmp_path / "full", *overrides)

    class Stop(KeyboardInterrupt):
        pass

    def interrupt(run: SearchRun, generation: int) -> None:
        if generation == 3:
            raise Stop

    with pytest.raises(Stop):
        run(tmp_path / "cut", *overrides, on_generation=interrupt)
    state = load_checkpoint(tmp_path / "cut" / "run")
    assert state["history"][-1]["generation"] == 3
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    resumed = SearchRun(setup_of(*overrides), resumed_dir).resume(state).run()

    np.testing.assert_array_equal(resumed.archive.x, full.archive.x)
    np.testing.assert_array_equal(resumed.archive.x[resumed.front], full.archive.x[full.front])
    np.testing.assert_array_equal(resumed.archive.objectives(), full.archive.objectives())
    assert resumed.history["hypervolume"].tolist() == full.history["hypervolume"].tolist()


def test_resume_can_extend_the_generation_budget(tmp_path: Path) -> None:
    out = tmp_path / "a"
    out.mkdir()
    SearchRun(setup_of("algorithm.n_gen=3"), out).start().run()
    state = load_checkpoint(out)
    longer = SearchRun(setup_of("algorithm.n_gen=5"), tmp_path).resume(state).run()
    assert longer.history["generation"].tolist() == [1, 2, 3, 4, 5]


def test_resume_without_checkpoint_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="resume=.*no checkpoint.pkl"):
        load_checkpoint(tmp_path)


def test_candidates_spread_along_the_front(tmp_path: Path) -> None:
    search = SearchRun(setup_of("accuracy.budget.rounds=0", "algorithm.pop_size=48"), tmp_path)
    search.start()  # no refit rounds: the run does not depend on what candidates() picks
    search.run()
    a, k = search.archive, 5
    scored = a.origin == "proxy"
    eligible = np.flatnonzero((a.cv <= 0) & ~scored)
    front = eligible[nondominated(a.objectives()[eligible])]
    front = front[np.argsort(a.hw[front, EDAP])]
    assert len(front) >= 2 * k, "the run should leave a long unmeasured front to pick from"
    picks = candidates(a, search.setup, k)
    assert len(picks) == k
    assert not scored[picks].any() and np.all(a.cv[picks] == 0)
    channels = search.setup.space.decode(a.x[picks]).channels
    assert len(np.unique(channels, axis=0)) == k
    assert np.isin(picks, front).all()  # the best front first
    ranks = np.sort(np.searchsorted(a.hw[front, EDAP], a.hw[picks, EDAP]))
    assert ranks[0] == 0  # the lowest-EDAP design of the front is picked
    assert np.diff(ranks).min() >= 2, f"picks sit next to each other on the front: {ranks}"
    log_edap = np.log10(a.hw[front, EDAP])
    picked = np.log10(a.hw[picks, EDAP])
    assert np.ptp(picked) >= 0.6 * np.ptp(log_edap), "picks should span most of the front"


PENALTY = [
    "penalty=none",
    "penalty.model=precision_penalty_v1",
    "+penalty.a_in=-6.0",
    "+penalty.k_in=0.5",
    "+penalty.a_adc=-6.0",
    "+penalty.k_adc=0.5",
    "+penalty.chance_pct=10.0",
    "+penalty.max_loss_pp=60.0",
]


def test_precision_penalty_constraint_keeps_low_precision_off_the_front(tmp_path: Path) -> None:
    penalty = setup_of(*PENALTY).penalty
    free = run(tmp_path / "free", "constraints.precision_loss_pp=null")
    free_loss = penalty.predict(free.setup.space.decode(free.archive.x[free.front]))
    limit = float(np.median(free_loss))  # without the bound, half the front loses more
    assert free_loss.max() > limit
    bounded = run(tmp_path / "bounded", *PENALTY, f"constraints.precision_loss_pp={limit}")
    loss = penalty.predict(bounded.setup.space.decode(bounded.archive.x[bounded.front]))
    assert len(bounded.front) and loss.max() <= limit
    low = Genomes.uniform([64] * 13, 8, "flash", 3, 2)
    assert penalty.predict(low)[0] > limit


def test_precision_budget_without_penalty_names_both_keys() -> None:
    with pytest.raises(ConfigError, match="constraints.precision_loss_pp.*penalty="):
        setup_of("penalty=none", "constraints.precision_loss_pp=1.0")

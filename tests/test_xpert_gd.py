"""XPert's gradient search (working and degenerate straight-through gate) and best peripherals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from standin import CapacityStandIn

from xpert_evo.app import CONF_DIR
from xpert_evo.config import ConfigError
from xpert_evo.search import SearchRun, SpendCaps, build_search
from xpert_evo.search.peripheral import PERIPHERAL_GENES, best_peripherals
from xpert_evo.search.xpert_gd import XPertGD
from xpert_evo.space.genome import Genomes

GD = [
    "algorithm=xpert_gd",
    "algorithm.n_gen=4",
    "algorithm.steps_per_gen=5",
    "accuracy.surrogate=null",
]


def setup_of(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*GD, *overrides])
    return build_search(cfg, estimator=CapacityStandIn())


def started(tmp_path: Path, *overrides: str) -> SearchRun:
    return SearchRun(setup_of(*overrides), tmp_path).start()


def test_working_gradient_lowers_the_loss(tmp_path: Path) -> None:
    run = started(tmp_path, "algorithm.lr=5.0")
    algo: XPertGD = run.algorithm
    space = run.setup.space
    first = algo.loss(space.decode(algo.current()[None]))[0][0]
    spent = algo.data["n_cost_evals"]
    for _ in range(30):
        algo.gradient_step(algo.current())
    last = algo.loss(space.decode(algo.current()[None]))[0][0]
    assert last < first
    # every step costs all single-gene changes of the genes it moves
    per_step = len(algo.neighbours(algo.current()))
    assert algo.data["n_cost_evals"] - spent == 30 * per_step + 1  # + the last loss() above
    assert per_step == (4 + 5 + 2) * 13  # channels, col_share, adc type; bits held


def test_phase_one_holds_the_baselines_precision(tmp_path: Path) -> None:
    """fixed_precision (XPert's phase 1): every proposed design keeps VGG16's input and ADC bits;
    without it the latency loss moves them."""
    def bits(*overrides: str) -> set[tuple[int, ...]]:
        run = started(tmp_path / str(len(overrides)), "algorithm.lr=5.0", *overrides)
        res = run.run()
        genomes = run.setup.space.decode(res.archive.x)
        return {tuple(b) for b in np.hstack([genomes.input_bits, genomes.adc_bits])}

    base = started(tmp_path / "base").setup.space.baseline
    assert bits() == {tuple(np.hstack([base.input_bits, base.adc_bits])[0])}
    assert len(bits("algorithm.fixed_precision=false")) > 1


def test_cost_cap_stops_the_gradient_steps_in_time(tmp_path: Path) -> None:
    cap = 2000
    run = SearchRun(setup_of("algorithm.n_gen=20"), tmp_path, caps=SpendCaps(cost_evals=cap))
    run.start().run()
    algo: XPertGD = run.algorithm
    step_cost = len(algo.neighbours(algo.current()))
    assert cap - step_cost < run.cost_evals <= cap
    assert run.cost_evals == len(run.archive) + algo.data["n_cost_evals"]
    assert algo.data["n_cost_evals"] % step_cost == 0  # the acceptance test reuses evaluations


def test_degenerate_gate_passes_no_gradient(tmp_path: Path) -> None:
    run = started(tmp_path, "algorithm.degenerate=true", "algorithm.noise_std=0.0")
    algo: XPertGD = run.algorithm
    before = [t.copy() for t in algo.logits]
    for _ in range(5):
        algo.gradient_step(algo.current())
    for t, b in zip(algo.logits, before, strict=True):
        np.testing.assert_array_equal(t, b)
    assert algo.data["n_cost_evals"] == 0


def test_degenerate_with_noise_is_a_random_walk(tmp_path: Path) -> None:
    run = started(tmp_path, "algorithm.degenerate=true", "algorithm.noise_std=1.0")
    algo: XPertGD = run.algorithm
    designs = set()
    for _ in range(10):
        designs.add(tuple(algo.current()))
        algo.gradient_step(algo.current())
    assert len(designs) > 5


def test_xpert_gd_runs_in_the_search_loop_and_accepts_within_area(tmp_path: Path) -> None:
    run = started(
        tmp_path,
        "algorithm.n_gen=6",
        "algorithm.lr=5.0",
        "algorithm.area_tolerance=0.5",
        "algorithm.proxy_window=[0.0,null]",
    )
    res = run.run()
    algo: XPertGD = run.algorithm
    assert len(res.archive) > 0
    assert algo.data["n_accepted"] > 0
    best = algo.best
    assert abs(best["area_mm2"] / algo.area_target_mm2 - 1) <= 0.5
    assert res.archive.contains(best["x"][None])[0]
    accepted_latency = best["latency_ns"]
    rep = run.setup.cost_model.evaluate(run.setup.space.decode(res.archive.x), breakdown=False)
    in_area = np.abs(np.asarray(rep.area_mm2) / algo.area_target_mm2 - 1) <= 0.5
    assert accepted_latency <= np.asarray(rep.latency_ns)[in_area].min() + 1e-6


def test_with_a_percent_objective_the_window_is_in_points_of_vggs_prediction(
    tmp_path: Path,
) -> None:
    """With the measured source, acceptance reads the predicted net % (the objective), within
    `accuracy_window_pp` of VGG16's predicted net %, not a ratio of scores."""
    def run_with(window: str) -> XPertGD:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=[
                *GD[:3], "algorithm.n_gen=6", "algorithm.lr=5.0", "algorithm.area_tolerance=0.5",
                f"algorithm.accuracy_window_pp={window}"])
        run = SearchRun(build_search(cfg), tmp_path / window.strip("[]").replace(",", "_"))
        run.start().run()
        return run.algorithm

    wide = run_with("[null,null]")
    vgg = wide.problem.accuracy.predict(wide.space.baseline)
    assert wide.percent and wide.baseline_score == pytest.approx(float(vgg.net[0]))
    assert wide.data["n_accepted"] > 0
    said = wide.outcome_lines()
    assert f"{wide.data['n_candidates']} candidate designs" in said[0]
    assert f"{wide.data['n_accepted']} accepted" in said[0] and "returned the lowest" in said[1]
    narrow = run_with("[-1.0,null]")
    assert narrow.data["n_accepted"] <= wide.data["n_accepted"]
    if narrow.best is not None:
        assert narrow.best["score"] >= narrow.baseline_score - 1.0
    else:
        assert narrow.outcome_lines()[1].startswith("xpert_gd returned no design")


def test_without_a_candidate_in_area_the_outcome_says_so_in_words(tmp_path: Path) -> None:
    """An area target no candidate comes near: the outcome names no accuracy range (no inf)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            *GD[:3], "algorithm.n_gen=2", "algorithm.area_tolerance=0.01",
            "constraints.area_mm2=11.0"])
    run = SearchRun(build_search(cfg), tmp_path / "run")
    run.start().run()
    said = run.algorithm.outcome_lines()
    assert run.algorithm.data["n_in_area"] == 0
    target = run.algorithm.area_target_mm2
    assert f"0 within 1 % of the {target:.4g} mm2 target, so no accuracy to test" in said[0]
    assert "inf" not in said[0] and said[1].startswith("xpert_gd returned no design")


def test_bad_xpert_gd_setting_names_the_key() -> None:
    with pytest.raises(ConfigError, match="algorithm.lr"):
        setup_of("algorithm.lr=-1")
    with pytest.raises(ConfigError, match="algorithm.accuracy_window_pp"):
        setup_of("algorithm.accuracy_window_pp=[1.0]")


def test_best_peripherals_beat_random_peripherals() -> None:
    setup = setup_of()
    space, model = setup.space, setup.cost_model
    channels = np.array([64, 128, 64, 512, 512, 128, 128, 64, 512, 128, 64, 64, 64])
    budget = 60.0
    best = best_peripherals(channels, space, model, budget)
    np.testing.assert_array_equal(best.channels[0], channels)
    rep = model.evaluate(best, breakdown=False)
    assert rep.area_mm2[0] <= budget
    rng = np.random.default_rng(0)
    n = 5000
    genes = {g: rng.choice(space.options[g], size=(n, 13)) for g in PERIPHERAL_GENES}
    sample = model.evaluate(Genomes(channels=np.tile(channels, (n, 1)), **genes), breakdown=False)
    feasible = np.asarray(sample.area_mm2) <= budget
    assert rep.edap[0] <= np.asarray(sample.edap)[feasible].min()


def test_best_peripherals_respect_the_precision_bound() -> None:
    setup = setup_of()
    channels = np.array([64, 128, 64, 512, 512, 128, 128, 64, 512, 128, 64, 64, 64])
    free = best_peripherals(channels, setup.space, setup.cost_model, 60.0)
    bounded = best_peripherals(channels, setup.space, setup.cost_model, 60.0, setup.penalty, 1.0)
    assert setup.penalty.predict(free)[0] > 1.0  # unbounded: lowest precision everywhere
    assert setup.penalty.predict(bounded)[0] <= 1.0
    edap = [setup.cost_model.evaluate(g, breakdown=False).edap[0] for g in (free, bounded)]
    assert edap[0] < edap[1]

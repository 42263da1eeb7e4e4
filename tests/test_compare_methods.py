"""bench/studies/compare_methods.py: every method stops at the budgets it states, the summary
gives every seed, the measurement reads measured rows back instead of training, and a design
that falls short of VGG16 does not get the headline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from xpert_evo.search import SpendCaps
from xpert_evo.search import build_search as real_build_search
from xpert_evo.search.xpert_gd import PRECISION_GENES
from xpert_evo.space.genome import GENE_NAMES
from xpert_evo.training import verification
from xpert_evo.training.groundtruth import append_rows, genome_columns
from xpert_evo.training.verification import BASELINE, Design

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "studies"))
import compare_methods  # noqa: E402
import compare_methods_measure  # noqa: E402

PREDICTOR_BUDGET, COST_BUDGET = 60, 1000
EXPERIMENT = "xpert_cifar10"


def arguments(tmp_path: Path, **extra: Any) -> argparse.Namespace:
    return argparse.Namespace(predictor_budget=PREDICTOR_BUDGET, cost_budget=COST_BUDGET,
                              data_root=str(tmp_path), overrides=[], **extra)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    """The experiment's built search (its fitted source predictor is shared by the tests)."""
    args = arguments(tmp_path_factory.mktemp("data"))
    return real_build_search(compare_methods.compose_config(EXPERIMENT, 0, [], args))


@pytest.mark.parametrize("method", list(compare_methods.METHODS))
def test_every_method_stops_at_the_stated_budgets(tmp_path: Path, setup, method: str) -> None:
    outcome = compare_methods.run_method(EXPERIMENT, method, 0, arguments(tmp_path),
                                         setup.estimator)
    row = outcome.row
    assert (row["predictor_budget"], row["cost_budget"]) == (PREDICTOR_BUDGET, COST_BUDGET)
    assert row["predictor_calls"] <= PREDICTOR_BUDGET and row["cost_model_evals"] <= COST_BUDGET
    assert row["predictor_calls"] == outcome.result.accuracy.n_scored
    if method in ("nsga2", "random", "xpert_gd (degenerate)"):
        # every new design is a new channel list at first: the predictor budget runs out
        assert row["predictor_calls"] == PREDICTOR_BUDGET
        assert row["cost_model_evals"] == row["designs"] < COST_BUDGET
    else:  # gradient steps stop when the next would overspend the cost budget
        step = sum(len(setup.space.options[g]) for g in GENE_NAMES if g not in PRECISION_GENES)
        assert COST_BUDGET - step * setup.space.n_layers - 2 < row["cost_model_evals"]
        assert row["returned"] == ("returned the lowest-latency" in row["outcome"])


def test_a_run_over_its_budget_is_an_error(tmp_path: Path, setup, monkeypatch) -> None:
    monkeypatch.setattr(compare_methods, "budget_caps", lambda args: SpendCaps())
    with pytest.raises(RuntimeError, match="over the budgets"):
        compare_methods.run_method(EXPERIMENT, "random", 0, arguments(tmp_path), setup.estimator)


def runs_frame() -> pd.DataFrame:
    reductions = [4.0, np.nan, 2.0, 8.0, 6.0]
    return pd.DataFrame({
        "experiment": EXPERIMENT, "method": "xpert_gd", "seed": range(5),
        "hypervolume": [0.5, 0.6, 0.7, 0.8, 0.9], "headline_edap_reduction_x": reductions,
        "iso_edap_reduction_x": np.nan,
        "headline_net_pct": [50.0 if r == r else np.nan for r in reductions],
        "predictor_calls": [10, 12, 11, 9, 10], "predictor_budget": 60,
        "cost_model_evals": 900, "cost_budget": 1000, "wall_s": 1.0,
    })


def test_the_summary_gives_mean_std_median_and_every_seed_with_none() -> None:
    row = compare_methods.summarise(runs_frame()).iloc[0]
    assert row["hypervolume"] == "0.700 ± 0.158"
    assert row["hypervolume median"] == "0.700"
    assert row["hypervolume per seed"] == "0.500, 0.600, 0.700, 0.800, 0.900"
    assert row["headline_edap_reduction_x"] == "5 ± 2.58"  # the seed without a design left out
    assert row["headline_edap_reduction_x median"] == "5"
    assert row["headline_edap_reduction_x per seed"] == "4, none, 2, 8, 6"
    assert row["seeds_with_design"] == "4/5"
    assert row["predictor_calls"] == "12/60" and row["cost_model_evals"] == "900/1000"


def test_the_median_seed_ranks_seeds_without_a_design_lowest() -> None:
    runs = runs_frame()
    assert compare_methods.median_run(runs)["seed"] == 0  # none < 2 < 4 < 6 < 8
    runs.loc[[0, 2], "headline_edap_reduction_x"] = np.nan
    assert compare_methods.median_run(runs) is None  # none, none, none < 6 < 8


def test_the_readme_summary_gives_the_median_headline_and_its_measurement() -> None:
    found = runs_frame().assign(vgg16_net_pct=51.0, best_net_pct=50.5)
    none = found.assign(method="random", headline_edap_reduction_x=np.nan)
    measured = pd.DataFrame([
        {"method": "xpert_gd", "crossbar_minus_vgg16_pp": "-0.40 ± 0.30", "p_below_vgg16": 0.12,
         "measured_iso_edap_reduction": "4.00x"},
        {"method": "random", "measured_iso_edap_reduction": "no design to measure"}])
    lines = compare_methods.readme_rows(pd.concat([found, none]), {EXPERIMENT: measured})
    assert lines[2] == (f"| {EXPERIMENT} | xpert_gd | 0.700 ± 0.158 | 4.00x at 50.00 % "
                        "(VGG16 51.00 %) | -0.40 ± 0.30 pp (p = 0.120): 4.00x |")
    assert lines[3] == (f"| {EXPERIMENT} | random | 0.700 ± 0.158 | none (best 50.50 % against "
                        "VGG16's 51.00 %) | - |")
    assert compare_methods.readme_rows(found, {})[2].endswith("| not measured |")


def test_the_readme_lines_on_published_designs_leave_vgg16_out() -> None:
    table = pd.DataFrame([
        {"design": "VGG16", "edap_reduction_x": 1.0, "predicted_net_pct": 51.0},
        {"design": "XPertNet_50", "edap_reduction_x": 2.5, "predicted_net_pct": 43.5,
         "crossbar_minus_vgg16_pp": -5.617, "p_below_vgg16": 0.0096},
        {"design": "nsga2 best at <= 40.6 mm2", "edap_reduction_x": 2.49,
         "predicted_net_pct": 49.0}])
    lines = compare_methods.published_rows({EXPERIMENT: table})
    assert lines[2:] == [
        f"| {EXPERIMENT} | XPertNet_50 | 2.50x | 43.50 (51.00) | -5.62 pp (p = 0.010) |",
        f"| {EXPERIMENT} | nsga2 best at <= 40.6 mm2 | 2.49x | 49.00 (51.00) | not measured |"]


def design(name: str, genome, edap: float) -> Design:
    return Design(name, genome, 50.0, 1.0, 0.5, edap)


def trainings(offsets: dict[str, list[float]]) -> pd.DataFrame:
    """Per-seed rows of VGG16 and the designs, crossbar % = VGG16's + offset per seed."""
    base = [70.0, 72.0, 71.0]
    rows = [{"design": name, "seed": s, "channels": "64", "val_pct": 80.0, "test_pct": 75.0,
             "crossbar_pct": b + o, "float_pct": 75.0, "loss_pp": 75.0 - b - o,
             "net_pct": 5.0 + b + o}
            for name, offs in {BASELINE: [0.0] * 3, **offsets}.items()
            for s, (b, o) in enumerate(zip(base, offs, strict=True))]
    return pd.DataFrame(rows)


def test_the_headline_marks_a_design_that_falls_short_of_vgg16_as_not_holding(setup) -> None:
    genome = setup.space.baseline
    baseline = design(BASELINE, genome, 100.0)
    designs = {"nsga2": design("nsga2", genome, 10.0), "random": design("random", genome, 20.0),
               "xpert_gd": None}
    seeds = trainings({"nsga2": [-0.3, 0.4, 0.1], "random": [-5.1, -4.8, -5.3]})
    table = compare_methods_measure.measured_table(designs, baseline, seeds).set_index("method")
    assert table.loc["nsga2", "measured_iso_edap_reduction"] == "10.00x"
    assert table.loc["random", "measured_iso_edap_reduction"].startswith(
        "does not hold: -5.07 pp below VGG16")
    assert table.loc["xpert_gd", "measured_iso_edap_reduction"] == "no design to measure"
    assert table.loc["VGG16", "measured_crossbar_pct"] == "71.00 ± 1.00"
    lines = compare_methods_measure.versus_lines(table.reset_index())
    assert lines[0].startswith("- nsga2: 10.00x; random: does not hold")

    seeds = trainings({"nsga2": [-0.3, 0.4, 0.1], "random": [0.2, -0.1, 0.0]})
    table = compare_methods_measure.measured_table(designs, baseline, seeds).set_index("method")
    assert table.loc["random", "nsga2_over_this"] == pytest.approx(2.0)


def test_the_measurement_reads_measured_rows_back_and_trains_nothing(
        tmp_path: Path, setup, monkeypatch, capsys) -> None:
    table = tmp_path / "ground_truth.csv"
    meas = compare_methods_measure.measurement(setup, EXPERIMENT, 2, 2000, table, str(tmp_path))
    baseline = compare_methods_measure.design_of(BASELINE, setup.space.baseline, setup)
    other = compare_methods_measure.published(setup, None)[0]
    append_rows([{**genome_columns(d.genome), "dataset": "cifar10", "seed": seed,
                  "fidelity": meas.fidelity, "weight_encoding": "offset",
                  "crossbar_test_images": 2000, "val_accuracy_pct": 60.0 + seed,
                  "accuracy_pct": 58.0, "reference_accuracy_pct": 57.0,
                  "nonideal_accuracy_pct": 55.0 - seed, "wall_s": 100.0}
                 for d in (baseline, other) for seed in range(2)], table)

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a measured design was trained again")

    monkeypatch.setattr(verification, "budget_splits",
                        lambda *a, **k: argparse.Namespace(test=range(10000)))
    monkeypatch.setattr(verification, "_measure", no_training)
    frame = meas.run([baseline, other])
    assert frame["design"].tolist() == [BASELINE, BASELINE, other.name, other.name]
    assert frame["crossbar_pct"].tolist() == [55.0, 54.0, 55.0, 54.0]
    assert frame["val_pct"].tolist() == [60.0, 61.0, 60.0, 61.0]
    assert frame["net_pct"].tolist() == [58.0] * 4  # val - (float - crossbar)
    assert capsys.readouterr().out.count("0 new trainings, 2 read from the table") == 2


def test_the_study_writes_its_files_with_measured_headlines(tmp_path: Path, setup,
                                                            monkeypatch) -> None:
    """The whole script at a tiny budget, its trainings faked."""
    monkeypatch.setattr(compare_methods, "build_search",
                        lambda cfg, estimator=None: real_build_search(cfg, setup.estimator))
    real_measurement = compare_methods.measurement

    def fake_measurement(*args: Any, **kwargs: Any):
        meas = real_measurement(*args, **kwargs)

        def measure(jobs):
            return [{"channels": genome_columns(j.design.genome)["channels"],
                     "val_accuracy_pct": 60.0, "accuracy_pct": 58.0,
                     "nonideal_accuracy_pct": 55.0 + j.seed, "reference_accuracy_pct": 57.0,
                     "crossbar_test_images": 2000, "wall_s": 1.0} for j in jobs]

        meas.measure = measure
        return meas

    monkeypatch.setattr(compare_methods, "measurement", fake_measurement)
    out = tmp_path / "out"
    assert compare_methods.main([
        "--seeds", "2", "--experiments", EXPERIMENT, "--methods", "nsga2", "xpert_gd",
        "--predictor-budget", "60", "--cost-budget", "1000", "--verify-seeds", "2",
        "--data-root", str(tmp_path), "--ground-truth", str(tmp_path / "gt.csv"),
        "--out-dir", str(out)]) == 0
    runs = pd.read_csv(out / "compare_methods_runs.csv")
    assert len(runs) == 4 and set(runs["method"]) == {"nsga2", "xpert_gd"}
    measured = pd.read_csv(out / "compare_methods_verified.csv")
    assert set(measured["seed"]) == {0, 1}
    assert {BASELINE, "XPertNet_50", "XPert 80mm2_model"} <= set(measured["design"])
    text = (out / "compare_methods.md").read_text()
    assert text.startswith("<!-- ") and "measured_iso_edap_reduction" in text
    assert "xpert_gd: what it returned and why" in text and (out / "compare_methods.png").is_file()

"""bench/calibrate/ writes fitted constants into the artifacts the presets point to
(`xpert_evo.schema.fitted`), with OmegaConf and where they come from; rerun on the data they were
fitted on, the writers reproduce the shipped constants exactly."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "calibrate"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import calibrate_hardware  # noqa: E402
import layer_penalty  # noqa: E402
import offset_penalty  # noqa: E402
from common import load_conf  # noqa: E402
from precision_loss import TARGETS  # noqa: E402
from synthetic_precision import synthetic_table  # noqa: E402

from xpert_evo.hardware import load_hardware_config  # noqa: E402
from xpert_evo.schema.fitted import fitted_constants, read_artifact  # noqa: E402


def test_each_script_writes_the_artifact_its_preset_reads() -> None:
    for target in TARGETS.values():
        assert load_conf("penalty", target.penalty)["fitted"] == target.artifact
    assert load_conf("penalty", "crossbar_cifar10_offset")["fitted"] == offset_penalty.ARTIFACT
    for name in ("xpert_rram_32nm", "rram_128x128_2bit"):
        assert load_conf("hardware", name)["fitted"] == calibrate_hardware.ARTIFACT


def test_offset_penalty_refit_reproduces_the_shipped_constants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = tmp_path / "offset.yaml"
    monkeypatch.setattr(offset_penalty, "ARTIFACT", str(artifact))
    monkeypatch.setattr(offset_penalty, "RESULTS", tmp_path)  # the report goes here too
    monkeypatch.setattr(sys, "argv", ["bench/calibrate/offset_penalty.py", "--write-config"])
    offset_penalty.main()
    assert fitted_constants(artifact) == fitted_constants("penalty/crossbar_cifar10_offset.yaml")
    (fit,) = read_artifact(artifact).fits.values()
    assert fit.fitted_by == "python bench/calibrate/offset_penalty.py --write-config"
    assert fit.data == "docs/results/weight_encoding.csv" and len(fit.date) == 10 and fit.commit


def test_hardware_writer_round_trips_the_shipped_constants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = tmp_path / "hardware.yaml"
    monkeypatch.setattr(calibrate_hardware, "ARTIFACT", str(artifact))
    hw = load_hardware_config()
    calibrate_hardware.write_config(hw)
    written = fitted_constants(artifact)
    assert written == fitted_constants(hw.fitted)
    assert all(getattr(hw, key) == value for key, value in written.items())


def test_measured_designs_read_every_comparison_training_at_the_tables_setting(
    tmp_path: Path,
) -> None:
    truth = pd.DataFrame({
        "timestamp": ["2026-12-05T09:00", "2026-12-05T09:10", "2026-12-05T09:20",
                      "2026-12-05T09:30", "2026-12-05T09:40"],
        "note": ["verify knee", "verify knee", "verify other", "verify baseline",
                 "verify knee"],
        "dataset": ["cifar10", "cifar10", "cifar10", "cifar10", "tinyimagenet"],
        "fidelity": ["f", "f", "g", "f", "f"], "weight_encoding": ["offset"] * 5,
        "channels": ["64-128"] * 5, "seed": [0, 1, 0, 0, 0],
        "reference_accuracy_pct": [50.0, 49.5, 50.0, 51.0, 50.0],
        "nonideal_accuracy_pct": [47.0, 49.0, 40.0, 50.0, 1.0], "input_bits": ["4-5"] * 5,
        "adc_bits": ["6-7"] * 5, "crossbar_test_images": [2000] * 5})
    truth_csv = tmp_path / "t.csv"
    truth.to_csv(truth_csv, index=False)
    table = pd.DataFrame({"dataset": ["cifar10"], "fidelity": ["f"],
                          "weight_encoding": ["offset"]})
    none = tmp_path / "none.csv"
    rows = layer_penalty.measured_designs(table, truth_csv, [none])
    # the fidelity-g and Tiny ImageNet trainings are other tables' settings: left out
    assert sorted(zip(rows["design"], rows["seed"], rows["loss_pp"], strict=True)) == [
        ("VGG16", 0, 1.0), ("knee", 0, 3.0), ("knee", 1, 0.5)]
    assert set(rows["input_bits"]) == {"4-5"}
    assert layer_penalty.measured_designs(table, none, []).empty
    runs = pd.DataFrame({  # bench/studies/main_runs.py's verified trainings
        "run": ["default", "default", "tinyimagenet"], "design": ["knee", "baseline", "knee"],
        "seed": [0, 0, 0], "channels": ["64-128"] * 3, "input_bits": ["2-8"] * 3,
        "adc_bits": ["6-6"] * 3, "float_pct": [48.0, 51.0, 5.0], "loss_pp": [2.5, 0.4, 0.1],
        "crossbar_test_images": [10000] * 3, "dataset": ["cifar10", "cifar10", "tinyimagenet"],
        "fidelity": ["f", "f", "f"], "weight_encoding": ["offset"] * 3})
    runs.to_csv(tmp_path / "main_runs_verified.csv", index=False)
    runs.head(1).assign(seed=1).to_csv(tmp_path / "main_runs_layer_verified.csv", index=False)
    runs.head(2).to_csv(tmp_path / "main_runs_again_verified.csv", index=False)  # the same two
    rows = layer_penalty.measured_designs(table, none, [
        tmp_path / "main_runs_verified.csv", tmp_path / "main_runs_layer_verified.csv",
        tmp_path / "main_runs_again_verified.csv"])
    assert sorted(zip(rows["design"], rows["seed"], strict=True)) == [
        ("default run (layer): knee", 1), ("default run: VGG16", 0), ("default run: knee", 0)]
    assert set(rows["images"]) == {10000} and set(rows["float_accuracy_pct"]) == {48.0, 51.0}


def test_measured_designs_tell_apart_one_name_at_other_genes_by_the_day(tmp_path: Path) -> None:
    """A published design that an earlier comparison ran at other peripheral genes is another
    design: each set of genes keeps its own rows, named by the day it was trained."""
    truth = pd.DataFrame({
        "timestamp": ["2026-12-05T09:00", "2026-12-06T01:00", "2026-12-06T01:10"],
        "note": "verify XPertNet_50", "dataset": "cifar10", "fidelity": "f",
        "weight_encoding": "offset", "channels": "64-128", "seed": [0, 0, 1],
        "reference_accuracy_pct": 50.0, "nonideal_accuracy_pct": [40.0, 47.0, 48.0],
        "input_bits": ["2-2", "4-5", "4-5"], "adc_bits": ["3-3", "6-7", "6-7"],
        "crossbar_test_images": 2000})
    truth.to_csv(tmp_path / "t.csv", index=False)
    table = pd.DataFrame({"dataset": ["cifar10"], "fidelity": ["f"],
                          "weight_encoding": ["offset"]})
    rows = layer_penalty.measured_designs(table, tmp_path / "t.csv", [])
    assert rows[["design", "input_bits", "loss_pp"]].values.tolist() == [
        ["XPertNet_50 (2026-12-05)", "2-2", 10.0], ["XPertNet_50 (2026-12-06)", "4-5", 3.0],
        ["XPertNet_50 (2026-12-06)", "4-5", 2.0]]


def test_learning_curve_scores_the_same_rows_at_every_number_of_fit_networks() -> None:
    """On a table whose truth is a per-layer model, the per-layer form's held-out error falls as
    it is fitted on more networks; every k scores all rows, so the curve compares like with
    like."""
    table = synthetic_table(n_networks=20)
    curve = layer_penalty.learning_curve(table, 10.0, ["layer_per_layer", "layer_uniform"])
    assert curve["fit_networks"].tolist() == [4, 8, 12, 16]  # 16 fit networks per fold of 5
    error = curve["layer_per_layer_rmse_pp"]
    assert error.iloc[-1] < error.iloc[0] and error.iloc[-1] < 1.0  # noise 0.5 pp
    assert (curve["layer_uniform_rmse_pp"] > error).all()  # it cannot see the sensitive layers


def test_replicate_section_reports_the_training_seed_spread() -> None:
    """A replicate whose losses scatter by 2 pp about the table's (the design's truth plus a
    training's own 2 pp): the section recovers that spread and shows that even the measured
    seed-0 loss predicts the replicate by no better than about 2 sqrt 2 pp."""
    table = synthetic_table(n_networks=20).assign(images=2000, weight_encoding="offset")
    sel = layer_penalty.select(table, 10.0, ["zero", "layer_uniform"], 5)
    rng = np.random.default_rng(1)
    replicate = table.assign(loss_pp=table["loss_pp"] + rng.normal(0.0, 2.0 * np.sqrt(2.0),
                                                                    len(table)))
    lines = "\n".join(layer_penalty.replicates(sel, {Path("t-seed1"): replicate}))
    spread = float(re.search(r"scatters by \*\*([0-9.]+) pp", lines).group(1))
    assert 1.6 < spread < 2.4, lines  # 160 pairs: about 6 % standard error
    measured = re.search(r"the seed-0 loss measured\s*\|\s*\d+\s*\|\s*([0-9.]+)", lines)
    assert 2.3 < float(measured.group(1)) < 3.4, lines
    assert "below its bound" not in lines  # no bound given
    bounded = "\n".join(layer_penalty.replicates(sel, {Path("t-seed1"): replicate}, 10.0))
    below = re.search(r"below its bound \(10 pp; (\d+) pairs\), one training scatters by "
                      r"([0-9.]+) pp", bounded)
    assert 0 < int(below.group(1)) < len(table) and 1.2 < float(below.group(2)) < 2.8, bounded
    assert "no replicate table" in layer_penalty.replicates(sel, {})[0]

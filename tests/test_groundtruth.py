"""Ground-truth table, design files, precision penalty, and `measure` / the train app end to end."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from xpert_evo.config import conf_dir
from xpert_evo.crossbar.penalty import PrecisionPenalty, plot_penalty
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.train import resolve_genome, run
from xpert_evo.training.data import DataSpec
from xpert_evo.training.design import genome_from_config, read_design
from xpert_evo.training.groundtruth import (
    COLUMNS,
    append_rows,
    genome_columns,
    genomes_from_table,
    load_checkpoint,
    load_table,
    measure,
    measure_one,
    save_checkpoint,
)
from xpert_evo.training.network import build_network
from xpert_evo.training.train import TrainSpec, budget_splits

CONF = conf_dir()


def _genome(adc_bits: int = 6, input_bits: int = 8) -> Genomes:
    return Genomes.uniform(VGG16_CHANNELS, 8, "flash", adc_bits, input_bits)


def test_table_round_trips_exactly_and_appends_never_lose_rows(tmp_path: Path) -> None:
    path = tmp_path / "gt" / "ground_truth.csv"
    rows = [
        {**genome_columns(_genome()), "kind": "train", "dataset": "cifar10", "seed": 3,
         "accuracy_pct": 1 / 3, "wall_s": 0.1 + 0.2, "train_per_class": None,
         "note": 'commas, "quotes"', "width_mult": 0.25},
        {**genome_columns(_genome(4, 5)), "kind": "crossbar", "nonideal_accuracy_pct": 87.125,
         "reference_accuracy_pct": 91.0, "epochs": 5, "device": "cpu"},
    ]
    append_rows(rows, path)
    first = load_table(path)
    assert list(first.columns) == list(COLUMNS) and len(first) == 2
    assert first.at[0, "accuracy_pct"] == 1 / 3 and first.at[0, "wall_s"] == 0.1 + 0.2
    assert first.at[0, "note"] == 'commas, "quotes"' and first.at[1, "note"] == ""
    assert pd.isna(first.at[0, "train_per_class"])
    assert math.isnan(first.at[0, "nonideal_accuracy_pct"])
    append_rows(first, path)  # a loaded table appends back unchanged
    pd.testing.assert_frame_equal(load_table(path), pd.concat([first, first], ignore_index=True))
    genomes = genomes_from_table(load_table(path))
    assert genomes.n == 4 and genomes.adc_bits[1].tolist() == [4] * 13
    assert np.array_equal(genomes.stack()[0], _genome().stack()[0])


def test_old_header_is_migrated_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "ground_truth.csv"
    path.write_text("channels,accuracy_pct,extra_old\n64-64,50.5,x\n")
    with pytest.raises(ValueError, match="unknown ground-truth columns"):
        append_rows([{"channelz": "1"}], path)
    append_rows([{"channels": "128-128", "accuracy_pct": 60.25}], path)
    table = load_table(path)
    assert table["channels"].tolist() == ["64-64", "128-128"]
    assert table["accuracy_pct"].tolist() == [50.5, 60.25]
    assert table["extra_old"].tolist() == ["x", ""]
    assert path.read_text().splitlines()[0] == ",".join([*COLUMNS, "extra_old"])
    assert load_table(tmp_path / "absent.csv").empty


def test_design_files_per_layer_and_compact(tmp_path: Path) -> None:
    layers = pd.DataFrame({
        "layer": [f"conv{i + 1}" for i in range(13)] + ["classifier"],
        "channels": [str(c) for c in VGG16_CHANNELS] + [""],
        "col_share": ["16"] * 13 + [""], "adc_type": ["sar"] * 12 + ["flash", ""],
        "adc_bits": ["5"] * 13 + [""], "input_bits": ["4"] * 13 + [""],
        "area_mm2": ["1.0"] * 14,
    })
    layers.to_csv(tmp_path / "knee_layers.csv", index=False)
    genome = read_design(tmp_path / "knee_layers.csv", 13)
    assert genome.channels[0].tolist() == list(VGG16_CHANNELS)
    assert genome.adc_flash[0].tolist() == [0] * 12 + [1] and genome.col_share[0, 0] == 16
    compact = pd.DataFrame([genome_columns(_genome(3, 2)), genome_columns(genome)])
    compact.to_csv(tmp_path / "pareto.csv", index=False)
    assert read_design(tmp_path / "pareto.csv", 13, row=1).adc_bits[0].tolist() == [5] * 13
    with pytest.raises(ValueError, match="design_row=5"):
        read_design(tmp_path / "pareto.csv", 13, row=5)
    layers.drop(columns=["input_bits"]).to_csv(tmp_path / "partial.csv", index=False)
    partial = read_design(tmp_path / "partial.csv", 13, defaults={"input_bits": 6})
    assert partial.input_bits[0].tolist() == [6] * 13
    with pytest.raises(ValueError, match="backbone has 12 conv layers"):
        read_design(tmp_path / "knee_layers.csv", 12)


def test_design_keys_give_readable_errors(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(FileNotFoundError, match=r"design=.*knee_layers.csv does not exist"):
        resolve_genome({"design": str(run_dir), "genome": {}}, 13)
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        resolve_genome({"design": str(tmp_path / "nope.csv"), "genome": {}}, 13)
    with pytest.raises(ValueError, match=r"genome.channels=\[c1,...,c13\]"):
        resolve_genome({"design": None, "genome": {"channels": None}}, 13)
    genome = genome_from_config({"channels": list(VGG16_CHANNELS), "col_share": 4,
                                 "adc_type": "sar", "adc_bits": [4] * 13, "input_bits": 6}, 13)
    assert genome.adc_flash.sum() == 0 and genome.input_bits[0, 5] == 6
    with pytest.raises(ValueError, match="genome.adc_bits has 2 values"):
        genome_from_config({"channels": [64] * 13, "col_share": 8, "adc_type": "flash",
                            "adc_bits": [4, 5], "input_bits": 8}, 13)


def _sweep_table(penalty: PrecisionPenalty, clean: float = 80.0) -> pd.DataFrame:
    rows = []
    for p in range(2, 9):
        for b in range(3, 9):
            g = _genome(b, p)
            loss = float(penalty.predict(g, clean)[0])
            rows.append({**genome_columns(g), "num_classes": 10, "accuracy_pct": clean + 1,
                         "reference_accuracy_pct": clean, "nonideal_accuracy_pct": clean - loss})
    return pd.DataFrame(rows)


def test_precision_penalty_recovers_a_known_model_and_round_trips(tmp_path: Path) -> None:
    truth = PrecisionPenalty(a_in=-3.0, k_in=1.2, a_adc=-2.0, k_adc=1.0, chance_pct=10.0,
                             max_loss_pp=70.0)
    table = _sweep_table(truth)
    fitted = PrecisionPenalty.fit(table)
    assert fitted.n_fit == 42 and fitted.rmse_pp < 0.05
    grid = Genomes.concat([_genome(b, p) for p in range(2, 9) for b in range(3, 9)])
    assert np.allclose(fitted.predict(grid, 80.0), truth.predict(grid, 80.0), atol=0.1)
    # monotone: more bits never cost more accuracy; one low-precision layer costs far less
    # than all of them at that precision (its noise is 1/13 of the total)
    losses = fitted.predict(Genomes.concat([_genome(b, 4) for b in range(3, 9)]))
    assert np.all(np.diff(losses) <= 0) and losses[0] > losses[-1]
    one = _genome(8, 8)
    one.adc_bits[0, 3] = 5
    base, single, every = (float(fitted.predict(g)[0]) for g in (_genome(8, 8), one, _genome(5, 8)))
    assert base < single < every / 2
    loaded = PrecisionPenalty.load(fitted.save(tmp_path / "penalty.json"))
    assert loaded == fitted
    assert plot_penalty(fitted, table, tmp_path / "penalty.png").stat().st_size > 1000
    with pytest.raises(ValueError, match=">= 4 crossbar evaluations"):
        PrecisionPenalty.fit(table.head(3))


def test_measure_and_train_app_on_real_cifar10(
    cifar10_zip: Path, data_cache: Path, tmp_path: Path
) -> None:
    """A tiny budget end to end: the app trains, crossbar-evaluates and appends a row; measure
    then reuses the checkpoint for the same channels (kind "crossbar") at other precisions."""
    table = tmp_path / "gt.csv"
    overrides = [
        f"data.root={cifar10_zip.parent}", f"cache_dir={data_cache}",
        f"ground_truth.path={table}", "genome.channels=[64,64,64,64,64,64,64,64,64,64,64,64,64]",
        "genome.adc_bits=6", "genome.input_bits=8", "train.epochs=1", "train.train_per_class=20",
        "train.test_per_class=10", "train.width_mult=0.125", "train.batch_size=20",
        "crossbar.test_images=20", "crossbar.calib_images=16",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    row = run(cfg)
    assert row["kind"] == "train+crossbar" and row["fidelity"] == "e1-pc20-w0.125-b20"
    assert 0 <= row["nonideal_accuracy_pct"] <= 100 and row["crossbar_test_images"] == 20
    assert Path(row["checkpoint"]).is_file()
    low = Genomes.uniform([64] * 13, 8, "sar", 3, 2)
    measured = measure(low, cfg)
    assert measured["kind"].tolist() == ["crossbar"]
    assert measured.at[0, "accuracy_pct"] == row["accuracy_pct"]
    assert measured.at[0, "adc_type"] == "-".join(["sar"] * 13)
    stored = load_table(table)
    assert len(stored) == 2 and stored["input_bits"].tolist()[1] == "-".join(["2"] * 13)


def test_a_training_read_back_from_its_checkpoint_reports_the_trainings_time(
    cifar10_zip: Path, data_cache: Path, tmp_path: Path
) -> None:
    """The same network, budget and seed measured twice: the second row reads the checkpoint
    instead of training, with the same accuracy and, as its wall time, the training's."""
    data = DataSpec.from_config({"root": str(cifar10_zip.parent)})
    spec = TrainSpec(epochs=1, train_per_class=8, val_per_class=2, test_per_class=2,
                     width_mult=0.125, batch_size=8)
    splits = budget_splits(data, spec, data_cache)
    genome = Genomes.uniform([64] * 13, 8, "flash", 6, 8)
    rows = [measure_one(genome, data, spec, None, 0, Backbone(), splits, tmp_path)
            for _ in range(2)]
    assert [r["kind"] for r in rows] == ["train", "train"]
    assert rows[1]["accuracy_pct"] == rows[0]["accuracy_pct"]
    assert rows[1]["wall_s"] >= rows[0]["wall_s"] * 0.9 > 0


def test_a_checkpoint_loads_at_its_budgets_width_and_channel_floor(tmp_path: Path) -> None:
    """A network saved at width 0.25 with a 16-channel floor comes back with the same layer
    widths, weights and outputs, and with its measured facts."""
    spec = TrainSpec(width_mult=0.25, min_channels=16)
    channels = [16, 32, 64, 128, 16, 32, 64, 128, 16, 32, 64, 128, 512]
    torch.manual_seed(0)
    saved = build_network(channels, Backbone(), 0.25, min_channels=16).eval()
    path = save_checkpoint(saved, {"accuracy_pct": 42.5}, tmp_path / "net.pt", 3.0)
    model, contents = load_checkpoint(path, channels, Backbone(), spec)
    widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == [16, 16, 16, 32, 16, 16, 16, 32, 16, 16, 16, 32, 128]
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model.eval()(x), saved(x))
    assert contents["accuracy_pct"] == 42.5 and contents["train_wall_s"] == 3.0

"""The precision-loss table (`xpert_evo.crossbar.loss_table`, `python -m xpert_evo.precision`):
deterministic settings, a sane paired bootstrap, resumable and sharded builds, readable errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from xpert_evo.config import ConfigError
from xpert_evo.crossbar.evaluate import PairedEvaluator, evaluate_genome
from xpert_evo.crossbar.loss_noise import replicate_pairs, seed_spread
from xpert_evo.crossbar.loss_table import (
    PrecisionPlan,
    SourceNetwork,
    TableRun,
    build_table,
    key_of,
    paired_loss,
    per_layer,
    read_front,
    read_table,
    source_networks,
    table_dir,
)
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import Split
from xpert_evo.training.network import build_network

ROOT = Path(__file__).resolve().parents[1]
INPUTS, ADCS = (2, 3, 4, 5, 6, 7, 8), (3, 4, 5, 6, 7, 8)
"""The searched input and ADC bits (conf/space/default.yaml)."""


def plan(n_settings: int = 6, seed: int = 0) -> PrecisionPlan:
    return PrecisionPlan(n_settings, INPUTS, ADCS, 13, seed)


def test_settings_are_deterministic_prefix_stable_and_in_range() -> None:
    first, again = plan(6).settings(7), plan(6).settings(7)
    assert all(np.array_equal(a.input_bits, b.input_bits) and np.array_equal(a.adc_bits, b.adc_bits)
               for a, b in zip(first, again, strict=True))
    longer = plan(10).settings(7)  # more settings extend the plan, they do not redraw it
    assert all(np.array_equal(a.adc_bits, b.adc_bits) for a, b in zip(first, longer, strict=False))
    assert not np.array_equal(plan(6, seed=1).settings(7)[0].adc_bits, first[0].adc_bits) or not (
        np.array_equal(plan(6, seed=1).settings(7)[0].input_bits, first[0].input_bits))
    assert [s.kind for s in first] == ["random", "sweep"] * 3
    for s in first:
        assert set(s.input_bits) <= set(INPUTS) and set(s.adc_bits) <= set(ADCS)
        assert s.input_bits.shape == s.adc_bits.shape == (13,)
    sweeps = [s for s in first if s.kind == "sweep"]
    assert len({s.swept_layer for s in sweeps}) == len(sweeps)  # a network's sweeps differ
    for s in sweeps:  # every layer at 8/8 but the swept one, lowered
        others = np.delete(np.arange(13), s.swept_layer)
        assert (s.input_bits[others] == 8).all() and (s.adc_bits[others] == 8).all()
        assert (s.input_bits[s.swept_layer], s.adc_bits[s.swept_layer]) != (8, 8)


def test_bad_precision_values_name_the_key_or_column() -> None:
    with pytest.raises(ConfigError, match=r"precision\.sweep_adc_bits: \[9\] outside"):
        PrecisionPlan(4, INPUTS, ADCS, sweep_adc_bits=9)
    table = pd.DataFrame({"input_bits": ["8-" * 12 + "9"], "adc_bits": ["8-8"]})
    with pytest.raises(ConfigError, match=r"column input_bits: \[9\] outside"):
        per_layer(table, "input_bits", INPUTS, 13)
    with pytest.raises(ConfigError, match=r"column adc_bits has 2 values .* 13 conv layers"):
        per_layer(table, "adc_bits", ADCS, 13)


def test_the_command_exits_2_naming_a_bad_precision_key() -> None:
    done = subprocess.run([sys.executable, "-m", "xpert_evo.precision",
                           "precision.sweep_input_bits=1"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert "precision.sweep_input_bits: [1] outside the searched options" in (
        done.stdout + done.stderr)


def test_replicates_name_their_networks_and_keep_a_table_of_their_own(tmp_path: Path) -> None:
    source = pd.DataFrame({"net_id": [0, 1, 2, 3, 1], "seed": [0, 0, 0, 0, 1],
                           "role": ["fit", "heldout", "fit", "heldout", "heldout"],
                           "channels": ["64-" * 12 + "64"] * 5,
                           "val_accuracy_pct": [50.0, 51.0, 52.0, 53.0, 49.0]})
    assert [n.net_id for n in source_networks(source, 2)] == [0, 1]
    picked = source_networks(source, 2, [3, 1])
    assert [(n.net_id, n.role, n.val_accuracy_pct) for n in picked] == [
        (1, "heldout", 51.0), (3, "heldout", 53.0)]  # plan order, the seed-0 rows
    with pytest.raises(ConfigError, match=r"precision\.net_ids: \[7\]; .* 0\.\.3"):
        source_networks(source, 2, [1, 7])
    assert table_dir(tmp_path, "cifar10", "e5") == tmp_path / "cifar10-e5"
    assert table_dir(tmp_path, "cifar10", "e5", 1) == tmp_path / "cifar10-e5-seed1"


@pytest.mark.parametrize(("override", "message"), [
    ("precision.net_ids=[3,999]", "precision.net_ids: [999]"),
    ("precision.train_seed=-1", "precision.train_seed=-1 must be >= 0"),
])
def test_the_command_exits_2_naming_bad_replicate_keys(override: str, message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "xpert_evo.precision", override],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert message in done.stdout + done.stderr


def test_the_bench_exits_2_naming_a_bad_column(tmp_path: Path) -> None:
    folder = tmp_path / "cifar10-x"
    run = TableRun(folder, "cifar10", "x", 10, "offset")
    nets = [SourceNetwork(i, "fit", (64,) * 13, 50.0) for i in range(2)]
    build_table(nets, plan(2), run, lambda net: FakeEvaluator())
    rows = pd.read_csv(run.path, dtype=str)
    rows.loc[0, "adc_bits"] = "-".join(["1"] + ["8"] * 12)  # below the searched ADC bits
    rows.to_csv(run.path, index=False)
    done = subprocess.run([sys.executable, "bench/calibrate/layer_penalty.py", "--table",
                           str(folder), "--out", str(tmp_path / "r.md")], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "column " in done.stderr and "outside the searched" in (
        done.stderr), done.stderr


def test_paired_bootstrap_std_is_the_paired_standard_error() -> None:
    rng = np.random.default_rng(0)
    float_hits = rng.random(2000) < 0.5
    flips = rng.random(2000) < 0.1
    crossbar_hits = np.where(flips, ~float_hits, float_hits)
    loss, std = paired_loss(float_hits, crossbar_hits)
    diff = 100.0 * (float_hits.astype(float) - crossbar_hits)
    assert loss == pytest.approx(diff.mean())
    assert std == pytest.approx(diff.std() / np.sqrt(len(diff)), rel=0.1)
    assert paired_loss(float_hits, crossbar_hits) == (loss, std)  # seeded
    assert paired_loss(float_hits, float_hits) == (0.0, 0.0)  # identical outcomes: no noise
    # pairing matters: the same accuracies with independent outcomes are far noisier
    unpaired = rng.permutation(crossbar_hits)
    assert paired_loss(float_hits, unpaired)[1] > 2 * std


class FakeEvaluator:
    """Outcomes that depend on the ADC bits only; counts its evaluations."""

    calls = 0

    def __init__(self) -> None:
        self.float_correct = np.arange(10) % 2 == 0
        self.n_images = 10

    def crossbar_correct(self, input_bits, adc_bits) -> np.ndarray:
        FakeEvaluator.calls += 1
        return self.float_correct & (np.arange(10) < 2 * min(adc_bits))


def test_build_is_resumable_and_shards_are_disjoint_and_complete(tmp_path: Path) -> None:
    nets = [SourceNetwork(i, "fit" if i % 2 == 0 else "heldout", (64,) * 13, 50.0)
            for i in range(5)]
    settings = plan(3)
    loaded: list[int] = []

    def loader(net: SourceNetwork) -> FakeEvaluator:
        loaded.append(net.net_id)
        return FakeEvaluator()

    def run(shard: int, n_shards: int) -> TableRun:
        return TableRun(tmp_path / "cifar10-f", "cifar10", "f", 10, "offset", shard, n_shards)

    made = [build_table(nets, settings, run(k, 2), loader) for k in (0, 1)]
    shard_rows = [read_table(tmp_path / "cifar10-f").query(f"net_id % 2 == {k}") for k in (0, 1)]
    assert made == [9, 6] and sorted(loaded) == [0, 1, 2, 3, 4]  # networks 0, 2, 4 | 1, 3
    files = sorted(p.name for p in (tmp_path / "cifar10-f").glob("*.csv"))
    assert files == ["shard-0-of-2.csv", "shard-1-of-2.csv"]
    table = read_table(tmp_path / "cifar10-f")
    keys = [key_of(r) for r in table.to_dict("records")]
    assert len(keys) == len(set(keys)) == 15  # disjoint and complete: 5 networks x 3 settings
    assert all(len(rows) for rows in shard_rows)
    assert set(table["role"]) == {"fit", "heldout"} and set(table["setting_kind"]) == {
        "random", "sweep"}
    row = table.iloc[0]
    assert row["loss_pp"] == pytest.approx(row["float_accuracy_pct"]
                                           - row["crossbar_accuracy_pct"])
    FakeEvaluator.calls, loaded[:] = 0, []
    assert build_table(nets, settings, run(0, 1), loader) == 0  # a rerun: nothing new
    assert FakeEvaluator.calls == 0 and loaded == []
    # a line cut short by a kill is left out and measured again
    path = tmp_path / "cifar10-f" / "shard-1-of-2.csv"
    path.write_text(path.read_text()[:-40])
    assert len(read_table(tmp_path / "cifar10-f")) == 14
    assert build_table(nets, settings, run(0, 1), loader) == 1 and loaded == [nets[-2].net_id]
    # more settings extend the table by the new ones only
    assert build_table(nets, plan(4), run(0, 1), loader) == 5


def test_paired_evaluator_agrees_with_evaluate_genome() -> None:
    torch.manual_seed(0)
    net = build_network([64] * 13, Backbone(input_size=16), width_mult=0.0625)  # 4 channels
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    net.train()
    with torch.no_grad():
        net(torch.randn(16, 3, 16, 16))
    net.eval()
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (20, 16, 16, 3), dtype=np.uint8),
                  rng.integers(0, 10, 20), "cifar10", 10)
    spec = CrossbarSpec(calib_images=8, test_images=12)
    setting = plan(2).settings(0)[0]
    paired = PairedEvaluator(net, spec, split, split, "cpu")
    genome = Genomes(np.full((1, 13), 64), np.full((1, 13), 8), np.ones((1, 13), int),
                     setting.adc_bits[None], setting.input_bits[None])
    alone = evaluate_genome(net, genome, spec, split, split, "cpu")
    assert paired.n_images == alone.n_images == 12
    assert 100 * paired.float_correct.mean() == pytest.approx(alone.reference_accuracy_pct)
    hits = paired.crossbar_correct(setting.input_bits, setting.adc_bits)
    assert 100 * hits.mean() == pytest.approx(alone.accuracy_pct)


def test_seed_spread_splits_a_replicates_scatter_into_images_and_training() -> None:
    """Two trainings of 2,000 designs, each loss the design's mean plus a training's own 2 pp
    and 0.5 pp of image noise: the spread recovers both parts; rows of other settings or images
    are not paired."""
    rng = np.random.default_rng(0)
    n = 2000
    mean = rng.uniform(0.0, 20.0, n)
    base = pd.DataFrame({"net_id": np.arange(n), "input_bits": "8-8", "adc_bits": "8-8",
                         "images": 2000, "weight_encoding": "offset", "loss_std_pp": 0.5,
                         "float_accuracy_pct": 50.0, "role": "fit"})
    table = base.assign(loss_pp=mean + rng.normal(0, 2.0, n) + rng.normal(0, 0.5, n))
    replicate = base.assign(loss_pp=mean + rng.normal(0, 2.0, n) + rng.normal(0, 0.5, n),
                            float_accuracy_pct=51.0)
    other = replicate.head(3).assign(images=500)  # another measurement of the same settings
    pairs = replicate_pairs(table, pd.concat([replicate, other]))
    assert len(pairs) == n
    spread = seed_spread(pairs)
    assert spread["image_noise_pp"] == pytest.approx(0.5)
    assert spread["loss_std_pp"] == pytest.approx(np.hypot(2.0, 0.5), rel=0.05)
    assert spread["training_std_pp"] == pytest.approx(2.0, rel=0.05)
    assert spread["float_diff_rms_pp"] == pytest.approx(1.0)
    assert np.isnan(seed_spread(pairs.head(0))["loss_std_pp"])


def test_front_settings_draw_a_fronts_designs_and_leave_the_other_settings_alone(
    tmp_path: Path
) -> None:
    front_csv = tmp_path / "pareto.csv"
    pd.DataFrame({"input_bits": ["-".join(["2"] * 6 + ["8"] * 7), "-".join(["4"] * 13),
                                 "-".join(["4"] * 13)],
                  "adc_bits": ["-".join(["5"] * 13), "-".join(["6"] * 13),
                               "-".join(["6"] * 13)]}).to_csv(front_csv, index=False)
    front = read_front(front_csv, INPUTS, ADCS, 13)
    assert len(front) == 2  # each design once
    with_front = PrecisionPlan(6, INPUTS, ADCS, 13, 0, front=front, n_front=3)
    for net in range(5):
        settings = with_front.settings(net)
        assert [s.kind for s in settings] == ["random", "sweep"] * 3 + ["front"] * 3
        assert [s.index for s in settings[6:]] == [6, 7, 8]
        for s in settings[6:]:
            assert (tuple(s.input_bits), tuple(s.adc_bits)) in front and s.swept_layer == -1
        for a, b in zip(settings[:6], plan(6).settings(net), strict=True):
            np.testing.assert_array_equal(a.input_bits, b.input_bits)
            np.testing.assert_array_equal(a.adc_bits, b.adc_bits)
    drawn = {tuple(s.input_bits) for net in range(20) for s in with_front.settings(net)[6:]}
    assert len(drawn) == 2  # both designs are drawn
    assert len(PrecisionPlan(6, INPUTS, ADCS, 13, 0, front=(), n_front=3).settings(0)) == 6
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"input_bits": ["1-" * 12 + "1"], "adc_bits": ["6-" * 12 + "6"]}).to_csv(
        bad, index=False)
    with pytest.raises(ConfigError, match=r"column input_bits: \[1\] outside"):
        read_front(bad, INPUTS, ADCS, 13)
    with pytest.raises(ConfigError, match=r"precision\.front=.*no such file"):
        read_front(tmp_path / "none.csv", INPUTS, ADCS, 13)


def test_the_shipped_front_is_a_valid_front() -> None:
    path = ROOT / "xpert_evo" / "crossbar" / "precision_fronts" / "cifar10-layer_cifar10_offset.csv"
    front = read_front(path, INPUTS, ADCS, 13)
    assert len(front) > 100
    assert any(sum(b == 2 for b in p) >= 3 and max(p) == 8 for p, _ in front)

"""What the weight encoding changes in crossbar accuracy: `offset` (NeuroSim's) against
`differential`, on the same trained networks, settings and test images.

Networks: the CIFAR-10 fidelity ladder's trainings at the source budget
(docs/results/fidelity_ladder_cifar10.csv, rung `source`) whose weights are in the checkpoint
cache (`bench/studies/fidelity_ladder.py` writes them there); `--networks` caps how many. Each is
evaluated on the crossbar (xpert_evo/crossbar/simulate.py, the search's crossbar and hardware
config) in both encodings at the same precision settings:

* ``lossless``: 8-bit inputs, lossless ADC. The offset term is removed exactly, so both encodings
  must give the fake-quantised network's accuracy; the study checks that they agree image by
  image;
* ``uniform 8/8``, ``baseline 8/6`` (VGG16's peripheral genes in the search space) and ``uniform
  6/5``: one precision for every layer;
* ``random k``: `--random` per-layer settings (`xpert_evo.crossbar.settings.random_precisions`).

Every row is a (network, setting, encoding) with the float accuracy on the same images, appended
to docs/results/weight_encoding.csv network by network (a rerun evaluates only the networks the
table lacks). The report (docs/results/weight_encoding.md) gives per setting the mean loss in
each encoding and the paired difference offset - differential with its bootstrap std over the
test images (`BOOTSTRAP` resamples of the same images for both encodings).

Run: `python bench/studies/weight_encoding.py [--networks 14 --images 2000 --random 3]`;
`--no-eval` only writes the report.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from xpert_evo.crossbar.evaluate import evaluation_data
from xpert_evo.crossbar.quantise import ENCODINGS, CrossbarSpec
from xpert_evo.crossbar.settings import random_precisions
from xpert_evo.crossbar.simulate import CrossbarNetwork
from xpert_evo.space.backbone import GEOMETRY, Backbone
from xpert_evo.training.data import DataSpec
from xpert_evo.training.groundtruth import load_checkpoint, load_table, per_layer_ints
from xpert_evo.training.network import torch_threads
from xpert_evo.training.source import source_training
from xpert_evo.training.train import TrainSpec, budget_splits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS, RESULTS, load_conf, write_stamped  # noqa: E402

TABLE = RESULTS / "weight_encoding.csv"
LADDER = RESULTS / "fidelity_ladder_cifar10.csv"
LAYERS = 13
BOOTSTRAP = 2000
"""Bootstrap resamples of the test images for the paired difference's std."""

UNIFORM: dict[str, tuple[int, int | None]] = {
    "lossless": (8, None),
    "uniform 8/8": (8, 8),
    "baseline 8/6": (8, 6),
    "uniform 6/5": (6, 5),
}
"""Uniform settings: name -> (input bits, ADC bits; None = lossless ADC)."""


def networks(limit: int) -> pd.DataFrame:
    """Source-budget ladder trainings with a cached checkpoint, one per (channels, seed)."""
    fidelity = TrainSpec.from_config(source_training("cifar10")).fidelity()
    ladder = load_table(LADDER)
    ok = ladder["checkpoint"].map(lambda p: isinstance(p, str) and Path(p).is_file())
    rows = ladder[ok & (ladder["fidelity"] == fidelity)].drop_duplicates(["channels", "seed"])
    return rows.head(limit)


def setting_list(net_index: int, n_random: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, input bits (13,), ADC bits (13,), -1 = lossless) of one network's settings."""
    space = load_conf("space")
    out = [(name, np.full(LAYERS, p), np.full(LAYERS, -1 if b is None else b))
           for name, (p, b) in UNIFORM.items()]
    rng = np.random.default_rng([1, net_index])
    picks = random_precisions(LAYERS, n_random, space["input_bits"], space["adc_bits"], rng)
    out += [(f"random {k}", p, b) for k, (p, b) in enumerate(picks)]
    return out


def crossbar_spec(encoding: str, images: int) -> CrossbarSpec:
    """The search's crossbar and hardware config with `encoding`, on `images` test images."""
    crossbar, hardware = load_conf("crossbar"), load_conf("hardware", "xpert_rram_32nm")
    return CrossbarSpec.from_config({**crossbar, "test_images": images},
                                    {**hardware, "weight_encoding": encoding})


def evaluate(args: argparse.Namespace) -> None:
    """Evaluate the networks the table lacks; append their rows network by network."""
    spec = TrainSpec.from_config(source_training("cifar10"))
    size, classes = GEOMETRY["cifar10"]
    data = DataSpec(dataset="cifar10", root=args.data_root, input_size=size,
                    num_classes=classes, allow_data_free=False)
    splits = budget_splits(data, spec)
    backbone = Backbone(input_size=size, num_classes=classes)
    done = pd.read_csv(TABLE) if TABLE.is_file() else pd.DataFrame(columns=["checkpoint"])
    for index, net in enumerate(networks(args.networks).itertuples()):
        if net.checkpoint in set(done["checkpoint"]):
            continue
        channels = per_layer_ints([net.channels])[0].tolist()
        model, _ = load_checkpoint(net.checkpoint, channels, backbone, spec)
        outcomes: dict[tuple[str, str], np.ndarray] = {}
        rows = []
        for encoding in ENCODINGS:
            xbar_spec = crossbar_spec(encoding, args.images)
            images, labels, calib = evaluation_data(xbar_spec, splits.test, splits.train)
            xbar = CrossbarNetwork(model, xbar_spec, calib, torch.device("cpu"))
            float_hits = xbar.correct(images, labels, calib, 8, None, mode="float")
            for name, p, b in setting_list(index, args.random):
                adc = [None if v < 0 else int(v) for v in b]
                hits = xbar.correct(images, labels, calib, p.tolist(), adc)
                outcomes[name, encoding] = hits
                rows.append({"network": net.role, "channels": net.channels, "seed": net.seed,
                             "checkpoint": net.checkpoint, "setting": name,
                             "input_bits": "-".join(map(str, p)),
                             "adc_bits": "-".join("lossless" if v < 0 else str(v) for v in b),
                             "weight_encoding": encoding, "test_images": len(hits),
                             "float_accuracy_pct": 100 * float_hits.mean(),
                             "accuracy_pct": 100 * hits.mean(),
                             "loss_pp": 100 * (float_hits.mean() - hits.mean())})
        rng = np.random.default_rng(0)
        for row in rows:
            if row["weight_encoding"] != "offset":
                continue
            diff = (outcomes[row["setting"], "differential"].astype(np.float64)
                    - outcomes[row["setting"], "offset"])
            boots = rng.integers(0, len(diff), size=(BOOTSTRAP, len(diff)))
            row["offset_minus_differential_loss_pp"] = 100 * float(diff.mean())
            row["paired_boot_std_pp"] = 100 * float(diff[boots].mean(axis=1).std())
        pd.DataFrame(rows).to_csv(TABLE, mode="a", header=not TABLE.is_file(), index=False)
        lossless = rows[0]["accuracy_pct"], rows[len(rows) // 2]["accuracy_pct"]
        print(f"{net.role} seed {net.seed}: float {rows[0]['float_accuracy_pct']:.2f} %, "
              f"lossless {lossless[0]:.2f} / {lossless[1]:.2f} % (differential / offset)",
              flush=True)


def report() -> list[str]:
    """The markdown report of the whole table, line by line."""
    table = pd.read_csv(TABLE)
    offset = table[table["weight_encoding"] == "offset"]
    diff = table[table["weight_encoding"] == "differential"].set_index(
        ["checkpoint", "setting"])["loss_pp"]
    offset = offset.assign(differential_loss_pp=offset.set_index(
        ["checkpoint", "setting"]).index.map(diff))
    order = [*UNIFORM, *sorted(s for s in offset["setting"].unique() if s not in UNIFORM)]
    kind = offset["setting"].where(offset["setting"].isin(UNIFORM.keys()), "random per-layer")
    summary = offset.assign(kind=kind).groupby("kind", sort=False).agg(
        evaluations=("loss_pp", "size"),
        differential_loss_pp=("differential_loss_pp", "mean"),
        offset_loss_pp=("loss_pp", "mean"),
        mean_difference_pp=("offset_minus_differential_loss_pp", "mean"),
        difference_std_pp=("offset_minus_differential_loss_pp", "std"),
        median_paired_boot_std_pp=("paired_boot_std_pp", "median"),
        offset_worse_beyond_2std=("offset_minus_differential_loss_pp",
                                  lambda s: int((s > 2 * offset.loc[s.index,
                                                                    "paired_boot_std_pp"]).sum())),
    ).reindex([k for k in (*UNIFORM, "random per-layer") if k in set(kind)])
    lossless = offset[offset["setting"] == "lossless"]
    exact = int((lossless["offset_minus_differential_loss_pp"] == 0).sum())
    nets = offset.drop_duplicates("checkpoint")
    lines = [
        "",
        "# Weight encoding: offset (NeuroSim's) against differential, in crossbar accuracy", "",
        f"{len(nets)} CIFAR-10 networks trained at the source budget (the fidelity ladder's "
        f"`source` rung: {', '.join(sorted(nets['network'].unique()))}), each evaluated on the "
        f"crossbar in both encodings on the same {int(offset['test_images'].iloc[0])} test "
        f"images at {len(order)} precision settings ({len(table)} evaluations). Measured, not "
        "predicted. `*_loss_pp` = float accuracy minus crossbar accuracy on the same images; "
        "`mean_difference_pp` = offset loss minus differential loss (positive: offset loses "
        "more), with the spread over networks and settings (`difference_std_pp`) and the median "
        "paired bootstrap std of one evaluation's difference over the test images.", "",
        summary.reset_index().to_markdown(index=False, floatfmt=".2f"), "",
        f"Lossless limit (8-bit inputs, lossless ADC): the two encodings classify every image "
        f"alike on {exact} of {len(lossless)} networks (the offset term is removed exactly).",
        "",
        "Cost: the offset encoding uses one column per weight slice where differential uses a "
        "pair; its area, energy and EDAP for VGG16 and XPert's designs are in "
        "docs/cost_model.md (designs table, both encodings).",
    ]
    return lines


def main() -> None:
    """Evaluate what is missing, then write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=14)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--random", type=int, default=3, help="random per-layer settings")
    parser.add_argument("--data-root", default=str(DATASETS))
    parser.add_argument("--no-eval", action="store_true", help="only write the report")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.no_eval:
        with torch_threads(1):
            evaluate(args)
    print(write_stamped(RESULTS / "weight_encoding.md", [*report(), ""]))


if __name__ == "__main__":
    main()

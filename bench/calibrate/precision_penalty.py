"""Crossbar precision sweeps of trained networks and the fitted precision penalty model.

Budget (2 CPU cores): about 8 minutes on an idle machine, up to 10x that when other jobs share
the cores. Trained networks are reused from `<cache>/checkpoints/` (a missing one is trained
first: network 1 about 2 minutes idle, networks 2 and 3 come from ground_truth_cpu.py beside
it).
  * network 1: VGG16 channels, width 0.25, trained longer (1,000 images per class, 15 epochs,
    otherwise the ground-truth recipe) so that it is accurate enough to lose something; every
    uniform (input bits, ADC bits) pair of the search space, input bits 2..8 x ADC bits 3..8
    (42 settings), plus five settings beyond it (2-bit ADCs at 2/4/8-bit inputs, 1-bit inputs
    at 4/8-bit ADCs);
  * networks 2 and 3 (slim-wide, all128 at the ground_truth_cpu.py budget: 500 images per
    class, 5 epochs): input bits {2, 4, 8} x ADC bits {3, 4, 6, 8};
  * each setting: 500 test images (the same for every setting), ADC ranges calibrated on 64
    training images; differential weights, 64x64 crossbars, 4-bit cells, 8-bit weights.

Prints the accuracy table of network 1 (rows input bits, columns ADC bits), appends every
evaluation to the ground-truth table, fits `PrecisionPenalty` on all of them, writes the fit to
`docs/results/precision_penalty.json` and the plot to `docs/results/precision_penalty.png`.
Run: `python bench/calibrate/precision_penalty.py`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import pandas as pd

from xpert_evo.crossbar.evaluate import sweep_uniform
from xpert_evo.crossbar.penalty import PrecisionPenalty, plot_penalty
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataSpec, Split, cache_root, decoded_split
from xpert_evo.training.groundtruth import (
    append_rows,
    checkpoint_path,
    default_path,
    fidelity_columns,
    genome_columns,
    load_checkpoint,
    load_table,
    save_checkpoint,
)
from xpert_evo.training.network import torch_threads
from xpert_evo.training.train import TrainSpec, train_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS, RESULTS  # noqa: E402
from ground_truth_cpu import ARCHITECTURES  # noqa: E402  (the sibling script, on sys.path)

FULL_GRID = [(p, b) for p in range(2, 9) for b in range(3, 9)]
EDGE = [(2, 2), (4, 2), (8, 2), (1, 4), (1, 8)]
SMALL_GRID = [(p, b) for p in (2, 4, 8) for b in (3, 4, 6, 8)]
NOTE = "bench/precision_penalty.py"
"""The ground-truth rows' note (with the network's name): the script's path when the stored rows
were measured, kept so that `--from-table` finds them."""


def main() -> None:
    """Sweep, fit, plot (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DATASETS))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--table", default=None, help="ground-truth CSV (default in cache dir)")
    parser.add_argument("--images", type=int, default=500, help="test images per setting")
    parser.add_argument("--out", default=str(RESULTS / "precision_penalty"))
    parser.add_argument("--from-table", action="store_true",
                        help="no sweeps: refit and replot from the rows of an earlier run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with torch_threads(None):
        start = time.perf_counter()

        data = DataSpec(root=args.data_root, allow_data_free=False)
        bench = TrainSpec(epochs=5, train_per_class=500, width_mult=0.25, batch_size=64, lr=0.05)
        longer = TrainSpec(epochs=15, train_per_class=1000, width_mult=0.25, batch_size=64, lr=0.05)
        xbar = CrossbarSpec(test_images=args.images, calib_images=64)
        train = decoded_split(data, "train", longer.train_per_class, args.cache_dir)
        test = decoded_split(data, "test", None, args.cache_dir)
        table = Path(args.table) if args.table else default_path(None, args.cache_dir)
        folder = cache_root(args.cache_dir) / "checkpoints"
        plan = [("vgg16", longer, FULL_GRID + EDGE), ("slim-wide", bench, SMALL_GRID),
                ("all128", bench, SMALL_GRID)]

        if args.from_table:
            frame = _stored_rows(load_table(table), plan)
        else:
            frame = _sweep(plan, data, xbar, train, test, folder, args.cache_dir)
            append_rows(frame, table)
        _report(frame, plan, args.images, args.out)
        print(f"rows in {table}; total {time.perf_counter() - start:.0f} s")


def _stored_rows(stored: pd.DataFrame, plan: list) -> pd.DataFrame:
    """The latest stored evaluation of every (network, setting) of the plan."""
    parts = []
    for name, spec, _grid in plan:
        mine = stored[(stored["note"] == f"{NOTE} {name}")
                      & (stored["fidelity"] == spec.fidelity())]
        parts.append(mine.drop_duplicates(["input_bits", "adc_bits"], keep="last"))
    frame = pd.concat(parts, ignore_index=True)
    if frame.empty:
        raise SystemExit("no stored rows of this bench; run it without --from-table first")
    return frame


def _sweep(plan: list, data: DataSpec, xbar: CrossbarSpec, train: Split, test: Split,
           folder: Path, cache_dir: str | None) -> pd.DataFrame:
    """Evaluate every network of the plan at its settings; ground-truth rows."""
    rows = []
    for name, spec, grid in plan:
        channels = ARCHITECTURES[name]
        ckpt = checkpoint_path(channels, data, spec, 0, folder)
        if ckpt.is_file():
            model, saved = load_checkpoint(ckpt, channels, Backbone(), spec)
            clean = saved["accuracy_pct"]
        else:
            result = train_network(channels, data, spec, 0, test_split=test,
                                   cache_dir=cache_dir)
            model, clean = result.model, result.clean_accuracy_pct
            save_checkpoint(model, result.measured(), ckpt, result.wall_s)
        t0 = time.perf_counter()
        by_input: dict[int, list[int]] = {}
        for p, b in grid:
            by_input.setdefault(p, []).append(b)
        for p, adcs in by_input.items():
            for r in sweep_uniform(model, xbar, test, train, [p], adcs):
                genome = Genomes.uniform(channels, 8, "flash", r["adc_bits"], r["input_bits"])
                rows.append({
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "kind": "crossbar",
                    "dataset": "cifar10", "input_size": 32, "num_classes": 10,
                    **genome_columns(genome), **fidelity_columns(spec), "seed": 0,
                    "accuracy_pct": clean, "reference_accuracy_pct": r["reference_accuracy_pct"],
                    "nonideal_accuracy_pct": r["accuracy_pct"],
                    "crossbar_test_images": r["n_images"], "weight_encoding": xbar.weight_encoding,
                    "wall_s": r["wall_s"], "device": "cpu", "checkpoint": str(ckpt),
                    "note": f"{NOTE} {name}",
                })
        print(f"{name}: clean {clean:.2f} %, {len(grid)} settings in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return pd.DataFrame(rows)


def _report(frame: pd.DataFrame, plan: list, images: int, out: str) -> None:
    """Print the accuracy and loss tables, fit, save the JSON and the plot."""
    frame = frame.assign(p=frame["input_bits"].str.split("-").str[0].astype(int),
                         b=frame["adc_bits"].str.split("-").str[0].astype(int))
    first = frame[frame["note"] == f"{NOTE} {plan[0][0]}"]
    ref = float(first["reference_accuracy_pct"].iloc[0])
    clean = float(first["accuracy_pct"].iloc[0])
    print(f"\n{plan[0][0]} ({clean:.1f} % clean): crossbar accuracy % on {images} test images "
          f"(float network on them: {ref:.1f} %); rows input bits, columns ADC bits")
    print(first.pivot_table(index="p", columns="b", values="nonideal_accuracy_pct")
          .round(1).to_string())

    penalty = PrecisionPenalty.fit(frame)
    penalty.save(f"{out}.json")
    plot_penalty(penalty, first, f"{out}.png",
                 title=f"VGG16 channels, width 0.25, {clean:.0f} % clean, {images} test images\n"
                       f"model fitted on 3 networks, rmse {penalty.rmse_pp:.1f} pp")
    frac = penalty.loss_fraction(first["p"].to_numpy()[:, None], first["b"].to_numpy()[:, None])
    fitted = first.assign(fit_loss_pp=frac * (ref - penalty.chance_pct),
                          loss_pp=ref - first["nonideal_accuracy_pct"])
    for label, column in (("measured", "loss_pp"), ("fitted", "fit_loss_pp")):
        print(f"\n{label} loss (pp), rows input bits, columns ADC bits:")
        print(fitted.pivot_table(index="p", columns="b", values=column).round(1).to_string())
    for name, _spec, _grid in plan[1:]:
        rows = frame[frame["note"] == f"{NOTE} {name}"]
        print(f"\n{name} ({rows['accuracy_pct'].iloc[0]:.1f} % clean): crossbar accuracy %")
        print(rows.pivot_table(index="p", columns="b", values="nonideal_accuracy_pct")
              .round(1).to_string())
    print(f"\nfit on {penalty.n_fit} evaluations of {len(plan)} networks: a_in {penalty.a_in:.2f}, "
          f"k_in {penalty.k_in:.2f}/bit, a_adc {penalty.a_adc:.2f}, k_adc {penalty.k_adc:.2f}/bit, "
          f"rmse {penalty.rmse_pp:.2f} pp; wrote {out}.json, {out}.png")


if __name__ == "__main__":
    main()

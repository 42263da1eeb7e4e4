"""Is the training-seed spread of the crossbar loss a calibration artifact? Redraw the calibration.

The precision-loss table's replicate (`precision.train_seed=1`) puts one training's crossbar loss
1.85 pp (RMS) from its design's mean on CIFAR-10, most of it attributed to the training seed
(`bench/calibrate/layer_penalty.py`, section "Two trainings of the same design"). But a second
training also meets the simulator's range calibration afresh: its input and ADC ranges are
percentiles of its activations on `crossbar.calib_images` training images, a sample. If that
sample moved the loss by as much, the spread would be the simulator's, reducible by calibrating
on more images, not the network's.

This study separates the two on the replicate's own settings. For `--rows` of the replicate pairs
(drawn seeded, at most `--per-network` per network), the seed-0 network of the table is
evaluated again at the row's bits on the same test images, with its calibration images drawn
`--draws` times from a seeded permutation of the training split instead of the evenly spaced
default (and once, on the first row, with the default: the table's loss, reproduced). Per row:
the table's loss (default calibration), the redrawn losses, and the seed-1 network's loss.
Summary: the std of one calibration draw (RMS over rows of the std over the default and redrawn
losses) beside, on the same rows, one training's spread about its design's mean (the seed-pair
difference over sqrt 2) and the test images' bootstrap noise.

Evaluations are appended to ``<out>.csv`` as they finish: a rerun resumes. Writes ``<out>.md``
(stamped).

    python bench/studies/calibration_spread.py [--rows 16] [--per-network 2] [--draws 2]
        [--data-root ../shared/datasets] [--out docs/results/calibration_spread_cifar10]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xpert_evo.config import plain_config
from xpert_evo.crossbar.evaluate import PairedEvaluator
from xpert_evo.crossbar.layer_penalty import table_arrays
from xpert_evo.crossbar.loss_noise import replicate_pairs
from xpert_evo.crossbar.loss_table import PACKAGED, paired_loss, read_table, table_dir
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.precision import source_spec
from xpert_evo.report import markdown_table
from xpert_evo.space.backbone import Backbone
from xpert_evo.training.data import DataSpec, Split, cache_root
from xpert_evo.training.groundtruth import checkpoint_path, load_checkpoint
from xpert_evo.training.network import torch_threads
from xpert_evo.training.source import default_fidelity
from xpert_evo.training.train import budget_splits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS, RESULTS, app_config, write_stamped  # noqa: E402

DATASET = "cifar10"
"""The data set whose table has a replicate (``<table>-seed1``)."""

SEED = 0
"""Seed of the row draw and of the calibration draws."""


def pick_rows(pairs: pd.DataFrame, rows: int, per_network: int, seed: int = SEED) -> pd.DataFrame:
    """`rows` replicate pairs drawn seeded, at most `per_network` of any network, spread over as
    many networks as the pairs hold."""
    shuffled = pairs.sample(frac=1.0, random_state=seed)
    kept = shuffled.groupby("net_id", sort=False).head(per_network)
    return kept.head(rows).sort_values(["net_id", "setting"]).reset_index(drop=True)


def redrawn(train: Split, draw: int, seed: int = SEED) -> Split:
    """The training split in the order of calibration draw `draw` (a seeded permutation): the
    evenly spaced calibration images `evaluation_data` picks from it are then another sample."""
    order = np.random.default_rng([seed, draw]).permutation(len(train))
    return Split(train.images[order], train.labels[order], train.dataset, train.num_classes)


def summary(frame: pd.DataFrame, draws: int) -> dict[str, float]:
    """Calibration std of one draw, one training's seed spread and the images' noise (pp, RMS
    over rows), on the rows of `frame` (one per pair, ``loss_pp_draw<k>`` columns); taking the
    three as independent, the network's own part of the spread (what remains of it net of the
    images and the calibration) and the spread a calibration without sampling noise would
    leave."""
    losses = frame[["loss_pp", *(f"loss_pp_draw{k}" for k in range(1, draws + 1))]]
    seed_half = (frame["loss_pp_replicate"] - frame["loss_pp"]) / math.sqrt(2.0)
    calibration = float(np.sqrt((losses.std(axis=1, ddof=1) ** 2).mean()))
    spread = float(np.sqrt((seed_half**2).mean()))
    images = float(np.sqrt((frame["loss_std_pp"] ** 2).mean()))
    return {
        "rows": len(frame), "calibration_std_pp": calibration, "training_spread_pp": spread,
        "image_noise_pp": images,
        "network_pp": math.sqrt(max(spread**2 - images**2 - calibration**2, 0.0)),
        "spread_without_calibration_pp": math.sqrt(max(spread**2 - calibration**2, 0.0)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--per-network", type=int, default=2)
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--data-root", default=str(DATASETS))
    parser.add_argument("--out", type=Path, default=RESULTS / f"calibration_spread_{DATASET}")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    fidelity = default_fidelity(DATASET)
    folder = table_dir(PACKAGED, DATASET, fidelity)
    table, replicate = read_table(folder), read_table(table_dir(PACKAGED, DATASET, fidelity, 1))
    chosen = pick_rows(replicate_pairs(table, replicate), args.rows, args.per_network)
    cfg = app_config([f"data.root={args.data_root}"])
    data = DataSpec.from_config(cfg.data)
    spec = source_spec(DATASET, None, args.threads, "cpu")
    data = spec.trained_data(data)
    xbar = CrossbarSpec.from_config({**plain_config(cfg.crossbar),
                                     "test_images": int(table["images"].iloc[0])}, cfg.hardware)
    backbone = Backbone(input_size=data.input_size, num_classes=data.num_classes)
    csv = args.out.with_suffix(".csv")
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["net_id", "setting",
                                                                       "draw"])
    have = set(zip(done["net_id"], done["setting"], done["draw"], strict=True))
    # draw 0 (the default calibration) once, on the first row: the table's loss, reproduced
    todo = [(r, k) for r in chosen.itertuples() for k in range(0 if r.Index == 0 else 1,
                                                                args.draws + 1)
            if (r.net_id, r.setting, k) not in have]
    print(f"{len(chosen)} replicate pairs, {args.draws} calibration draws each: "
          f"{len(todo)} evaluations to run", flush=True)
    per_layer = table_arrays(chosen)
    with torch_threads(args.threads):
        splits = budget_splits(data, spec, None)
        for i, (row, draw) in enumerate(todo, 1):
            start = time.perf_counter()
            channels = per_layer["channels"][row.Index].tolist()
            ckpt = checkpoint_path(channels, data, spec, 0, cache_root(None) / "checkpoints")
            if not ckpt.is_file():
                raise SystemExit(f"net {row.net_id}: no checkpoint {ckpt}; build the table's "
                                 "networks first (python -m xpert_evo.precision)")
            model, _ = load_checkpoint(ckpt, channels, backbone, spec)
            calib_source = splits.train if draw == 0 else redrawn(splits.train, draw)
            evaluator = PairedEvaluator(model, xbar, splits.test, calib_source, "cpu")
            loss, _ = paired_loss(evaluator.float_correct, evaluator.crossbar_correct(
                per_layer["input_bits"][row.Index], per_layer["adc_bits"][row.Index]))
            pd.DataFrame([{"net_id": row.net_id, "setting": row.setting, "draw": draw,
                           "loss_pp": loss}]).to_csv(csv, mode="a", header=not csv.exists(),
                                                     index=False)
            print(f"[{i}/{len(todo)}] net {row.net_id} setting {row.setting} draw {draw}: "
                  f"loss {loss:.2f} pp (table {row.loss_pp:.2f}, seed 1 "
                  f"{row.loss_pp_replicate:.2f}), {time.perf_counter() - start:.0f} s", flush=True)
    measured = pd.read_csv(csv).pivot_table(index=["net_id", "setting"], columns="draw",
                                            values="loss_pp")
    measured.columns = [f"loss_pp_draw{k}" for k in measured.columns]
    frame = chosen.merge(measured.reset_index(), on=["net_id", "setting"])
    check = frame.dropna(subset=["loss_pp_draw0"]).iloc[0]
    reproduced = (f"Check: evaluated again with the default calibration, net {check.net_id} "
                  f"setting {check.setting} loses {check.loss_pp_draw0:.2f} pp, the table "
                  f"{check.loss_pp:.2f} pp.")
    frame = frame.drop(columns="loss_pp_draw0").dropna()
    result = summary(frame, args.draws)
    shown = frame[["net_id", "setting", "setting_kind", "loss_pp",
                   *(f"loss_pp_draw{k}" for k in range(1, args.draws + 1)), "loss_pp_replicate",
                   "loss_std_pp"]]
    write_stamped(args.out.with_suffix(".md"), [
        "",
        "# Crossbar loss: the calibration draw against the training seed",
        "",
        f"Table `{folder.relative_to(PACKAGED.parents[2])}` and its seed-1 replicate: "
        f"{result['rows']} of the replicate's pairs ({args.per_network} per network at most, "
        f"drawn with seed {SEED}). `loss_pp`: the table's loss of the seed-0 network (default "
        f"calibration: {xbar.calib_images} evenly spaced training images); `loss_pp_draw<k>`: the "
        "same network, bits and test images with the calibration images drawn from permutation "
        "k of the training split; `loss_pp_replicate`: the network retrained at seed 1 (default "
        "calibration); `loss_std_pp`: the table row's bootstrap noise over the test images.",
        "",
        f"**One calibration draw moves the loss by {result['calibration_std_pp']:.2f} pp** (RMS "
        "over rows of the std over the default and redrawn calibrations), against "
        f"**{result['training_spread_pp']:.2f} pp** for one training about its design's mean "
        "(seed-pair difference over sqrt 2) on the same rows, whose test images' noise is "
        f"{result['image_noise_pp']:.2f} pp. Taken as independent parts, that leaves "
        f"{result['network_pp']:.2f} pp to the trained network itself. A model of the design "
        "alone is scored against single trainings, each with its own calibration: the "
        "calibration's part of the spread is reducible by calibrating on more images (its std "
        "falls as one over the square root of their number), the rest is not; without it one "
        f"training would scatter by {result['spread_without_calibration_pp']:.2f} pp.",
        "",
        reproduced,
        "",
        markdown_table(shown.round(2)),
        "",
    ])
    print(pd.Series(result).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())

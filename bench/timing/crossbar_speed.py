"""Crossbar simulation speed: images/s of one crossbar evaluation, before and after exact
integer partial sums (issue 26).

Run: python bench/timing/crossbar_speed.py [--images 500] [--rounds 2] [--before COMMIT]
(writes docs/results/crossbar_speed.md)

One evaluation is what `xpert_evo.crossbar.evaluate.evaluate_genome` does: map the trained
network (BatchNorm folding, weight quantisation, input ranges), calibrate the ADC ranges on 256
training images (`calibrate_adc`), then run `--images` test images (evenly spread over the test
split) through the crossbar in batches of 100, one thread, with the shipped crossbar and
hardware settings (conf/crossbar/default.yaml, conf/hardware/xpert_rram_32nm.yaml) in both weight
encodings. Two precision settings: the reference design's (8 input bits, 6 ADC bits in every
layer) and one per-layer setting drawn at random (seed 0) from the searched options
(conf/space/default.yaml). Two networks, trained here for a few epochs with xpert_evo.training
(the speed does not depend on the training; their accuracy shows that the results compared are
those of networks that learned something): VGG16 at quarter width (16 to 128 channels) and a
narrow one (16 channels in every layer).

"Before" is xpert_evo/crossbar/simulate.py at `--before` (default: the commit before
xpert_evo/crossbar/partial_sums.py was added: a grouped float32 convolution over the input
bit-planes), loaded from git into a temporary module; "after" is the working tree's. They run
alternately in this process (before, after, before, after, ...) so that they share the
machine's load, and the speedup is the median of the per-round ratios. images/s is test images
per second of the whole evaluation (mapping, calibration, forward); the forward pass alone is
what larger evaluations approach, the calibration being a fixed cost.

Everything is timed twice: with glibc's default allocator behaviour (a process that only evaluates,
as bench/calibrate/precision_loss.py's), then after `retain_freed_memory()` (a process that has
trained with `train_network`, which sets it process-wide). The old code's large temporaries are
page-faulted in afresh under the defaults, so it runs about twice as fast with retained memory; the
new code works in cache-sized tiles and hardly notices. The networks are trained in a child process
so that the first pass sees the defaults.

The results of the two are compared on the same images: ADC ranges (bit-identical expected),
accuracy and differing predictions. The old arithmetic divided the cell values by the ADC step
before a float32 convolution, so a partial sum whose exact quotient is a tie (x.5; frequent, as
calibrated ranges are percentiles of integers) rounded the way the convolution's rounding
errors fell: its predictions change with the batch size (measured: "before, batches of 50"). The
new path rounds the exact quotient half to even and is reproduced bit for bit by the grouped
convolution with exact partial sums (tests/test_crossbar_exact.py).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from xpert_evo.crossbar import simulate
from xpert_evo.crossbar.evaluate import evaluation_data
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.report.provenance import stamp
from xpert_evo.space import VGG16_CHANNELS
from xpert_evo.training.data import DataSpec
from xpert_evo.training.network import build_network, retain_freed_memory, torch_threads
from xpert_evo.training.train import Splits, TrainSpec, budget_splits, train_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS, REPO, RESULTS, load_conf  # noqa: E402

RESULT = RESULTS / "crossbar_speed.md"
NETWORKS: dict[str, list[int]] = {
    "VGG16 x0.25": list(VGG16_CHANNELS),
    "narrow (16 channels)": [64] * 13,
}
"""Channel genes, trained at `WIDTH`."""
WIDTH = 0.25
"""Width multiplier of the benchmarked networks (quarter width: what the issue timed)."""
TRAIN = {"epochs": 4, "train_per_class": 200, "batch_size": 64, "lr": 0.05, "num_threads": 1}
"""A few epochs on 2,000 images: about 35 % test accuracy (CIFAR-10), enough to be trained."""


def load_before(commit: str) -> types.ModuleType:
    """xpert_evo/crossbar/simulate.py as it was at `commit`, as a module."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:xpert_evo/crossbar/simulate.py"],
        check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("simulate_before")
    exec(compile(source, f"{commit}:xpert_evo/crossbar/simulate.py", "exec"), module.__dict__)
    return module


def default_before() -> str:
    """The commit before the one that added xpert_evo/crossbar/partial_sums.py (HEAD if none)."""
    added = subprocess.run(
        ["git", "-C", str(REPO), "log", "--diff-filter=A", "--format=%H", "--",
         "xpert_evo/crossbar/partial_sums.py"], check=True, capture_output=True,
        text=True).stdout.split()
    return f"{added[-1]}^" if added else "HEAD"


def settings() -> dict[str, tuple[list[int], list[int]]]:
    """Precision settings: name -> (input bits, ADC bits) per conv layer."""
    space = load_conf("space")
    rng = np.random.default_rng(0)
    base = space["baseline"]
    return {
        f"{base['input_bits']} / {base['adc_bits']} bits": ([base["input_bits"]] * 13,
                                                           [base["adc_bits"]] * 13),
        "per layer (random)": (rng.choice(space["input_bits"], 13).tolist(),
                               rng.choice(space["adc_bits"], 13).tolist()),
    }


def evaluate(module: Any, model: nn.Sequential, spec: CrossbarSpec, data: tuple,
             bits: tuple[list[int], list[int]], batch: int) -> dict[str, Any]:
    """Time one crossbar evaluation; its logits and ADC ranges."""
    images, _, calib = data
    start = time.perf_counter()
    net = module.CrossbarNetwork(model, spec, calib)
    ranges = net.calibrate_adc(calib, bits[0])
    calibrated = time.perf_counter()
    logits = torch.cat([net(images[i : i + batch], bits[0], bits[1], adc_ranges=ranges)
                        for i in range(0, len(images), batch)])
    done = time.perf_counter()
    return {"calib_s": calibrated - start, "forward_s": done - calibrated, "logits": logits,
            "ranges": ranges}


def measure(args: argparse.Namespace, splits: Splits, models: dict[str, nn.Module],
            before: types.ModuleType, compare: bool) -> pd.DataFrame:
    """Alternate before / after on every (network, encoding, setting); one row each, with the
    results compared (`compare`: ranges, accuracies, predictions, and the old code's batch-size
    dependence) or only timed."""
    crossbar = {**load_conf("crossbar"), "test_images": args.images}
    hardware = load_conf("hardware", "xpert_rram_32nm")
    rows = []
    for name, model in models.items():
        for encoding in ("differential", "offset"):
            spec = CrossbarSpec.from_config(crossbar, {**hardware, "weight_encoding": encoding})
            data = evaluation_data(spec, splits.test, splits.train)
            labels = data[1]
            for label, bits in settings().items():
                runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
                for _ in range(args.rounds):
                    for key, module in (("before", before), ("after", simulate)):
                        runs[key].append(evaluate(module, model, spec, data, bits,
                                                  spec.batch_size))
                row = {"network": name, "encoding": encoding, "precision": label}
                for key, timings in runs.items():
                    total = [r["calib_s"] + r["forward_s"] for r in timings]
                    row[f"{key}_calib_s"] = statistics.median(r["calib_s"] for r in timings)
                    row[f"{key}_forward_img_s"] = args.images / statistics.median(
                        r["forward_s"] for r in timings)
                    row[f"{key}_img_s"] = args.images / statistics.median(total)
                pairs = list(zip(runs["before"], runs["after"], strict=True))
                row["forward_speedup"] = statistics.median(b["forward_s"] / a["forward_s"]
                                                           for b, a in pairs)
                row["speedup"] = statistics.median(
                    (b["calib_s"] + b["forward_s"]) / (a["calib_s"] + a["forward_s"])
                    for b, a in pairs)
                old, new = runs["before"][0], runs["after"][0]
                assert torch.equal(new["logits"], runs["after"][-1]["logits"])
                if compare:
                    half = evaluate(before, model, spec, data, bits, spec.batch_size // 2)
                    row["ranges_identical"] = all(torch.equal(a, b) for a, b in zip(
                        old["ranges"], new["ranges"], strict=True))
                    for key, result in (("before", old), ("after", new)):
                        row[f"{key}_acc_pct"] = 100.0 * float(
                            (result["logits"].argmax(1) == labels).double().mean())
                    row["changed_predictions"] = int(
                        (old["logits"].argmax(1) != new["logits"].argmax(1)).sum())
                    row["before_batch50_changed"] = int(
                        (old["logits"].argmax(1) != half["logits"].argmax(1)).sum())
                rows.append(row)
                print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()},
                      flush=True)
    return pd.DataFrame(rows)


def report(frame: pd.DataFrame, compared: pd.DataFrame, args: argparse.Namespace, commit: str,
           accuracy: dict[str, float], load: str) -> str:
    """The results page."""
    speed = frame[["allocator", "network", "encoding", "precision", "before_calib_s",
                   "after_calib_s", "before_forward_img_s", "after_forward_img_s",
                   "before_img_s", "after_img_s", "forward_speedup", "speedup"]]
    same = compared[["network", "encoding", "precision", "ranges_identical", "before_acc_pct",
                     "after_acc_pct", "changed_predictions", "before_batch50_changed"]]
    trained = ", ".join(f"{name} {acc:.1f} %" for name, acc in accuracy.items())
    return "\n".join([
        f"<!-- {stamp(f'load average {load} at the start')} -->", "",
        f"Crossbar evaluation speed (bench/timing/crossbar_speed.py), one thread: before = "
        f"xpert_evo/crossbar/simulate.py at `{commit}` (grouped float32 convolution over the "
        "input bit-planes), after = exact integer partial sums (int8 products, "
        "xpert_evo/crossbar/partial_sums.py). One evaluation: mapping (`calib_s` includes it), "
        f"ADC calibration on 256 training images, then {args.images} CIFAR-10 test images; "
        "images/s = test images per second of the whole evaluation, forward = of the forward "
        "pass alone (what long evaluations approach). Median of "
        f"{args.rounds} rounds run alternately, speedup = median of the per-round ratios. "
        "Allocator: glibc defaults (a process that only evaluates) or freed memory retained "
        "(after `train_network` in the same process). The machine was shared with other work "
        "(load above): compare the ratios, not the absolute rates.", "",
        speed.to_markdown(index=False, floatfmt=".2f"), "",
        f"Same images, same networks (trained here for {TRAIN['epochs']} epochs on "
        f"{TRAIN['train_per_class'] * 10} images; float test accuracy {trained}). The ADC "
        "ranges are bit-identical. Predictions that change between before and after come from "
        "partial sums whose exact quotient by the ADC step is a tie (x.5; with offset cells the "
        "step is an integer range / (2^b - 1), and ties are common): the new path rounds them "
        "half to even, the old one divided the cell values by the step in float32 first and "
        "rounded each tie the way that division's and the "
        "convolution's rounding errors fell, some the other way (every code that differs is a "
        "tie: tests/test_crossbar_exact.py), and its predictions also change with the batch "
        "size (`before_batch50_changed`: batches of 50 instead of 100). The new path gives the "
        "same results in any batch size and dtype, bit for bit those of the grouped convolution "
        "with exact partial sums (tests/test_crossbar_exact.py).", "",
        same.to_markdown(index=False, floatfmt=".2f"), "",
    ]) + "\n"


def train(data_root: str) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, float]]:
    """Train the networks: state dicts and float test accuracies (run in a child process:
    `train_network` makes its process retain freed memory)."""
    data = DataSpec(dataset="cifar10", root=data_root, allow_data_free=False)
    spec = TrainSpec(width_mult=WIDTH, **TRAIN)
    splits = budget_splits(data, spec)
    states, accuracy = {}, {}
    for name, channels in NETWORKS.items():
        result = train_network(channels, data, spec, seed=0, train_split=splits.train,
                               test_split=splits.test)
        states[name], accuracy[name] = result.model.state_dict(), result.clean_accuracy_pct
        print(f"{name}: {result.clean_accuracy_pct:.1f} % ({result.wall_s:.0f} s)", flush=True)
    return states, accuracy


def main() -> None:
    """Train the networks, time before and after under both allocator settings, write the
    results page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", default=None, help="commit of the old simulate.py")
    parser.add_argument("--data-root", default=str(DATASETS))
    args = parser.parse_args()
    commit = args.before or default_before()
    short = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", commit],
                           check=True, capture_output=True, text=True).stdout.strip()
    before = load_before(commit)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        states, accuracy = pool.apply(train, (args.data_root,))
    models = {}
    for name, channels in NETWORKS.items():
        models[name] = build_network(channels, width_mult=WIDTH)
        models[name].load_state_dict(states[name])
        models[name].eval()
    data = DataSpec(dataset="cifar10", root=args.data_root, allow_data_free=False)
    splits = budget_splits(data, TrainSpec(width_mult=WIDTH, **TRAIN))
    frames = []
    with torch_threads(1):
        for allocator in ("glibc defaults", "freed memory retained"):
            if allocator == "freed memory retained":
                retain_freed_memory()
            frame = measure(args, splits, models, before, compare=not frames)
            frames.append(frame.assign(allocator=allocator))
    text = report(pd.concat(frames, ignore_index=True), frames[0], args, short, accuracy, load)
    RESULT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

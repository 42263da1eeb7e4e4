"""Ground truth on CPU: train 8 architectures at low fidelity on real CIFAR-10 and compare proxies.

Budget (the whole script, 2 CPU cores): about 6 minutes on an idle machine; 25-45 minutes when
other jobs share the cores (CPU time per training then grows up to 20x); under 60 either way.
  * data: CIFAR-10 from ../shared/datasets/cifar10.zip (unpacked and decoded once into the
    cache directory), 500 training images per class (5,000 images), the full 10,000-image test
    split for the clean accuracy;
  * training: width multiplier 0.25, 5 epochs, batch 64, SGD Nesterov lr 0.05 (1 epoch warm-up,
    cosine), weight decay 5e-4, crop + flip; one seed;
  * crossbar: every trained network also runs on the crossbar at the VGG16 baseline's
    precision (8-bit inputs, 6-bit ADCs, 64x64 crossbars, 4-bit cells) on 500 test images;
  * proxies: NASWOT (log|det K| on one real 128-image batch, full-width network, seed 0) and the
    full-width parameter count, each compared with the measured clean accuracy by Kendall tau.

Every measurement is appended to the ground-truth table (`--table`, default
`<cache>/ground_truth.csv`); trained weights go to `<cache>/checkpoints/`, where
`bench/calibrate/precision_penalty.py` picks them up. Run:
`python bench/calibrate/ground_truth_cpu.py`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from xpert_evo.accuracy.batch import proxy_batch
from xpert_evo.accuracy.proxies import get_proxy, param_count, score_architecture
from xpert_evo.crossbar.evaluate import evaluate_genome
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataSpec, cache_root, decoded_split
from xpert_evo.training.groundtruth import (
    append_rows,
    checkpoint_path,
    default_path,
    fidelity_columns,
    genome_columns,
    save_checkpoint,
)
from xpert_evo.training.network import build_network, scaled_channels, torch_threads
from xpert_evo.training.train import TrainSpec, train_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS  # noqa: E402

ARCHITECTURES: dict[str, list[int]] = {
    "vgg16": list(VGG16_CHANNELS),
    "all64": [64] * 13,
    "all128": [128] * 13,
    "slim-wide": [64] * 7 + [512] * 6,
    "half-vgg": [64, 64, 64, 64, 128, 128, 128, 256, 256, 256, 256, 256, 256],
    "late-512": [64, 64, 128, 128, 128, 128, 128, 256, 256, 256, 512, 512, 512],
    "funnel": [128] * 7 + [64] * 6,
    "narrow-tail": [64, 64, 128, 128, 256, 256, 256, 128, 128, 128, 64, 64, 64],
}
"""The 8 architectures (output channels of the 13 conv layers, as searched)."""

NOTE = "bench/ground_truth_cpu.py"
"""The ground-truth rows' note (with the architecture's name): the script's path when the stored
rows were measured, kept so that they stay found."""

def main() -> None:
    """Train, evaluate and compare; prints the tables (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DATASETS))
    parser.add_argument("--cache-dir", default=None, help="default: $XPERT_EVO_CACHE or ~/.cache")
    parser.add_argument("--table", default=None, help="ground-truth CSV (default in cache dir)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--crossbar-images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with torch_threads(None) as threads:
        start = time.perf_counter()

        data = DataSpec(root=args.data_root, allow_data_free=False)
        spec = TrainSpec(epochs=args.epochs, train_per_class=args.per_class, width_mult=args.width,
                         batch_size=64, lr=0.05, warmup_epochs=1.0)
        xbar = CrossbarSpec(test_images=args.crossbar_images, calib_images=128)
        backbone = Backbone()
        train = decoded_split(data, "train", spec.train_per_class, args.cache_dir)
        test = decoded_split(data, "test", None, args.cache_dir)
        batch = proxy_batch(data, 128, seed=0, cache_dir=args.cache_dir)
        table = Path(args.table) if args.table else default_path(None, args.cache_dir)
        folder = cache_root(args.cache_dir) / "checkpoints"
        print(f"CIFAR-10, {len(train)} training / {len(test)} test images; "
              f"budget {spec.fidelity()}, "
              f"lr {spec.lr}; {threads} CPU threads; crossbar on {xbar.test_images} test images")
        print(f"{'arch':<12} {'params':>10} {'naswot':>8} {'MMAC@w':>7} {'train_s':>8} "
              f"{'clean%':>7} {'xbar%':>6} {'xbar_s':>6}")

        rows = []
        for name, channels in ARCHITECTURES.items():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                params = param_count(build_network(channels, backbone), batch.images)
            naswot = score_architecture(get_proxy("naswot"), channels, batch.images, backbone, 0)
            result = train_network(channels, data, spec, args.seed, train_split=train,
                                   test_split=test)
            ckpt = save_checkpoint(result.model, result.measured(),
                                   checkpoint_path(channels, data, spec, args.seed, folder),
                                   result.wall_s)
            genome = Genomes.uniform(channels, 8, "flash", 6, 8)
            nonideal = evaluate_genome(result.model, genome, xbar, test, train)
            widths = np.asarray(scaled_channels(channels, spec.width_mult, spec.min_channels))
            c_in = np.concatenate([[3], widths[:-1]])
            mmac = float((backbone.feature_sizes() ** 2 * c_in * widths * 9).sum() / 1e6)
            row = {
                "kind": "train+crossbar", "dataset": "cifar10", "input_size": 32, "num_classes": 10,
                **genome_columns(genome), **fidelity_columns(spec), "seed": args.seed,
                "accuracy_pct": result.clean_accuracy_pct, "test_images": result.n_test,
                "reference_accuracy_pct": nonideal.reference_accuracy_pct,
                "nonideal_accuracy_pct": nonideal.accuracy_pct,
                "crossbar_test_images": nonideal.n_images, "weight_encoding": xbar.weight_encoding,
                "wall_s": result.wall_s + nonideal.wall_s, "device": result.device,
                "checkpoint": str(ckpt), "note": f"{NOTE} {name}",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            append_rows([row], table)
            rows.append({**row, "name": name, "params": params, "naswot": naswot,
                         "train_s": result.wall_s})
            print(f"{name:<12} {params:>10.0f} {naswot:>8.1f} {mmac:>7.1f} {result.wall_s:>8.1f} "
                  f"{result.clean_accuracy_pct:>7.2f} {nonideal.accuracy_pct:>6.1f} "
                  f"{nonideal.wall_s:>6.1f}", flush=True)

        acc = np.array([r["accuracy_pct"] for r in rows])
        print("\nKendall tau against the measured clean accuracy (8 architectures):")
        for key in ("naswot", "params"):
            tau, p_value = kendalltau([r[key] for r in rows], acc)
            print(f"  {key:<8} tau = {tau:+.3f} (p = {p_value:.2f})")
        tau, _ = kendalltau([r["nonideal_accuracy_pct"] for r in rows], acc)
        print(f"  crossbar accuracy (8-bit inputs, 6-bit ADCs) vs clean: tau = {tau:+.3f}")
        train_s = np.array([r["train_s"] for r in rows])
        print(f"\ntraining time per network: mean {train_s.mean():.0f} s, "
              f"min {train_s.min():.0f} s, "
              f"max {train_s.max():.0f} s; total bench {time.perf_counter() - start:.0f} s")
        print(f"rows appended to {table}")


if __name__ == "__main__":
    main()

"""Seconds per architecture of every proxy on CPU, batch 128: cold, cached in memory, on disk.

Networks: narrowest (all 64 channels), VGG16 and widest (all 512). Uses one real CIFAR-10
training batch from ../shared/datasets when present, else the Gaussian-noise batch. Scores go to a
throw-away cache directory, so "cold" really computes.

    python bench/timing/proxy_cost.py [--root ../shared/datasets] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from xpert_evo.accuracy import PROXIES, build_accuracy
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS  # noqa: E402

NETWORKS = {"narrowest": [64] * 13, "vgg16": list(VGG16_CHANNELS), "widest": [512] * 13}


def _seconds(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    """Run the benchmark and print one line per (proxy, network)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(DATASETS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    backbone = Backbone()
    data = {"dataset": "cifar10", "root": args.root}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}")
    print(f"{'proxy':<9}{'network':<11}{'score':>14}{'cold s':>9}{'memory s':>10}{'disk s':>9}")
    sources = []
    with tempfile.TemporaryDirectory() as scores_dir:
        for name in PROXIES:
            cfg = {"proxy": name, "batch_size": args.batch_size}
            est = build_accuracy(cfg, data, backbone, args.seed, Path(scores_dir))
            fresh = build_accuracy(cfg, data, backbone, args.seed, Path(scores_dir))
            sources.append(est.source)
            for label, channels in NETWORKS.items():
                row = np.array([channels])
                cold = _seconds(est.true_score, row)
                memory = _seconds(est.true_score, row)
                disk = _seconds(fresh.true_score, row)
                score = float(est.true_score(row)[0])
                print(f"{name:<9}{label:<11}{score:>14.2f}{cold:>9.3f}{memory:>10.5f}{disk:>9.5f}")
    print("sources: " + "; ".join(sources))


if __name__ == "__main__":
    main()

"""How well does the surrogate rank architectures the way the true NASWOT proxy does?

Samples architectures with channels uniform from {64, 128, 256, 512}, scores them with NASWOT on
one real CIFAR-10 training batch (from ../shared/datasets/cifar10.zip, unpacked to the cache),
fits every surrogate model (32 members) on the first part (and the default model on the first 64,
the default initial budget) and prints Kendall tau and Spearman rho on the held-out rest, next to
the parameter-count baseline. Scores are cached, so a second run is fast.

    python bench/studies/surrogate_fidelity.py [--n 300] [--train 200] [--root ../shared/datasets]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from xpert_evo.accuracy import Surrogate, build_accuracy, channel_features, rank_agreement
from xpert_evo.accuracy.surrogate import MODELS
from xpert_evo.space.backbone import Backbone

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS  # noqa: E402

CHOICES = np.array([64, 128, 256, 512])


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="architectures sampled")
    parser.add_argument("--train", type=int, default=200, help="architectures the surrogate sees")
    parser.add_argument(
        "--initial", type=int, default=64, help="also fit the default model on this many only"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=str(DATASETS))
    parser.add_argument(
        "--cache-dir", default=None, help="default: $XPERT_EVO_CACHE or ~/.cache/xpert_evo"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    backbone = Backbone()
    data = {"dataset": "cifar10", "root": args.root, "allow_data_free": False}
    est = build_accuracy({"proxy": "naswot"}, data, backbone, args.seed, args.cache_dir)
    print(f"source: {est.source}")
    rng = np.random.default_rng(args.seed)
    channels = rng.choice(CHOICES, size=(args.n, backbone.n_conv))
    start = time.perf_counter()
    scores = est.true_score(channels)
    seconds = time.perf_counter() - start
    print(
        f"true NASWOT on {args.n} architectures: {seconds:.1f} s "
        f"({est.n_true_calls} computed, {est.n_cache_hits} cached)"
    )
    test = slice(args.train, args.n)
    print(f"\nheld-out rank agreement with true NASWOT ({args.n - args.train} architectures):")
    print(f"{'predictor':<28}{'Kendall tau':>12}{'Spearman rho':>14}{'CV tau':>9}{'fit s':>8}")
    log_params = channel_features(channels[test], backbone)[:, backbone.n_conv]
    tau, rho = rank_agreement(scores[test], log_params)
    print(f"{'parameter count (baseline)':<28}{tau:>12.3f}{rho:>14.3f}{'':>9}{'':>8}")
    big = rng.choice(CHOICES, size=(100_000, backbone.n_conv))
    runs = [(model, args.train) for model in MODELS] + [(MODELS[0], args.initial)]
    for model, n_fit in runs:
        surrogate = Surrogate(model=model, seed=args.seed, backbone=backbone)
        t0 = time.perf_counter()
        cv = surrogate.fit(channels[:n_fit], scores[:n_fit])
        fit_s = time.perf_counter() - t0
        mean, _ = surrogate.predict(channels[test])
        tau, rho = rank_agreement(scores[test], mean)
        t0 = time.perf_counter()
        surrogate.predict(big)
        predict_s = time.perf_counter() - t0
        name = f"{model} ({n_fit} fit)"
        print(
            f"{name:<28}{tau:>12.3f}{rho:>14.3f}{cv['kendall_tau']:>9.3f}"
            f"{fit_s:>8.1f}   (100,000 predictions: {predict_s:.2f} s)"
        )


if __name__ == "__main__":
    main()

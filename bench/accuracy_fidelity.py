"""How well does each accuracy objective rank what training measures? The held-out check.

Reads the measured CIFAR-10 source (`python -m xpert_evo.source`; by default the packaged one):
stand-alone trainings at one budget, each with validation accuracy (what models select on) and
test accuracy (reported only). Then:
  * seed noise: networks trained at several seeds give the seed-to-seed std of the validation
    accuracy, and from it the highest Kendall tau any predictor can reach against one training
    run of the held-out networks (Gaussian noise; the ceiling is (2/pi) arcsin(sqrt(R)) with
    reliability R = 1 - noise variance / variance of the held-out accuracies);
  * the predictor (`CleanAccuracyPredictor`, model chosen by cross-validation on the "fit"
    networks only) is fitted on the "fit" networks and scored on the "heldout" ones, against
    their test accuracy; its fitted (in-sample) error is reported apart;
  * NASWOT (128 real training images), synflow and the parameter count, each scored on the same
    held-out networks at full width, seed 0;
  * the predictor's speed (predictions/s at a batch of 100,000).
Writes docs/results/accuracy_fidelity.md and .csv, stamped with command, commit, date, machine.

Run: `python bench/accuracy_fidelity.py` (2-5 min on 2 cores, mostly the proxies).
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr

from xpert_evo.accuracy.batch import proxy_batch
from xpert_evo.accuracy.predictor import CleanAccuracyPredictor
from xpert_evo.accuracy.proxies import get_proxy, score_architecture
from xpert_evo.report.provenance import stamp
from xpert_evo.space.backbone import Backbone
from xpert_evo.training.data import DataSpec
from xpert_evo.training.groundtruth import per_layer_ints
from xpert_evo.training.network import torch_threads
from xpert_evo.training.source import find_source, network_means

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results"
PROXIES = ("naswot", "synflow", "params")


def channels_of(frame: pd.DataFrame) -> np.ndarray:
    """(N, 13) channel matrix of a frame with a dash-joined `channels` column."""
    return per_layer_ints(frame["channels"])


def rank_figures(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Kendall tau, Spearman rho and top-10 % overlap of `pred` against `truth`."""
    k = max(1, int(round(0.1 * len(truth))))
    top_true = set(np.argsort(-truth)[:k])
    top_pred = set(np.argsort(-pred)[:k])
    return {"kendall_tau": float(kendalltau(pred, truth)[0]),
            "spearman_rho": float(spearmanr(pred, truth)[0]),
            "top10_overlap": len(top_true & top_pred) / k}


def seed_noise(table: pd.DataFrame) -> tuple[float, int, int]:
    """(pooled seed-to-seed std of validation accuracy in pp, networks, trainings) over the
    networks trained at more than one seed."""
    multi = table.groupby("channels").filter(lambda g: g["seed"].nunique() > 1)
    if multi.empty:
        return math.nan, 0, 0
    groups = multi.groupby("channels")["val_accuracy_pct"]
    pooled = float(np.sqrt((groups.var(ddof=1) * (groups.count() - 1)).sum()
                           / (groups.count() - 1).sum()))
    return pooled, groups.ngroups, len(multi)


def main() -> None:
    """Compute the figures, print them and write the results files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", default=None, help="default: the packaged sources")
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    fidelity, table = find_source("cifar10", None, args.source_dir)
    nets = network_means(table)
    fit, held = nets[nets["role"] == "fit"], nets[nets["role"] == "heldout"]
    backbone = Backbone()
    predictor = CleanAccuracyPredictor(backbone).fit(channels_of(fit), fit["val_accuracy_pct"])
    truth = held["accuracy_pct"].to_numpy()
    mean, std = predictor.predict(channels_of(held))
    fitted_mean, _ = predictor.predict(channels_of(fit))
    rows = [{"objective": f"predictor ({predictor.report['model']}), held-out",
             **rank_figures(mean, truth), "mae_pp": float(np.abs(mean - truth).mean()),
             "within_1_std": float(np.mean(np.abs(mean - truth) <= std))},
            {"objective": "predictor, fitted networks (in-sample)",
             **rank_figures(fitted_mean, fit["val_accuracy_pct"].to_numpy()),
             "mae_pp": float(np.abs(fitted_mean - fit["val_accuracy_pct"]).mean())}]
    data = DataSpec(root=args.data_root, allow_data_free=False)
    with torch_threads(None):
        batch = proxy_batch(data, 128, seed=0, cache_dir=args.cache_dir)
        for name in PROXIES:
            scores = np.array([score_architecture(get_proxy(name), c, batch.images, backbone, 0)
                               for c in channels_of(held)])
            rows.append({"objective": f"{name} (full width, seed 0)",
                         **rank_figures(scores, truth)})
    noise_pp, noise_nets, noise_runs = seed_noise(table)
    spread = float(held["val_accuracy_pct"].std(ddof=1))
    reliability = max(0.0, 1.0 - noise_pp**2 / spread**2) if spread > 0 else math.nan
    ceiling = 2 / math.pi * math.asin(math.sqrt(reliability)) if reliability == reliability else \
        math.nan
    probe = np.random.default_rng(0).choice([64, 128, 256, 512], size=(100_000, 13))
    start = time.perf_counter()
    predictor.predict(probe)
    rate = 100_000 / (time.perf_counter() - start)
    frame = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT / "accuracy_fidelity.csv", index=False)
    facts = [
        f"<!-- {stamp()} -->",
        "",
        f"Measured source: CIFAR-10, training budget {fidelity}; {len(table)} trainings of "
        f"{len(nets)} networks ({len(fit)} fit, {len(held)} held out); validation = the last "
        f"500 training images per class, test = the 10,000 test images. Wall time per "
        f"training: median {table['wall_s'].median():.0f} s, range {table['wall_s'].min():.0f}-"
        f"{table['wall_s'].max():.0f} s, {table['wall_s'].sum() / 3600:.1f} h in all (one "
        "thread each, two trainings sharing 2 cores with other work).",
        "",
        f"Seed noise: pooled std {noise_pp:.2f} pp over {noise_nets} networks x their seeds "
        f"({noise_runs} trainings); held-out validation accuracies spread {spread:.2f} pp "
        f"(std); reliability {reliability:.2f}; Kendall tau ceiling against one training run "
        f"{ceiling:.2f}.",
        "",
        f"Held-out networks: {len(held)}. Ranks are against their measured test accuracy "
        "(predictor fitted on validation accuracy of the fit networks only).",
        "",
        frame.to_markdown(index=False, floatfmt=".3f"),
        "",
        f"Predictor speed: {rate:,.0f} predictions/s (batch 100,000).",
        "",
        "Model selection on the fit networks (cross-validated): "
        + ", ".join(f"{k} MAE {v['cv_mae_pp']:.2f} pp / tau {v['cv_kendall_tau']:.2f}"
                    for k, v in predictor.report["candidates"].items()) + ".",
    ]
    text = "\n".join(facts) + "\n"
    (OUT / "accuracy_fidelity.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

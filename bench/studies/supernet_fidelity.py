"""Weight sharing against the table: does a supernet rank what stand-alone training measures?

Issue 12 named two ways to measure the accuracy of the whole channel space: a weight-sharing
supernet (Once-for-All / NSGANetV2, `xpert_evo/training/supernet.py`) or a table of stand-alone
trainings (`xpert_evo/training/source.py`, what the predictor is fitted on). This bench measures
the first against the second, at the same budget:
  * trains the supernet of the searched channel options once, with the sandwich rule and
    in-place distillation, on the same training images, width, batch and recipe as the data
    set's measured source, for `--epochs` epochs (checkpointed every epoch, resumed on rerun);
  * reads every network of the source from it: BatchNorm recalibrated on training images, then
    its validation accuracy (what models select on);
  * ranks them against their stand-alone test accuracy (mean over seeds), on the held-out
    networks side by side with the table's predictor (fitted on the fit networks only) and the
    seed-noise ceiling, and on every network (the supernet saw none of the measurements).
Writes docs/results/supernet_fidelity[_<dataset>].md, .csv and a per-network CSV, stamped.

Run: `python bench/studies/supernet_fidelity.py [--dataset cifar10] [--epochs 15]` (CIFAR-10, 15
epochs: about 1 h of one thread, plus about 10 s per network read).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from xpert_evo.accuracy.predictor import CleanAccuracyPredictor
from xpert_evo.accuracy.surrogate import rank_figures
from xpert_evo.space.backbone import GEOMETRY, Backbone
from xpert_evo.training.data import DataSpec, cache_root
from xpert_evo.training.groundtruth import per_layer_ints
from xpert_evo.training.network import torch_threads
from xpert_evo.training.source import (
    find_source,
    network_means,
    seed_mean_ceilings,
    seed_noise,
    source_training,
)
from xpert_evo.training.supernet import subnet_accuracy_pct, train_supernet
from xpert_evo.training.train import TrainSpec, budget_splits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS, RESULTS, load_conf, write_stamped  # noqa: E402


def main() -> None:
    """Train (or resume) the supernet, read every source network from it, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(GEOMETRY), default="cifar10")
    parser.add_argument("--epochs", type=int, default=15, help="supernet training epochs")
    parser.add_argument("--n-random", type=int, default=2,
                        help="random subnets per step besides the largest and smallest")
    parser.add_argument("--no-distill", action="store_true",
                        help="train the smaller subnets on the labels, not the largest's output")
    parser.add_argument("--calibration-images", type=int, default=2000,
                        help="training images that recalibrate each subnet's BatchNorm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-root", default=str(DATASETS))
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    node = source_training(args.dataset)
    source_spec = TrainSpec.from_config(node)
    spec = replace(source_spec, epochs=args.epochs, num_threads=args.threads)
    options = load_conf("space")["channels"]
    input_size, num_classes = GEOMETRY[args.dataset]
    data = DataSpec(dataset=args.dataset, root=args.data_root, input_size=input_size,
                    num_classes=num_classes, allow_data_free=False)
    fidelity, table = find_source(args.dataset, source_spec.fidelity())
    nets = network_means(table)
    distill = "kd" if not args.no_distill else "labels"
    tag = f"{args.dataset}-{spec.fidelity()}-sandwich{args.n_random + 2}-{distill}"
    checkpoint = cache_root(args.cache_dir) / "supernet" / f"{tag}.pt"
    result = train_supernet(options, data, spec, seed=0, n_random=args.n_random,
                            distill=not args.no_distill, checkpoint=checkpoint,
                            cache_dir=args.cache_dir)
    splits = budget_splits(data, spec, args.cache_dir)
    read = []
    start = time.perf_counter()
    with torch_threads(args.threads):
        for i, channels in enumerate(per_layer_ints(nets["channels"])):
            read.append(subnet_accuracy_pct(result.model, channels, spec.width_mult,
                                             splits.train, splits.val, args.calibration_images,
                                             min_channels=spec.min_channels))
            logging.info("network %d/%d: supernet %.2f %%, stand-alone %.2f %%", i + 1,
                         len(nets), read[-1], nets["accuracy_pct"].iloc[i])
    read_s = (time.perf_counter() - start) / len(nets)
    nets = nets.assign(supernet_val_accuracy_pct=read)
    held = nets[nets["role"] == "heldout"]
    fit = nets[nets["role"] == "fit"]
    predictor = CleanAccuracyPredictor(Backbone(input_size=input_size, num_classes=num_classes))
    predictor.fit(per_layer_ints(fit["channels"]), fit["val_accuracy_pct"])
    predicted, _ = predictor.predict(per_layer_ints(held["channels"]))
    truth = held["accuracy_pct"].to_numpy()
    noise_pp, _, _ = seed_noise(table, "accuracy_pct")
    ceiling, _ = seed_mean_ceilings(noise_pp, truth, held["n_seeds"])
    ceiling_all, _ = seed_mean_ceilings(noise_pp, nets["accuracy_pct"], nets["n_seeds"])
    rows = [
        {"objective": "supernet (BN recalibrated, validation accuracy), held-out",
         "networks": len(held), **rank_figures(held["supernet_val_accuracy_pct"].to_numpy(),
                                               truth), "tau_ceiling": ceiling},
        {"objective": f"table predictor ({predictor.report['model']}, fitted on {len(fit)} "
                      "fit networks), held-out", "networks": len(held),
         **rank_figures(predicted, truth), "tau_ceiling": ceiling},
        {"objective": "supernet, every network of the source", "networks": len(nets),
         **rank_figures(nets["supernet_val_accuracy_pct"].to_numpy(),
                        nets["accuracy_pct"].to_numpy()), "tau_ceiling": ceiling_all},
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.dataset == "cifar10" else f"_{args.dataset}"
    frame = pd.DataFrame(rows)
    frame.to_csv(RESULTS / f"supernet_fidelity{suffix}.csv", index=False, float_format="%.4f")
    nets.to_csv(RESULTS / f"supernet_fidelity{suffix}_networks.csv", index=False,
                float_format="%.3f")
    offset = nets["supernet_val_accuracy_pct"] - nets["accuracy_pct"]
    trained_h = result.wall_s / 3600
    source_h = table["wall_s"].sum() / 3600
    text = write_stamped(RESULTS / f"supernet_fidelity{suffix}.md", [
        "",
        f"Supernet of the channel options {options} at the budget of the {args.dataset} source "
        f"({fidelity}) but {spec.epochs} epochs: sandwich rule with {args.n_random} random "
        f"subnets per step, smaller subnets trained on "
        f"{'the largest one’s soft predictions' if distill == 'kd' else 'the labels'}. "
        f"Training took {trained_h:.2f} h on {result.device} ({args.threads} thread"
        f"{'s' * (args.threads > 1)}); the source's {len(table)} stand-alone trainings took "
        f"{source_h:.1f} h. Reading one network (BatchNorm recalibrated on "
        f"{args.calibration_images} training images, then {len(splits.val):,} validation "
        f"images): {read_s:.1f} s.",
        "",
        "Measured: every accuracy here. Ranks are against the stand-alone test accuracy, mean "
        f"over each network's seeds; seed noise {noise_pp:.2f} pp caps tau at the ceiling shown. "
        "The supernet was fitted on no stand-alone measurement, so every network is unseen by "
        "it; the table predictor is scored on the held-out networks only.",
        "",
        frame.to_markdown(index=False, floatfmt=".3f"),
        "",
        f"The supernet's subnets read {offset.mean():+.2f} pp (std {offset.std():.2f} pp) from "
        "their stand-alone accuracy: its level is not the stand-alone one, only its ranks are "
        "compared.",
        "",
    ])
    print(text)


if __name__ == "__main__":
    main()

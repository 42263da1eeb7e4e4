"""Does a training budget tell networks apart better than seeds do? The fidelity pilot.

A measured source can only validate a predictor as far as its seed noise allows: the Kendall tau
ceiling of `accuracy_fidelity.py` (beside this script). This pilot measures that ceiling at a
candidate budget before anyone spends days building a source at it. It trains the `--networks`
cheapest networks (fewest multiply-accumulates; a resumed pilot keeps its own) of a data set's
packaged source at `--seeds` seeds each, at the source's budget with `key=value` overrides of
its `train:` node (e.g. `epochs=12`), and reports for every budget measured on those networks
(the source's own included; its seed-0 rows come from the source):
  * seed noise: pooled seed-to-seed std of the test accuracy (pp);
  * spread: std of the networks' mean test accuracy (pp);
  * the tau ceiling against one training per network, (2/pi) arcsin(sqrt(R)) with reliability
    R = 1 - noise variance / variance of single trainings (the spread of these few networks);
  * Kendall tau of the networks' means against the source budget's means (do ranks carry over?);
  * median wall time per training;
and, for every pair of budgets, how the same (network, seed) trainings differ.
The networks are the cheapest, not a sample of the space: compare budgets with each other, not
with the held-out ceiling of `accuracy_fidelity.md`.

Resumable: every training is appended to docs/results/fidelity_noise_<dataset>.csv at once, and a
rerun trains only the (budget, network, seed) it lacks (a kill loses one training). The source's
trainings of the pilot's networks are copied into that table too, so it still holds them once the
packaged source is rebuilt at another budget. Writes docs/results/fidelity_noise_<dataset>.md.

Run: `python bench/studies/fidelity_noise.py --dataset tinyimagenet --networks 6 --seeds 2
epochs=12` (about 1 h on 2 cores when two processes share it: add `num_threads=1 --n-shards 2
--shard 0` and `--shard 1`), then the same with no budget override to add the source budget's seeds.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import kendalltau

from xpert_evo.space.backbone import GEOMETRY, Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataSpec, cache_root
from xpert_evo.training.groundtruth import append_rows, load_table, measure_one, per_layer_ints
from xpert_evo.training.source import (
    SOURCE_TRAINING,
    TRAINING_PERIPHERALS,
    find_source,
    seed_mean_ceilings,
    seed_noise,
    source_training,
)
from xpert_evo.training.train import TrainSpec, budget_splits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS, RESULTS, write_stamped  # noqa: E402


def parse_overrides(items: list[str]) -> dict[str, object]:
    """`key=value` strings -> {key: YAML-parsed value}; exits with code 2 on a malformed one."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"override {item!r} is not key=value (e.g. epochs=12)")
        values[key] = yaml.safe_load(value)
    return values


def summarise(runs: pd.DataFrame, base: str) -> pd.DataFrame:
    """One row per budget (fidelity) of `runs`: noise, spread, ceiling, rank transfer, cost."""
    means = runs.groupby(["fidelity", "channels"])["accuracy_pct"].mean().unstack("fidelity")
    rows = []
    for fidelity, part in runs.groupby("fidelity"):
        noise, _, _ = seed_noise(part)
        per_net = part.groupby("channels")["accuracy_pct"]
        _, ceiling_one = seed_mean_ceilings(noise, per_net.mean(), per_net.count())
        both = means[[base, fidelity]].dropna()
        rows.append({
            "fidelity": fidelity, "networks": part["channels"].nunique(), "trainings": len(part),
            "mean_accuracy_pct": part["accuracy_pct"].mean(),
            "spread_pp": float(means[fidelity].dropna().std(ddof=1)),
            "seed_noise_pp": noise,
            "tau_ceiling_one_run": ceiling_one,
            f"tau_vs_{base}": (float(kendalltau(both[base], both[fidelity])[0])
                               if fidelity != base else np.nan),
            "median_wall_s": part["wall_s"].median(),
        })
    return pd.DataFrame(rows)


def paired(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per pair of budgets with trainings of the same (network, seed): how far the same
    training differs between the two (e.g. float32 against bfloat16 compute)."""
    table = runs.pivot_table(index=["channels", "seed"], columns="fidelity",
                             values="accuracy_pct")
    rows = []
    for i, a in enumerate(table.columns):
        for b in table.columns[i + 1:]:
            both = table[[a, b]].dropna()
            if len(both) < 2:
                continue
            diff = both[b] - both[a]
            nets = both.groupby(level="channels").mean()
            rows.append({
                "budget_a": a, "budget_b": b, "paired_trainings": len(both),
                "networks": len(nets), "mean_b_minus_a_pp": diff.mean(),
                "mean_abs_diff_pp": diff.abs().mean(), "std_diff_pp": diff.std(ddof=1),
                "tau_network_means": (float(kendalltau(nets[a], nets[b])[0])
                                      if len(nets) > 1 else np.nan),
            })
    return pd.DataFrame(rows)


def keep_source_rows(rows: pd.DataFrame, table: Path) -> None:
    """Append to the pilot's table the source trainings it compares with that it lacks, so the
    pilot can be summarised after the packaged source is rebuilt at another budget."""
    done = load_table(table)
    have = set(zip(done["fidelity"], done["channels"], done["seed"], strict=True))
    new = [row for row in rows.to_dict("records")
           if (row["fidelity"], row["channels"], row["seed"]) not in have]
    for row in new:
        row["note"] = f"copied from the packaged {row['fidelity']} source"
    if new:
        append_rows(new, table)


def main() -> None:
    """Train what is missing, then write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(SOURCE_TRAINING), default="tinyimagenet")
    parser.add_argument("--networks", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--data-root", default=str(DATASETS))
    parser.add_argument("--shard", type=int, default=0, help="train missing runs i %% n == shard")
    parser.add_argument("--n-shards", type=int, default=1, help="processes sharing the work")
    parser.add_argument("--no-train", action="store_true",
                        help="only summarise the trainings already measured")
    parser.add_argument("overrides", nargs="*", help="train: keys of the budget, key=value")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    node = source_training(args.dataset)
    base_spec = TrainSpec.from_config(node)
    try:
        spec = TrainSpec.from_config({**node, **parse_overrides(args.overrides)})
    except (TypeError, ValueError) as err:
        raise SystemExit(f"bad override: {err}") from None
    input_size, num_classes = GEOMETRY[args.dataset]
    data = DataSpec(dataset=args.dataset, root=args.data_root, input_size=input_size,
                    num_classes=num_classes, allow_data_free=False)
    trained = spec.trained_data(data)
    backbone = Backbone(input_size=trained.input_size, num_classes=num_classes)
    _, source = find_source(args.dataset, base_spec.fidelity())
    nets = source.drop_duplicates("channels")
    nets = nets.assign(macs=backbone.macs(per_layer_ints(nets["channels"])))
    table = RESULTS / f"fidelity_noise_{args.dataset}.csv"
    done = load_table(table) if table.is_file() else pd.DataFrame(columns=source.columns)
    # the networks a resumed pilot already trains first, so a growing source does not change them
    piloted = list(dict.fromkeys(done["channels"]))
    cheapest = nets[~nets["channels"].isin(piloted)].nsmallest(args.networks, "macs")
    chosen = (piloted + cheapest["channels"].tolist())[:args.networks]
    have = done[done["fidelity"] == spec.fidelity()]
    if spec.fidelity() == base_spec.fidelity():
        have = pd.concat([have, source])
    todo = [(c, s) for c in chosen for s in range(args.seeds)
            if not ((have["channels"] == c) & (have["seed"] == s)).any()]
    todo = [] if args.no_train else todo[args.shard::args.n_shards]
    logging.info("%s at %s: %d trainings to run", args.dataset, spec.fidelity(), len(todo))
    if todo:
        splits = budget_splits(data, spec)
        for n, (channels, seed) in enumerate(todo, start=1):
            genome = Genomes.uniform(per_layer_ints([channels])[0].tolist(), *TRAINING_PERIPHERALS)
            row = measure_one(genome, trained, spec, None, seed, backbone, splits,
                              cache_root() / "checkpoints")
            row["note"] = "fidelity pilot"
            append_rows([row], table)
            logging.info("[%d/%d] %s seed %d: test %.2f %% (%.0f s)", n, len(todo), channels,
                         seed, row["accuracy_pct"], row["wall_s"])
    keep_source_rows(source[source["channels"].isin(chosen)], table)
    runs = load_table(table)
    runs = runs[runs["channels"].isin(chosen)].drop_duplicates(["fidelity", "channels", "seed"])
    frame = summarise(runs, base_spec.fidelity())
    threads = f"{spec.num_threads} thread(s) each" if spec.num_threads else "every core each"
    text = write_stamped(RESULTS / f"fidelity_noise_{args.dataset}.md", [
        "",
        f"Fidelity pilot, {args.dataset}: the {len(chosen)} networks of the packaged source "
        f"({base_spec.fidelity()}) with the fewest multiply-accumulates, trained at several seeds "
        "at each budget (test accuracy on the whole test split). These are the cheapest networks, "
        "not a sample of the space: compare the budgets with each other. Wall time: source rows "
        f"one thread per training, two trainings sharing 2 cores; pilot rows {threads}, slower "
        "by whatever else ran on the machine then.", "",
        frame.to_markdown(index=False, floatfmt=".3f"), "",
        "The same trainings (network and seed) at two budgets: the difference is the budget's "
        "effect plus training noise; for two budgets that differ only in arithmetic (float32 / "
        "bfloat16) compare `std_diff_pp` with sqrt(2) x the seed noise above.", "",
        paired(runs).to_markdown(index=False, floatfmt=".3f"), "", "",
    ])
    print(text)


if __name__ == "__main__":
    main()

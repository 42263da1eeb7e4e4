"""How far does the low-fidelity accuracy carry? The fidelity ladder, and the budget choice.

Trains a fixed set of networks (`NETWORKS`: VGG16, XPertNet_50, narrow-head designs, the main
runs' role designs and source networks that span the source's accuracy range) at several
training budgets (*rungs*, `RUNGS`: the source's budget with overrides of its `train:` node) and
seeds, and reports how the networks' ranks and their gaps to VGG16 move from rung to rung:
  * per rung: seed noise, spread of the network means, the tau ceiling these imply, Kendall tau
    and Spearman against the reference rung (CIFAR-10: width 1.0 at the source's e5-pc500
    budget, in bfloat16; Tiny ImageNet: 64 px, as searched), the largest change of a network's
    gap to VGG16 against the reference, and the median seconds per training;
  * per network: its accuracy and its gap to VGG16 at every rung (the iso-accuracy design's gap
    tells whether the iso-accuracy claim survives the rung);
  * the shipped predictor's ranking scored against every rung;
  * the budget choice: the cheapest rung whose gaps stay within `GAP_TOLERANCE_PP` of the
    reference's and whose tau against it reaches `TAU_SHARE` of the ceiling.
Accuracies are measured test accuracy on the whole test split (10,000 CIFAR-10 images; the
validation split is in the csv too), mean over seeds.

Resumable and sharded like the source build: every training is appended at once to
docs/results/fidelity_ladder_<dataset>.csv (one row per network, rung and seed, keyed by
`channels`, the network's name in `role`), and a rerun trains only what the table lacks, so a
`kill -9` loses the training in progress. Job i belongs to shard i % n_shards; run one process
per shard (`--shard k --n-shards n`, or a SLURM array passing its task id as `--shard`). Source
rows of the packaged source, and of sources being built in docs/results/pending_source at a rung's
budget, are copied instead of retrained. The device is picked as `train.device:
auto` does (the GPU when there is one); `--threads` sets CPU threads per process.

Run (2 cores): `python bench/studies/fidelity_ladder.py --dataset cifar10 --threads 1
--n-shards 2 --shard 0` and `--shard 1` beside it; `--no-train` only writes the report
(docs/results/fidelity_ladder_<dataset>.md).
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr

from xpert_evo.config import ConfigError
from xpert_evo.hardware.reference import PUBLISHED
from xpert_evo.report.provenance import stamp
from xpert_evo.space.backbone import GEOMETRY, VGG16_CHANNELS, Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataSpec, cache_root
from xpert_evo.training.groundtruth import append_rows, load_table, measure_one
from xpert_evo.training.source import (
    TRAINING_PERIPHERALS,
    SourcePlan,
    find_source,
    seed_noise,
    source_training,
    tau_ceiling,
)
from xpert_evo.training.train import TrainSpec, budget_splits

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "results"


def _net(text: str) -> tuple[int, ...]:
    return tuple(int(c) for c in text.split("-"))


REFERENCE_NETWORKS: dict[str, tuple[int, ...]] = {
    "vgg16": VGG16_CHANNELS,
    "xpertnet_50": tuple(PUBLISHED["XPertNet_50"]),
    # narrow heads: VGG16 with its last layer, and its last stage, at 64 channels
    "vgg16_head64": (*VGG16_CHANNELS[:12], 64),
    "vgg16_stage5_64": (*VGG16_CHANNELS[:10], 64, 64, 64),
}
"""The ladder's first networks on every data set: the baseline, XPert's design, narrow heads."""

NETWORKS: dict[str, dict[str, tuple[int, ...]]] = {
    "cifar10": {
        **REFERENCE_NETWORKS,
        # role designs of `python -m xpert_evo` (seed 0) at commit 4acb055
        "default_knee": _net("64-64-256-128-256-128-256-256-512-512-512-256-512"),
        "default_iso_accuracy": _net("64-64-256-256-256-256-256-256-512-512-512-512-512"),
        "default_best_accuracy": _net("256-128-512-256-512-256-256-256-512-512-512-512-512"),
        "default_best_edap": _net("64-64-64-64-64-64-64-128-128-128-64-64-256"),
        # packaged source networks at the 10/37/63/90 % quantiles of its validation accuracy
        # (86 networks at commit 4acb055; plan ids 4, 73, 26, 1)
        "source_q10": _net("512-512-512-128-64-512-64-64-64-256-128-64-64"),
        "source_q37": _net("512-256-128-128-64-128-512-128-512-128-256-64-64"),
        "source_q63": _net("256-256-512-64-128-256-128-128-256-256-128-64-256"),
        "source_q90": _net("256-512-64-512-256-128-512-512-256-128-512-512-512"),
    },
    "tinyimagenet": {
        **REFERENCE_NETWORKS,
        # role designs of `python -m xpert_evo +experiment=tinyimagenet` (seed 0) at 4acb055
        "tiny_knee": _net("128-64-64-64-512-128-256-128-256-128-512-512-512"),
        "tiny_iso_accuracy": _net("256-128-64-128-512-128-512-128-512-256-512-512-512"),
        "tiny_best_accuracy": _net("512-512-512-128-512-256-512-256-512-128-512-512-512"),
        "tiny_best_edap": _net("64-64-64-64-64-64-64-128-64-64-128-64-512"),
        # packaged source networks at the 10/37/63/90 % quantiles (96 networks, plan ids
        # 90, 37, 11, 19)
        "source_q10": _net("128-128-128-128-128-64-128-128-128-64-64-128-64"),
        "source_q37": _net("512-128-64-64-64-256-512-128-512-64-512-512-128"),
        "source_q63": _net("128-128-128-256-128-512-128-128-128-512-256-128-512"),
        "source_q90": _net("512-64-512-256-256-256-256-512-256-512-512-512-512"),
    },
}
"""The ladder's networks per data set, in training order (the most telling first)."""

RUNGS: dict[str, dict[str, dict[str, object]]] = {
    "cifar10": {
        "source": {},
        # width 0.25 and 0.5 with no layer trained narrower than 64 channels: the tilt's cause
        # is XPertNet_50's 64-channel layers trained as 16- or 32-channel bottlenecks
        "w0.25-min64-bf16": {"width_mult": 0.25, "min_channels": 64,
                             "compute_dtype": "bfloat16"},
        "w0.5-bf16": {"width_mult": 0.5, "compute_dtype": "bfloat16"},
        "w0.5-min64-bf16": {"width_mult": 0.5, "min_channels": 64,
                            "compute_dtype": "bfloat16"},
        # the candidate between w0.5-bf16, whose XPertNet_50 gap missed the tolerance, and
        # the reference, at about half its cost
        "w0.75-bf16": {"width_mult": 0.75, "compute_dtype": "bfloat16"},
        "w1-pc250-bf16": {"width_mult": 1.0, "train_per_class": 250,
                          "compute_dtype": "bfloat16"},
        "w1-bf16": {"width_mult": 1.0, "compute_dtype": "bfloat16"},
        "w1": {"width_mult": 1.0},
    },
    "tinyimagenet": {
        "source": {},
        "r64": {"resolution": None},
    },
}
"""Overrides of each data set's source budget (conf/training/), cheapest first. CIFAR-10's
candidates trade width for epochs, images and arithmetic (bfloat16 runs about 2x faster on this
machine's CPU, docs/results/training_step.md); Tiny ImageNet's question is 32 against 64 px."""

REFERENCE: dict[str, str] = {"cifar10": "w1-bf16", "tinyimagenet": "r64"}
"""The rung the others are judged against: issue 30's width 1.0 at e5-pc500 (in bfloat16, at
half the cost of float32: `w1` checks on `FEW` networks that the arithmetic changes nothing
beyond seed noise), and the searched 64 px for Tiny ImageNet."""

FEW: tuple[str, ...] = ("vgg16", "xpertnet_50")
"""The networks of the `ONLY_FEW` rungs."""

ONLY_FEW: dict[str, tuple[str, ...]] = {"cifar10": ("w1-pc250-bf16", "w1")}
"""Rungs trained on `FEW` networks only: float32 at width 1.0 (the arithmetic check; about 15 min
a training on one thread); and width 1.0 at half the images, which on VGG16 cost half of
`w1-bf16` and lost 10 pp (260 s, 45.7 % test against 53.3 % at `w0.5-bf16`)."""

GAP_TOLERANCE_PP = 1.5
"""A budget keeps the trade-off when every network's gap to VGG16 is within this of its gap at
the reference rung (issue 30's acceptance)."""

TAU_SHARE = 0.9
"""... and its tau against the reference reaches this share of the tau ceiling the two rungs'
seed noise allows (12 networks give tau a sampling std of about 0.15: "at the ceiling" cannot be
asked more tightly)."""

METRIC = "accuracy_pct"
"""Test accuracy on the whole test split: twice the images of the validation split."""


def network_names(dataset: str) -> dict[str, str]:
    """Network name by its dash-joined channels (the tables' `channels` key)."""
    return {"-".join(map(str, c)): n for n, c in NETWORKS[dataset].items()}


def rung_spec(dataset: str, rung: str, threads: int | None) -> TrainSpec:
    """The training budget of one rung."""
    node = {**source_training(dataset), **RUNGS[dataset][rung]}
    if threads:
        node["num_threads"] = threads
    return TrainSpec.from_config(node)


def jobs(dataset: str, rungs: list[str], seeds: int,
         networks: list[str] | None = None) -> list[tuple[str, int, str]]:
    """(network, seed, rung) in training order: network by network, seed by seed, every rung;
    the first jobs time every rung on VGG16. `networks`: only these (None: all)."""
    few = ONLY_FEW.get(dataset, ())
    return [(net, seed, rung) for net in NETWORKS[dataset] for seed in range(seeds)
            for rung in rungs if (net in FEW or rung not in few)
            and (networks is None or net in networks)]


PENDING = OUT / "pending_source"
"""Sources being built (`python -m xpert_evo.source source.dir=docs/results/pending_source`)."""


def copy_source_rows(dataset: str, table: Path, rungs: list[str]) -> None:
    """Append the trainings of ladder networks that a source holds at a rung's budget and the
    table lacks (those are not trained again): the packaged source's, and those of sources being
    built in `PENDING` (a source network among the ladder's is trained there anyway)."""
    sources = [(*find_source(dataset), "packaged")]
    for rung in rungs:
        try:
            sources.append((*find_source(dataset, rung_spec(dataset, rung, None).fidelity(),
                                         PENDING), "pending"))
        except ConfigError:
            continue  # no source at this rung's budget
    names = network_names(dataset)
    done = load_table(table)
    have = set(zip(done["fidelity"], done["channels"], done["seed"], strict=True))
    rows = []
    for fidelity, source, kind in sources:
        for row in source[source["channels"].isin(names)].to_dict("records"):
            if (fidelity, row["channels"], row["seed"]) not in have:
                have.add((fidelity, row["channels"], row["seed"]))
                row.update(role=names[row["channels"]], net_id=pd.NA,
                           note=f"copied from the {kind} {fidelity} source")
                rows.append(row)
    if rows:
        append_rows(rows, table)


def train_missing(dataset: str, rungs: list[str], seeds: int, shard: int, n_shards: int,
                  threads: int | None, data_root: str, table: Path,
                  networks: list[str] | None = None) -> None:
    """Train this shard's jobs that the table does not hold yet, appending each row at once."""
    copy_source_rows(dataset, table, rungs)
    done = load_table(table)
    have = set(zip(done["fidelity"], done["channels"], done["seed"], strict=True))
    specs = {rung: rung_spec(dataset, rung, threads) for rung in rungs}
    planned = jobs(dataset, rungs, seeds, networks)
    todo = [(net, seed, rung) for i, (net, seed, rung) in enumerate(planned)
            if i % n_shards == shard and (specs[rung].fidelity(), "-".join(
                map(str, NETWORKS[dataset][net])), seed) not in have]
    logging.info("%s, shard %d of %d: %d trainings to run", dataset, shard, n_shards, len(todo))
    input_size, num_classes = GEOMETRY[dataset]
    data = DataSpec(dataset=dataset, root=data_root, input_size=input_size,
                    num_classes=num_classes, allow_data_free=False)
    for n, (net, seed, rung) in enumerate(todo, start=1):
        spec = specs[rung]
        trained = spec.trained_data(data)
        backbone = Backbone(input_size=trained.input_size, num_classes=num_classes)
        genome = Genomes.uniform(list(NETWORKS[dataset][net]), *TRAINING_PERIPHERALS)
        row = measure_one(genome, trained, spec, None, seed, backbone, budget_splits(data, spec),
                          cache_root() / "checkpoints")
        row.update(role=net, note=f"fidelity ladder rung {rung}")
        append_rows([row], table)
        logging.info("[%d/%d] %s seed %d at %s: test %.2f %%, val %.2f %% (%.0f s)", n, len(todo),
                     net, seed, spec.fidelity(), row["accuracy_pct"], row["val_accuracy_pct"],
                     row["wall_s"])


def rung_frame(runs: pd.DataFrame, dataset: str, rungs: list[str]) -> pd.DataFrame:
    """The table's rows of the ladder's networks at `rungs`, with `network` and `rung` columns."""
    fidelity = {rung_spec(dataset, r, None).fidelity(): r for r in rungs}
    names = network_names(dataset)
    runs = runs[runs["fidelity"].isin(fidelity) & runs["channels"].isin(names)]
    runs = runs.drop_duplicates(["fidelity", "channels", "seed"])
    return runs.assign(rung=runs["fidelity"].map(fidelity), network=runs["channels"].map(names))


def network_table(runs: pd.DataFrame, order: list[str], rungs: list[str]) -> pd.DataFrame:
    """Per network and rung: mean and std of the metric over seeds, seeds, and the gap of the
    mean to VGG16's at the same rung (pp; negative: below VGG16)."""
    grouped = runs.groupby(["network", "rung"])[METRIC]
    table = pd.DataFrame({"mean_pct": grouped.mean(), "std_pp": grouped.std(ddof=1),
                          "seeds": grouped.count()}).reset_index()
    vgg = table[table["network"] == "vgg16"].set_index("rung")["mean_pct"]
    table["gap_to_vgg16_pp"] = table["mean_pct"] - table["rung"].map(vgg)
    table["network"] = pd.Categorical(table["network"], order)
    table["rung"] = pd.Categorical(table["rung"], rungs)
    return table.sort_values(["network", "rung"]).reset_index(drop=True)


def ceiling_between(noise_a: float, noise_b: float, means_a: pd.Series, means_b: pd.Series,
                    seeds_a: pd.Series, seeds_b: pd.Series) -> float:
    """Highest expected Kendall tau between two rungs' network means, each noisy by its own seed
    noise averaged over its seeds: (2/pi) arcsin(sqrt(R_a R_b)), R the reliabilities."""
    def reliability(noise: float, means: pd.Series, seeds: pd.Series) -> float:
        ceiling = tau_ceiling(noise**2 * float(np.mean(1 / seeds)), float(means.var(ddof=1)))
        return math.sin(ceiling * math.pi / 2) ** 2
    r = reliability(noise_a, means_a, seeds_a) * reliability(noise_b, means_b, seeds_b)
    return 2 / math.pi * math.asin(math.sqrt(r)) if not math.isnan(r) else math.nan


def rung_summary(runs: pd.DataFrame, nets: pd.DataFrame, reference: str,
                 rungs: list[str]) -> pd.DataFrame:
    """One row per rung: cost, noise, rank agreement and gap change against `reference`."""
    wide = nets.pivot(index="network", columns="rung", values="mean_pct")
    seeds = nets.pivot(index="network", columns="rung", values="seeds")
    gaps = nets.pivot(index="network", columns="rung", values="gap_to_vgg16_pp")
    noise = {r: seed_noise(runs[runs["rung"] == r], METRIC)[0] for r in rungs}
    rows = []
    for rung in rungs:
        part = runs[runs["rung"] == rung]
        if part.empty:
            continue
        both = wide[[rung, reference]].dropna() if reference in wide else pd.DataFrame()
        paired = len(both) >= 3 and rung != reference
        change = ((gaps[rung] - gaps[reference]).drop("vgg16", errors="ignore").abs().dropna()
                  if reference in gaps else None)
        trained = part[~part["note"].str.startswith("copied")]
        rows.append({
            "rung": rung, "fidelity": part["fidelity"].iloc[0], "trainings": len(part),
            "networks": part["network"].nunique(),
            "median_s_per_training": float(trained["wall_s"].median()),
            "seed_noise_pp": noise[rung],
            "spread_pp": float(wide[rung].std(ddof=1)),
            f"networks_with_{reference}": len(both),
            f"tau_vs_{reference}": float(kendalltau(both[rung], both[reference])[0])
            if paired else math.nan,
            f"spearman_vs_{reference}": float(spearmanr(both[rung], both[reference])[0])
            if paired else math.nan,
            "tau_ceiling": ceiling_between(noise[rung], noise[reference], both[rung],
                                           both[reference], seeds.loc[both.index, rung],
                                           seeds.loc[both.index, reference])
            if paired else math.nan,
            "max_gap_change_pp": float(change.max()) if change is not None and len(change)
            else math.nan,
            "xpertnet_50_gap_pp": float(gaps[rung].get("xpertnet_50", math.nan)),
        })
    return pd.DataFrame(rows)


def choose(summary: pd.DataFrame, reference: str) -> tuple[str | None, str]:
    """The cheapest rung that keeps the trade-off (see `GAP_TOLERANCE_PP`, `TAU_SHARE`) and why;
    None while no rung has been measured against the reference on enough networks. A rung whose
    gaps already moved beyond the tolerance is passed over however few networks it shares."""
    if summary.empty:
        return None, "no trainings yet"
    passed = []
    for row in summary.sort_values("median_s_per_training").to_dict("records"):
        rung, paired = row["rung"], row[f"networks_with_{reference}"]
        before = f" (passed over: {'; '.join(passed)})" if passed else ""
        if rung == reference:
            return reference, "no cheaper rung qualifies; the reference itself" + before
        tau, ceiling = row[f"tau_vs_{reference}"], row["tau_ceiling"]
        if row["max_gap_change_pp"] > GAP_TOLERANCE_PP:
            passed.append(f"{rung}, a gap moved {row['max_gap_change_pp']:.2f} pp on {paired} "
                          "networks")
            continue
        if math.isnan(tau) or paired < 8:
            return None, (f"not yet decidable: {rung}, cheaper than {reference}, is measured "
                          f"beside it on {paired} networks (8 needed){before}")
        if tau >= TAU_SHARE * ceiling:
            return rung, (
                f"cheapest rung whose gaps to VGG16 stay within {GAP_TOLERANCE_PP} pp of "
                f"{reference}'s (largest change {row['max_gap_change_pp']:.2f} pp) and whose tau "
                f"against it ({tau:.3f}) reaches {TAU_SHARE} x its ceiling ({ceiling:.3f})"
                + before)
        passed.append(f"{rung}, tau {tau:.3f} below {TAU_SHARE} x its ceiling {ceiling:.3f}")
    return None, f"not yet decidable: {reference} has no trainings yet"


def arithmetic_check(runs: pd.DataFrame, reference: str) -> pd.DataFrame:
    """The same (network, seed) trained at `reference` and at the float32 rung it stands for
    (`w1` for `w1-bf16`): the difference in pp, seed by seed."""
    base = reference.removesuffix("-bf16")
    if base == reference or base not in set(runs["rung"]):
        return pd.DataFrame()
    wide = runs.pivot_table(index=["network", "seed"], columns="rung", values=METRIC)
    both = wide[[base, reference]].dropna()
    return both.assign(bf16_minus_float32_pp=both[reference] - both[base]).reset_index()


def predictor_ranks(dataset: str, nets: pd.DataFrame, rungs: list[str]) -> pd.DataFrame:
    """Kendall tau of the shipped predictor's clean accuracy against every rung's means."""
    from xpert_evo.accuracy.predictor import source_accuracy
    from xpert_evo.predict import TRANSFER

    wide = nets.pivot(index="network", columns="rung", values="mean_pct")
    channels = np.array([NETWORKS[dataset][n] for n in wide.index])
    predicted, _ = source_accuracy(dataset, Backbone(*GEOMETRY[dataset]),
                                   transfer_from=TRANSFER.get(dataset)).predictor.predict(channels)
    rows = []
    for rung in rungs:
        if rung not in wide:
            continue
        have = wide[rung].notna().to_numpy()
        rows.append({"rung": rung, "networks": int(have.sum()),
                     "predictor_tau": float(kendalltau(predicted[have], wide[rung][have])[0])
                     if have.sum() >= 3 else math.nan})
    return pd.DataFrame(rows)


def source_cost(runs: pd.DataFrame, dataset: str, rungs: list[str]) -> pd.DataFrame:
    """What the source plan (`SourcePlan` defaults: its networks, held-out and noise seeds) would
    cost at each rung: VGG16's median seconds there, scaled by the plan networks' mean
    multiply-accumulates relative to VGG16's (training time grows about linearly with them at
    widths where compute dominates; at width 0.25 fixed costs make it an overestimate, see
    `actual_core_h` of the packaged source)."""
    backbone = Backbone(*GEOMETRY[dataset])
    plan = SourcePlan()
    ratio = backbone.macs(plan.channels()) / backbone.macs(np.array(VGG16_CHANNELS))
    fidelity, packaged = find_source(dataset)
    rows = []
    for rung in rungs:
        vgg = runs[(runs["rung"] == rung) & (runs["network"] == "vgg16")
                   & ~runs["note"].str.startswith("copied")]["wall_s"]
        if vgg.empty:
            continue
        fid = rung_spec(dataset, rung, None).fidelity()
        rows.append({
            "rung": rung, "vgg16_median_s": float(vgg.median()),
            "plan_trainings": len(plan.jobs()),
            "plan_macs_vs_vgg16_median": float(np.median(ratio)),
            "plan_macs_vs_vgg16_mean": float(ratio.mean()),
            "estimated_core_h": len(plan.jobs()) * float(vgg.median()) * float(ratio.mean())
            / 3600,
            "actual_core_h": f"{packaged['wall_s'].sum() / 3600:.1f} for {len(packaged)} "
                             "trainings" if fid == fidelity else ""})
    return pd.DataFrame(rows)


def report(dataset: str, rungs: list[str], table: Path) -> str:
    """The results page of one data set's ladder (markdown)."""
    reference = REFERENCE[dataset]
    runs = rung_frame(load_table(table), dataset, rungs)
    order = list(NETWORKS[dataset])
    nets = network_table(runs, order, rungs)
    summary = rung_summary(runs, nets, reference, rungs)
    chosen, why = choose(summary, reference)
    wide = nets.assign(cell=[f"{m:.2f} ± {s:.2f} ({g:+.2f})" if not math.isnan(s) else
                             f"{m:.2f} (n=1) ({g:+.2f})" for m, s, g in
                             zip(nets["mean_pct"], nets["std_pp"], nets["gap_to_vgg16_pp"],
                                 strict=True)])
    wide = wide.pivot(index="network", columns="rung", values="cell").reindex(order).fillna("")
    plan = len(order) * len(rungs)
    check = arithmetic_check(runs, reference)
    return "\n".join([
        f"<!-- {stamp()} -->", "",
        f"# Fidelity ladder, {dataset}", "",
        f"Measured test accuracy (whole test split) of {len(order)} networks at {len(rungs)} "
        f"training budgets (rungs), mean over seeds; {len(runs)} trainings in "
        f"`{table.relative_to(ROOT)}`, {runs.groupby(['network', 'rung']).ngroups} of the "
        f"{plan} (network, rung) cells measured. Reference rung: `{reference}`. Rungs:",
        "",
        *[f"- `{r}`: {rung_spec(dataset, r, None).fidelity()} "
          f"({RUNGS[dataset][r] or 'the source budget'})" for r in rungs], "",
        "## Rungs", "",
        "`tau_ceiling`: the highest tau two rungs' means can reach given both rungs' seed noise; "
        "`max_gap_change_pp`: the largest change of a network's gap to VGG16 against the "
        "reference rung (VGG16 excluded: its gap is 0 by definition). Seconds per training: "
        "median wall time of the ladder's own trainings (not the copied source rows), one CPU "
        "thread each, two trainings sharing 2 cores with whatever else ran then (so compare "
        "rungs by their ratios, not to the README's idle figures); bfloat16 rungs use the CPU's "
        "bf16 instructions.", "",
        summary.to_markdown(index=False, floatfmt=".3f") if len(summary) else "(no trainings yet)",
        "",
        f"**Budget choice:** {chosen or 'none yet'}: {why}.", "",
        "## Networks: mean ± seed std % (gap to VGG16 at the same rung, pp)", "",
        wide.to_markdown() if len(wide.columns) else "(no trainings yet)", "",
        "## bfloat16 against float32 at the reference budget", "",
        "The same network and seed trained in both arithmetics (only the arithmetic differs; "
        f"compare with sqrt(2) x the seed noise of `{reference}` above).", "",
        check.to_markdown(index=False, floatfmt=".2f") if len(check) else "(not measured yet)",
        "",
        "## What the source would cost at each rung", "",
        "The source plan's trainings (networks, held-out and noise seeds) at each rung, "
        "estimated from VGG16's median seconds there times the plan networks' mean "
        "multiply-accumulates relative to VGG16's (one CPU thread per training).", "",
        source_cost(runs, dataset, rungs).to_markdown(index=False, floatfmt=".2f"), "",
        "## The shipped predictor against each rung", "",
        "Kendall tau of the default run's predicted clean accuracy (fitted on the packaged "
        "source) against each rung's measured means over the networks measured there.", "",
        predictor_ranks(dataset, nets, rungs).to_markdown(index=False, floatfmt=".3f")
        if len(nets) else "(no trainings yet)", "",
    ]) + "\n"


def main() -> None:
    """Train what is missing for this shard, then write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(NETWORKS), default="cifar10")
    parser.add_argument("--rungs", nargs="+", help="rungs to train and report (default: all)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--shard", type=int, default=0, help="train jobs i %% n == shard")
    parser.add_argument("--n-shards", type=int, default=1, help="processes sharing the work")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per training")
    parser.add_argument("--networks", nargs="+", help="networks to train (default: all)")
    parser.add_argument("--no-train", action="store_true", help="only write the report")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    rungs = args.rungs or list(RUNGS[args.dataset])
    unknown = sorted(set(rungs) - set(RUNGS[args.dataset]))
    if unknown:
        parser.error(f"--rungs {unknown}: {args.dataset} has {list(RUNGS[args.dataset])}")
    unknown = sorted(set(args.networks or ()) - set(NETWORKS[args.dataset]))
    if unknown:
        parser.error(f"--networks {unknown}: {args.dataset} has {list(NETWORKS[args.dataset])}")
    if not 0 <= args.shard < args.n_shards:
        parser.error(f"--shard {args.shard} must be in 0..{args.n_shards - 1}")
    table = OUT / f"fidelity_ladder_{args.dataset}.csv"
    if not args.no_train:
        train_missing(args.dataset, rungs, args.seeds, args.shard, args.n_shards, args.threads,
                      args.data_root, table, args.networks)
    text = report(args.dataset, list(RUNGS[args.dataset]), table)
    (OUT / f"fidelity_ladder_{args.dataset}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

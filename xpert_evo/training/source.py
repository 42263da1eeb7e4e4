"""The measured-accuracy source: stand-alone trainings of a fixed sample of the channel space.

`python -m xpert_evo.source` trains the networks of a `SourcePlan` at the `train:` budget and
appends one ground-truth row per training (`xpert_evo.training.groundtruth` columns plus
`net_id` and `role`) to ``<source.dir>/<dataset>-<fidelity>/shard-<k>-of-<n>.csv``. Each network
is trained on the first ``train.train_per_class`` training images of every class; its
validation accuracy (``val_accuracy_pct``, on the last ``train.val_per_class`` training images
of every class) is what models are fitted on, its test accuracy (``accuracy_pct``) is only
reported.

Plan: network k draws a preference p ~ Dirichlet(1, 1, 1, 1) over the channel options, then
each layer's channels from p, so the sample spans narrow, mixed and wide networks instead of
clustering around the mean width. Even k are fitted on ("fit"), odd k held out ("heldout").
The first `noise_networks` networks are also trained at `noise_seeds` (the seed-to-seed
noise study); those jobs come right after the first 10 networks. Held-out networks are also
trained at `heldout_seeds`, right after their seed 0: the held-out check compares predictions
with the mean over a network's seeds, which halves the training noise with one extra seed (the
issue's "raise the fidelity of the held-out networks rather than the threshold").

Shards: job i (in plan order) belongs to shard ``i % n_shards``; a Hydra multirun over
``source.shard`` builds the source in parallel (joblib locally, submitit on SLURM) and every
shard writes its own file, so no two processes write one file. A row is written as soon as its
network is trained: a killed job loses at most the network in progress, and a rerun skips the
(net_id, seed) pairs that any shard file of the folder already holds (so a changed plan order or
shard count retrains nothing).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xpert_evo.config import ConfigError, plain_config
from xpert_evo.schema import group_node
from xpert_evo.space.backbone import GEOMETRY, Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataSpec, cache_root
from xpert_evo.training.groundtruth import append_rows, load_table, measure_one
from xpert_evo.training.train import TrainSpec, budget_splits

log = logging.getLogger(__name__)

PACKAGED = Path(__file__).resolve().parent / "sources"
"""Sources shipped with the package: ``<dataset>-<fidelity>/*.csv``."""

TRAINING_PERIPHERALS: tuple[int, str, int, int] = (8, "flash", 6, 8)
"""Peripheral genes written into source rows (col_share, adc_type, adc_bits, input_bits): the
VGG16 baseline's. Training does not depend on them; they only fill the table's gene columns."""


@dataclass(frozen=True)
class SourcePlan:
    """The networks of the measured source and the order they are trained in.

    Attributes:
        n_networks: sampled networks.
        options: channel options of every conv layer (the space's `channels`).
        n_layers: conv layers.
        seed: seeds the sample.
        noise_networks: the first networks also trained at `noise_seeds`.
        noise_seeds: extra training seeds of the noise study (seed 0 is every network's).
        heldout_seeds: extra training seeds of every held-out network.
    """

    n_networks: int = 120
    options: tuple[int, ...] = (64, 128, 256, 512)
    n_layers: int = 13
    seed: int = 2026
    noise_networks: int = 5
    noise_seeds: tuple[int, ...] = (1, 2)
    heldout_seeds: tuple[int, ...] = (1,)

    def channels(self) -> np.ndarray:
        """Channels of every planned network, (n_networks, n_layers) int64."""
        rng = np.random.default_rng(self.seed)
        options = np.asarray(self.options, dtype=np.int64)
        rows = []
        for _ in range(self.n_networks):
            p = rng.dirichlet(np.ones(len(options)))
            rows.append(options[rng.choice(len(options), size=self.n_layers, p=p)])
        return np.stack(rows) if rows else np.zeros((0, self.n_layers), np.int64)

    def jobs(self) -> list[tuple[int, int]]:
        """(net_id, seed) in training order: 10 networks, the noise seeds, then every further
        network at seed 0 followed, if held out, by its `heldout_seeds`; each job once."""
        head = min(10, self.n_networks)
        noisy = min(self.noise_networks, self.n_networks)
        order = ([(k, 0) for k in range(head)]
                 + [(k, s) for s in self.noise_seeds for k in range(noisy)]
                 + [(k, s) for k in range(head) if self.role(k) == "heldout"
                    for s in self.heldout_seeds])
        for k in range(head, self.n_networks):
            extra = self.heldout_seeds if self.role(k) == "heldout" else ()
            order += [(k, s) for s in (0, *extra)]
        return list(dict.fromkeys(order))

    @staticmethod
    def role(net_id: int) -> str:
        """"fit" (even ids: the predictor learns from them) or "heldout" (odd ids)."""
        return "fit" if net_id % 2 == 0 else "heldout"


def source_dir(root: str | Path | None, data: DataSpec, spec: TrainSpec) -> Path:
    """Folder of one data set's source at one budget: ``<root>/<dataset>-<fidelity>``."""
    base = Path(root).expanduser() if root else cache_root() / "sources"
    return base / f"{data.dataset}-{spec.fidelity()}"


def shard_file(folder: Path, shard: int, n_shards: int) -> Path:
    """The file one shard appends to."""
    return folder / f"shard-{shard}-of-{n_shards}.csv"


def build_source(
    plan: SourcePlan,
    data: DataSpec,
    spec: TrainSpec,
    folder: Path,
    shard: int = 0,
    n_shards: int = 1,
    cache_dir: str | None = None,
) -> Path:
    """Train this shard's planned networks that its file does not hold yet; returns the file.

    Raises:
        ConfigError: shard not in 0..n_shards-1.
        DataError: the data set is missing.
    """
    if not 0 <= shard < n_shards:
        raise ConfigError(f"source.shard={shard} must be in 0..source.n_shards-1 ({n_shards - 1})")
    path = shard_file(folder, shard, n_shards)
    table = read_source([folder])
    done = (set(zip(table["net_id"].astype(int), table["seed"].astype(int), strict=True))
            if len(table) else set())
    channels = plan.channels()
    todo = [job for i, job in enumerate(plan.jobs()) if i % n_shards == shard and job not in done]
    log.info("source %s, shard %d of %d: %d networks to train, %d done", folder.name, shard,
             n_shards, len(todo), len(done))
    if not todo:
        return path
    if not spec.val_per_class:
        raise ConfigError("train.val_per_class=0: the source needs a validation split to select "
                          "on; set train.val_per_class (e.g. 500 for CIFAR-10)")
    data = spec.trained_data(data)
    backbone = Backbone(input_size=data.input_size, num_classes=data.num_classes)
    splits = budget_splits(data, spec, cache_dir)
    checkpoints = cache_root(cache_dir) / "checkpoints"
    macs = backbone.macs(channels[[net_id for net_id, _ in todo]])
    spent_s = 0.0
    for n, (net_id, seed) in enumerate(todo, start=1):
        genome = Genomes.uniform(channels[net_id].tolist(), *TRAINING_PERIPHERALS)
        row = measure_one(genome, data, spec, None, seed, backbone, splits, checkpoints)
        row.update(net_id=net_id, role=plan.role(net_id), note=f"source plan seed {plan.seed}")
        append_rows([row], path)
        spent_s += row["wall_s"]
        left_h = time_left_h(spent_s, macs[:n].sum(), macs[n:].sum())
        log.info("[%d/%d] net %d seed %d (%s): val %.2f %%, test %.2f %%, %.0f s; about %.1f h "
                 "left in this shard", n, len(todo), net_id, seed, row["channels"],
                 row["val_accuracy_pct"], row["accuracy_pct"], row["wall_s"], left_h)
    return path


def time_left_h(spent_s: float, done_macs: float, left_macs: float) -> float:
    """Hours the trainings of `left_macs` multiply-accumulates (per image, summed over networks)
    will take at the rate the `done_macs` ones took `spent_s` seconds: training time grows with a
    network's MACs, so this weighs a wide network left to train more than a narrow one."""
    return spent_s / max(done_macs, 1.0) * left_macs / 3600.0


def read_source(folders: Sequence[Path]) -> pd.DataFrame:
    """Every row of every ``*.csv`` in `folders` (the shards of one source), one frame."""
    frames = [load_table(p) for folder in folders for p in sorted(folder.glob("*.csv"))]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def plan_from_config(node: Mapping[str, Any], options: Sequence[int], n_layers: int) -> SourcePlan:
    """`SourcePlan` from the `source:` config node (its keys and types are checked by the source
    command's schema, `xpert_evo.schema.apps.SourceNode`)."""
    values = dict(plain_config(node) or {})
    values = {k: v for k, v in values.items() if k not in ("dir", "shard", "n_shards")}
    for key in ("noise_seeds", "heldout_seeds"):
        if key in values:
            values[key] = tuple(int(s) for s in values[key])
    return SourcePlan(options=tuple(int(c) for c in options), n_layers=n_layers, **values)


SOURCE_TRAINING: dict[str, str] = {"cifar10": "low_fidelity",
                                   "tinyimagenet": "low_fidelity_tinyimagenet"}
"""Per data set, the conf/training/<name>.yaml budget of its default source: the packaged source
that `find_source` takes when a folder holds the data set's sources at several budgets."""


def source_training(dataset: str) -> dict[str, Any]:
    """The `train:` node (conf/training/<name>.yaml, composed by Hydra through its schema) a data
    set's packaged source was trained at."""
    return group_node("training", SOURCE_TRAINING[dataset], "train")


def default_fidelity(dataset: str) -> str | None:
    """The training budget (fidelity label) of a data set's default source, `SOURCE_TRAINING`;
    None for a data set without one."""
    if dataset not in SOURCE_TRAINING:
        return None
    return TrainSpec.from_config(source_training(dataset)).fidelity()


def build_command(dataset: str) -> str:
    """The command that builds a data set's source at the default low-fidelity budget."""
    size, classes = GEOMETRY.get(dataset, GEOMETRY["tinyimagenet"])
    training = SOURCE_TRAINING.get(dataset, SOURCE_TRAINING["tinyimagenet"])
    extra = ("" if dataset == "cifar10" else
             f" data.input_size={size} data.num_classes={classes} training={training}")
    return (f"python -m xpert_evo.source data.dataset={dataset}{extra} source.dir=<DIR> "
            "(add -m hydra/launcher=joblib source.n_shards=2 source.shard=0,1 to use 2 "
            "processes), then pass accuracy.source_dir=<DIR>")


def find_source(
    dataset: str, fidelity: str | None = None, root: str | Path | None = None
) -> tuple[str, pd.DataFrame]:
    """The fidelity and the rows of a data set's measured source.

    Looks in `root` (a folder of ``<dataset>-<fidelity>`` sources) or, when None, in the sources
    shipped with the package. `fidelity` None takes the data set's only source, or among several
    the one at the data set's default budget (`default_fidelity`).

    Raises:
        ConfigError: no source for the data set (the message gives the command that builds one),
            no source at the requested fidelity or several to choose from (it lists them), or a
            source without rows.
    """
    base = Path(root).expanduser() if root else PACKAGED
    found = {p.name[len(dataset) + 1:]: p for p in sorted(base.glob(f"{dataset}-*"))
             if p.is_dir() and any(p.glob("*.csv"))}
    where = f"accuracy.source_dir={root}" if root else f"the packaged sources ({PACKAGED})"
    if not found:
        raise ConfigError(
            f"no measured accuracy source for data.dataset={dataset} in {where}. Build one: "
            f"{build_command(dataset)}; or rank by a proxy with accuracy=naswot"
        )
    if fidelity is None and len(found) > 1:
        default = default_fidelity(dataset)
        if default not in found:
            raise ConfigError(f"{where} holds {dataset} sources at several training budgets "
                              f"{sorted(found)}, none at the default {default}; choose one with "
                              "accuracy.fidelity=<budget>")
        fidelity = default
    if fidelity is not None and fidelity not in found:
        raise ConfigError(
            f"accuracy.fidelity={fidelity}: {where} has no {dataset} source built at that training "
            f"budget; it has {sorted(found)}. Choose one of them, or build one at {fidelity}"
        )
    chosen = fidelity if fidelity is not None else next(iter(found))
    table = read_source([found[chosen]])
    table = table[table["val_accuracy_pct"].notna()] if len(table) else table
    if len(table) == 0:
        raise ConfigError(f"the {dataset} source at {chosen} in {where} has no measured rows yet")
    return chosen, table


def network_means(table: pd.DataFrame) -> pd.DataFrame:
    """One row per network (channels) of a source table: mean validation and test accuracy over
    its seeds, the number of seeds, its role (`fit` / `heldout`) and plan id (-1 without one)."""
    grouped = table.groupby("channels", sort=False)
    return pd.DataFrame({
        "val_accuracy_pct": grouped["val_accuracy_pct"].mean(),
        "accuracy_pct": grouped["accuracy_pct"].mean(),
        "n_seeds": grouped["seed"].nunique(),
        "role": grouped["role"].first() if "role" in table else "fit",
        "net_id": grouped["net_id"].first() if "net_id" in table else -1,
    }).reset_index()


def seed_noise(table: pd.DataFrame, column: str = "accuracy_pct") -> tuple[float, int, int]:
    """(pooled seed-to-seed std of `column` in pp, networks, trainings) over the networks of a
    source table trained at more than one seed; nan, 0, 0 without any."""
    multi = table.groupby("channels").filter(lambda g: g["seed"].nunique() > 1)
    if multi.empty:
        return math.nan, 0, 0
    groups = multi.groupby("channels")[column]
    pooled = float(np.sqrt((groups.var(ddof=1) * (groups.count() - 1)).sum()
                           / (groups.count() - 1).sum()))
    return pooled, groups.ngroups, len(multi)


def tau_ceiling(noise_var: float, measured_var: float) -> float:
    """Highest expected Kendall tau of any predictor against measured values of variance
    `measured_var` (pp^2) that carry independent Gaussian noise of mean variance `noise_var`:
    (2/pi) arcsin(sqrt(R)) with reliability R = 1 - noise_var / measured_var; nan when either
    is unknown."""
    if not measured_var > 0 or math.isnan(noise_var):
        return math.nan
    reliability = max(0.0, 1.0 - noise_var / measured_var)
    return 2 / math.pi * math.asin(math.sqrt(reliability))


def seed_mean_ceilings(noise_pp: float, means: Sequence[float],
                       n_seeds: Sequence[int]) -> tuple[float, float]:
    """`tau_ceiling` against networks' measured means (pp, each over its `n_seeds` trainings of
    seed noise `noise_pp`), and had every network been trained once (the noise the averaging
    removed comes back)."""
    inverse = float(np.mean(1.0 / np.asarray(n_seeds, dtype=np.float64)))
    var = float(np.var(np.asarray(means, dtype=np.float64), ddof=1))
    return (tau_ceiling(noise_pp**2 * inverse, var),
            tau_ceiling(noise_pp**2, var + noise_pp**2 * (1 - inverse)))

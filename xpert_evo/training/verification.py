"""Verification of a search run: train the designs it found and measure what it predicted.

A run's accuracies are predictions at its source's training budget. `verify_run` trains chosen
front designs (by role: knee, iso_accuracy, ...) and the run's baseline stand-alone at that
budget, at several seeds, and measures for each training:
  * the validation accuracy (what the source's predictor is fitted on: the *clean* prediction's
    counterpart);
  * the test accuracy on the whole test split;
  * the crossbar accuracy at the design's own per-layer precisions on the crossbar's test images,
    paired with the float network on the same images: their difference is the measured
    precision loss, and validation minus that loss is the counterpart of the run's objective
    (predicted clean minus predicted loss).
Every training and crossbar evaluation is a row of the ground-truth table; a (design, budget,
seed, precisions) already there is read back, never trained again, so a killed verify resumes
where it stopped.

The iso-accuracy claim is tested by the paired difference of crossbar accuracy against the
baseline, seed by seed (`paired_shortfall`). When the design falls short beyond noise, the
front's next designs up in EDAP are verified one by one, within a budget, until one holds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import ttest_rel

from xpert_evo.config import ConfigError, conf_dir
from xpert_evo.crossbar.evaluate import spread
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataSpec, cache_root
from xpert_evo.training.groundtruth import (
    append_rows,
    genome_columns,
    genomes_from_table,
    load_table,
    measure_one,
)
from xpert_evo.training.train import TrainSpec, budget_splits

log = logging.getLogger(__name__)

BASELINE = "baseline"
"""The design name of the run's baseline (VGG16 at its peripheral genes) in verify's tables."""

RUN_FILES: tuple[str, ...] = ("pareto.csv", "run.json")
"""What makes a directory a search run that verify can read."""

MATCH: tuple[str, ...] = ("dataset", "fidelity", "channels", "seed", "input_bits", "adc_bits",
                          "weight_encoding", "crossbar_test_images")
"""Ground-truth columns that identify one measurement (equal values: measured already)."""


FRONT_FILE = "front.csv"
"""The file of a source folder that verified trainings are appended to (role ``front``)."""


@dataclass(frozen=True)
class FrontSource:
    """Where a run's verified trainings join its measured source.

    Attributes:
        path: ``front.csv`` in the source folder ``<root>/<dataset>-<fidelity>/``.
        packaged: the packaged source folder that is copied next to `path` before its first
            row (a run on a packaged source, which is never written to), or None.
    """

    path: Path
    packaged: Path | None = None

    @classmethod
    def of(cls, source_dir: str | None, dataset: str, fidelity: str,
           run_dir: Path) -> FrontSource:
        """The run's user source folder (``accuracy.source_dir``), or for a run on a packaged
        source ``<run_dir>/source/<dataset>-<fidelity>/`` with a copy of it: a later run passes
        ``accuracy.source_dir=<run_dir>/source`` to learn from both."""
        from xpert_evo.training.source import PACKAGED

        name = f"{dataset}-{fidelity}"
        if source_dir:
            return cls(Path(source_dir).expanduser() / name / FRONT_FILE)
        packaged = PACKAGED / name
        return cls(Path(run_dir) / "source" / name / FRONT_FILE,
                   packaged if packaged.is_dir() else None)

    def append(self, rows: pd.DataFrame | Sequence[dict[str, Any]], note: str) -> int:
        """Append verified trainings (ground-truth rows) with role ``front`` and net_id -1;
        returns how many were added.

        A training (channels, seed) the file holds already is not added again (a rerun adds
        nothing), nor any training of a network the source holds under another role (fit,
        heldout, refine): a held-out network stays held out, a fit network's mean stays put.
        """
        from xpert_evo.training.source import read_source

        folder = self.path.parent
        if self.packaged is not None and not any(folder.glob("*.csv")):
            folder.mkdir(parents=True, exist_ok=True)
            for shard in sorted(self.packaged.glob("*.csv")):
                shutil.copyfile(shard, folder / shard.name)
        frame = pd.DataFrame(rows)
        frame = frame[pd.to_numeric(frame["val_accuracy_pct"], errors="coerce").notna()]
        frame = frame.assign(channels=frame["channels"].astype(str),
                             seed=frame["seed"].astype(int)).drop_duplicates(["channels", "seed"])
        held = read_source([folder])
        if len(held):
            front = held["role"].fillna("").astype(str) == "front"
            others = set(held.loc[~front, "channels"].astype(str))
            done = set(zip(held.loc[front, "channels"].astype(str),
                           held.loc[front, "seed"].astype(int), strict=True))
            frame = frame[[c not in others and (c, s) not in done
                           for c, s in zip(frame["channels"], frame["seed"], strict=True)]]
        if len(frame):
            append_rows(frame.assign(role="front", net_id=-1, note=note), self.path)
            log.info("added %d verified trainings to the source (%s)", len(frame), self.path)
        return len(frame)


class VerifyError(ConfigError):
    """Bad input to verify (a directory that is not a run, a role it lacks, ...)."""


@dataclass(frozen=True)
class Design:
    """One design to verify.

    Attributes:
        name: `BASELINE`, the role it holds (``knee``) or ``design <id>``.
        genome: a batch of one.
        predicted_pct: the run's accuracy objective, predicted clean minus predicted loss, %.
        predicted_std_pp: its predictive std.
        loss_pp: the predicted precision loss.
        edap: the design's EDAP in pJ·ns·mm² (priced by the run).
        design_id: the run's design number (-1 for the baseline).
    """

    name: str
    genome: Genomes
    predicted_pct: float
    predicted_std_pp: float
    loss_pp: float
    edap: float
    design_id: int = -1


@dataclass(frozen=True)
class SearchRunFiles:
    """What verify reads from a run directory.

    Attributes:
        run_dir: the directory.
        pareto: its ``pareto.csv``.
        meta: its ``run.json``.
        dataset: the data set it searched for.
        fidelity: the training budget its accuracy stands for (``e5-pc500-w0.25-b64``).
        accuracy_column: the pareto column holding the accuracy objective.
    """

    run_dir: Path
    pareto: pd.DataFrame
    meta: dict[str, Any]
    dataset: str
    fidelity: str
    accuracy_column: str
    hardware: dict[str, Any] = field(default_factory=dict)

    def roles(self) -> list[str]:
        """The roles the front's designs hold (``knee``, ``iso_accuracy``, ...)."""
        found = self.pareto["role"].fillna("").astype(str).str.split("+").explode()
        return sorted(set(found) - {""})

    def design(self, role: str) -> Design:
        """The front design holding `role`.

        Raises:
            VerifyError: no design holds it (the message lists the roles the run has).
        """
        holds = self.pareto["role"].fillna("").astype(str).str.split("+").apply(
            lambda parts: role in parts)
        if not holds.any():
            raise VerifyError(f"verify.roles: this run has no {role!r} design; it has "
                              f"{self.roles()} (run_dir={self.run_dir})")
        return self.row_design(int(np.flatnonzero(holds.to_numpy())[0]), role)

    def row_design(self, index: int, name: str | None = None) -> Design:
        """The design in pareto row `index`."""
        row = self.pareto.iloc[index]
        genome = genomes_from_table(self.pareto.iloc[[index]])
        acc = self.accuracy_column
        # a verified pareto.csv keeps the run's predictions beside the measured values
        predicted = (row["predicted_accuracy_pct"], row["predicted_accuracy_std"]) if (
            "predicted_accuracy_pct" in row) else (row[acc], row[f"{acc}_std"])
        return Design(name or f"design {row['design']}", genome,
                      float(predicted[0]), float(predicted[1]),
                      float(row["precision_loss_pp"]), float(row["edap"]), int(row["design"]))

    def baseline(self) -> Design:
        """The run's baseline, with the accuracy and EDAP the run gave it."""
        base = self.meta["baseline"]
        genome = genomes_from_table(pd.DataFrame([base]))
        return Design(BASELINE, genome, float(base["accuracy"]), float(base["accuracy_std"]),
                      float(base["precision_loss_pp"]), float(base["edap"]))


def read_run(run_dir: str | Path) -> SearchRunFiles:
    """The run in `run_dir`.

    Raises:
        VerifyError: not a search run directory, or a run whose accuracy no training stands for
            (a proxy score).
    """
    path = Path(run_dir).expanduser()
    missing = [f for f in RUN_FILES if not (path / f).is_file()]
    if missing:
        raise VerifyError(f"run_dir={str(run_dir)!r} is not a search run directory (no "
                          f"{' or '.join(missing)}); point run_dir at the directory "
                          "`python -m xpert_evo` wrote, e.g. runs/<date>/<time>")
    meta = json.loads((path / "run.json").read_text())
    if not meta.get("accuracy_is_percent") or " at " not in meta.get("accuracy_label", ""):
        raise VerifyError(f"run_dir={str(run_dir)!r}: its accuracy is "
                          f"{meta.get('accuracy_label')!r}, not a % at a training budget; "
                          "verify runs searched with accuracy=measured")
    config = meta.get("config", {})
    return SearchRunFiles(
        path, pd.read_csv(path / "pareto.csv"),
        meta, str(config.get("data", {}).get("dataset", "cifar10")),
        meta["accuracy_label"].split(" at ", 1)[1], meta["accuracy_column"],
        dict(config.get("hardware", {})),
    )


def training_for(fidelity: str, conf: Path | None = None) -> tuple[str, dict[str, Any]]:
    """The conf/training preset whose budget is `fidelity`: (its name, its `train:` node).

    Raises:
        VerifyError: no preset trains at that budget (the message lists the presets' budgets).
    """
    from xpert_evo.schema import group_node

    folder = (conf or conf_dir()).resolve()
    found = {}
    for path in sorted(folder.joinpath("training").glob("*.yaml")):
        node = group_node("training", path.stem, "train", folder)  # Hydra, through its schema
        found[TrainSpec.from_config(node).fidelity()] = (path.stem, node)
    if fidelity not in found:
        raise VerifyError(f"the run's accuracy stands for training budget {fidelity!r}, and no "
                          f"conf/training preset trains at it (they train at {sorted(found)}); "
                          "add one whose keys give that budget")
    return found[fidelity]


@dataclass(frozen=True)
class Job:
    """One training (and crossbar evaluation) of a design at a seed."""

    design: Design
    seed: int


def _key(columns: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(columns[c]) for c in MATCH)


def job_key(job: Job, data: DataSpec, spec: TrainSpec, xbar: CrossbarSpec,
            n_images: int) -> tuple[str, ...]:
    """The `MATCH` values the job's ground-truth row will carry."""
    return _key({**genome_columns(job.design.genome), "dataset": data.dataset,
                 "fidelity": spec.fidelity(), "seed": job.seed,
                 "weight_encoding": xbar.weight_encoding, "crossbar_test_images": n_images})


def done_rows(table: pd.DataFrame) -> dict[tuple[str, ...], dict[str, Any]]:
    """Measured rows of a ground-truth table (crossbar accuracy present) by their `MATCH` key."""
    table = table[table["nonideal_accuracy_pct"].notna()]
    return {_key(row): row for row in table.to_dict("records")}


def _measure(job: Job, data: DataSpec, spec: TrainSpec, xbar: CrossbarSpec,
             cache_dir: str | None, table: Path, keep: bool) -> tuple[Job, dict[str, Any]]:
    """Train and evaluate one job, append its ground-truth row to `table`; returns both."""
    trained = spec.trained_data(data)
    backbone = Backbone(input_size=trained.input_size, num_classes=trained.num_classes)
    splits = budget_splits(data, spec, cache_dir)
    row = measure_one(job.design.genome, trained, spec, xbar, job.seed, backbone, splits,
                      cache_root(cache_dir) / "checkpoints", keep)
    row["note"] = f"verify {job.design.name}"
    append_rows([row], table)
    return job, row


def measure_jobs(jobs: Sequence[Job], data: DataSpec, spec: TrainSpec, xbar: CrossbarSpec,
                 table: Path, cache_dir: str | None = None, n_jobs: int = 1,
                 keep_checkpoints: bool = True) -> list[dict[str, Any]]:
    """The ground-truth row of every job, in order: read from `table` when measured already,
    else trained and evaluated (`n_jobs` at once, joblib processes; each appends its row).

    Raises:
        DataError: the data set is missing (names ``data.root``).
    """
    splits = budget_splits(data, spec, cache_dir)
    n_images = len(spread(len(splits.test), xbar.test_images))
    done = done_rows(load_table(table))
    keys = [job_key(job, data, spec, xbar, n_images) for job in jobs]
    todo = [job for job, key in zip(jobs, keys, strict=True) if key not in done]
    log.info("verify: %d trainings, %d already in %s, %d to run", len(jobs),
             len(jobs) - len(todo), table, len(todo))
    if todo:
        if spec.num_threads is None and n_jobs > 1:
            spec = replace(spec, num_threads=max(1, (os.cpu_count() or 1) // n_jobs))
        # rows come back as each training ends, so the run's log shows progress (a worker's
        # own log lines do not reach it)
        finished = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_measure)(job, data, spec, xbar, cache_dir, table, keep_checkpoints)
            for job in todo)
        for count, (job, row) in enumerate(finished, 1):
            log.info("[%d/%d] verified %s seed %d: val %.2f %%, test %.2f %%, crossbar %.2f %% "
                     "(float %.2f %%), %.0f s", count, len(todo), job.design.name, job.seed,
                     row["val_accuracy_pct"], row["accuracy_pct"], row["nonideal_accuracy_pct"],
                     row["reference_accuracy_pct"], row["wall_s"])
        done = done_rows(load_table(table))
    return [done[key] for key in keys]


def per_seed(jobs: Sequence[Job], rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per training: design, seed and the measured accuracies (%, pp)."""
    frame = pd.DataFrame([{
        "design": job.design.name, "design_id": job.design.design_id, "seed": job.seed,
        "channels": row["channels"], "val_pct": row["val_accuracy_pct"],
        "test_pct": row["accuracy_pct"], "crossbar_pct": row["nonideal_accuracy_pct"],
        "float_pct": row["reference_accuracy_pct"],
        "crossbar_test_images": row["crossbar_test_images"], "wall_s": row["wall_s"],
    } for job, row in zip(jobs, rows, strict=True)])
    frame["loss_pp"] = frame["float_pct"] - frame["crossbar_pct"]
    frame["net_pct"] = frame["val_pct"] - frame["loss_pp"]
    return frame


MEASURED: tuple[str, ...] = ("val_pct", "test_pct", "crossbar_pct", "loss_pp", "net_pct")
"""Per-seed measurements that `summarise` reports as mean and std."""


def summarise(designs: Sequence[Design], seeds: pd.DataFrame) -> pd.DataFrame:
    """One row per design: predicted clean, loss and net % with std beside the measured means
    and seed stds (``measured_<x>`` and ``measured_<x>_std``), the seeds, and predicted minus
    measured net (the prediction's error on this design)."""
    rows = []
    for design in designs:
        mine = seeds[seeds["design"] == design.name]
        row: dict[str, Any] = {
            "design": design.name, "design_id": design.design_id,
            **genome_columns(design.genome), "edap": design.edap,
            "predicted_clean_pct": design.predicted_pct + design.loss_pp,
            "predicted_loss_pp": design.loss_pp, "predicted_net_pct": design.predicted_pct,
            "predicted_std_pp": design.predicted_std_pp, "seeds": len(mine),
        }
        for column in MEASURED:
            row[f"measured_{column}"] = float(mine[column].mean())
            row[f"measured_{column}_std"] = (float(mine[column].std(ddof=1)) if len(mine) > 1
                                             else math.nan)
        row["predicted_minus_measured_pp"] = row["predicted_net_pct"] - row["measured_net_pct"]
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class PairedTest:
    """A design's crossbar accuracy against the baseline's, paired by seed.

    Attributes:
        mean_diff_pp: mean over seeds of design minus baseline, pp.
        std_diff_pp: std of the per-seed differences (nan with one seed).
        p_value: one-sided paired t-test that the design is below the baseline (nan with one
            seed).
        falls_short: p_value < alpha (below the baseline beyond seed noise).
        seeds: paired seeds.
    """

    mean_diff_pp: float
    std_diff_pp: float
    p_value: float
    falls_short: bool
    seeds: int


def paired_shortfall(seeds: pd.DataFrame, design: str, alpha: float = 0.05,
                     column: str = "crossbar_pct") -> PairedTest:
    """Does `design` fall short of the baseline beyond noise? Paired by seed on `column`."""
    wide = seeds.pivot_table(index="seed", columns="design", values=column).dropna(
        subset=[design, BASELINE])
    diff = wide[design] - wide[BASELINE]
    if len(diff) < 2:
        return PairedTest(float(diff.mean()), math.nan, math.nan, False, len(diff))
    p = float(ttest_rel(wide[design], wide[BASELINE], alternative="less").pvalue)
    if math.isnan(p):  # identical differences at every seed: no spread to test against
        p = 0.0 if diff.mean() < 0 else 1.0
    return PairedTest(float(diff.mean()), float(diff.std(ddof=1)), p, p < alpha, len(diff))

"""Merge the jobs of a Hydra multirun into one comparison.

Usage::

    python -m xpert_evo.sweep MULTIRUN_DIR

also run automatically at the end of every ``python -m xpert_evo -m ...`` sweep (the
``AggregateSweep`` Hydra callback in ``conf/config.yaml``). It writes into MULTIRUN_DIR:

- ``sweep.csv``: one row per job the sweep planned (rebuilt from Hydra's ``multirun.yaml``, so jobs
  that never started are listed too): the swept values, status (``ok``, ``failed``, ``incomplete``:
  no status.json, the job was killed or is still running; ``missing``: no job directory, the job
  never started) and error, final hypervolume, best EDAP reduction against the baseline at accuracy
  no worse than the baseline's (``best_iso_edap_reduction_x``: picked from the whole front, so its
  accuracy may be a prediction; ``best_iso_accuracy_from`` says where it came from: ``trained``,
  ``proxy``, ``predicted`` or ``surrogate``; ``best_iso_edap_reduction_measured_x``: the same
  picked only among designs whose accuracy is measured, empty when none reaches the baseline), the
  knee design's metrics (``knee_accuracy_from`` likewise), and wall time;
- ``sweep_stats.csv`` and ``sweep.md``: mean and standard deviation over seeds per setting;
- ``fronts.png`` / ``fronts.pdf``: the fronts overlaid, one colour per setting, seeds pooled.

Re-running it on the same directory rewrites those files from the job directories. At the end
of a multirun in which no job succeeded, the callback exits with code 2 after writing them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from xpert_evo.report import (
    RATIO_COLUMNS,
    RunTables,
    accuracy_axis_label,
    markdown_table,
    plot_fronts,
)
from xpert_evo.report.provenance import stamp
from xpert_evo.search.archive import HW_METRICS

log = logging.getLogger("xpert_evo")

STATUS_FILE = "status.json"
"""Written by every job: {"status": "ok" | "failed", "error": str | null, "wall_s": float}."""
PLAN_FILE = "multirun.yaml"
"""Written by Hydra into the sweep directory before the jobs start: the sweep's configuration."""

KNEE_COLUMNS: tuple[str, ...] = HW_METRICS + RATIO_COLUMNS
"""Columns of the knee design copied into sweep.csv (prefixed ``knee_``)."""
METRICS: tuple[str, ...] = (
    "final_hv",
    "best_iso_edap_reduction_x",
    "best_iso_edap_reduction_measured_x",
    "knee_edap_reduction_x",
    "knee_area_mm2",
    "wall_s",
)
"""Columns summarised by mean and std over seeds."""


def planned_jobs(multirun_dir: str | Path) -> list[list[str]] | None:
    """The override list of every job the sweep planned, in job-number order, expanded from
    ``multirun.yaml`` (``hydra.sweeper.params`` and ``hydra.overrides.task``) as Hydra's basic
    sweeper expands them; None without a readable ``multirun.yaml`` or with another sweeper."""
    path = Path(multirun_dir) / PLAN_FILE
    if not path.is_file():
        return None
    try:
        hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra") or {}
        sweeper = hydra.get("sweeper") or {}
        if not str(sweeper.get("_target_", "")).endswith(".BasicSweeper"):
            return None
        args = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
        args += [str(arg) for arg in (hydra.get("overrides") or {}).get("task") or []]
        (jobs,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(args), None)
    except (yaml.YAMLError, HydraException, AttributeError, TypeError) as err:
        log.warning("the planned jobs could not be read from %s: %s", path, err)
        return None
    return jobs


def _saved_overrides(job: Path) -> list[str] | None:
    """The overrides Hydra saved for ``job``; None (with a warning) when they cannot be read."""
    path = job / ".hydra" / "overrides.yaml"
    try:
        items = yaml.safe_load(path.read_text()) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        items = err
    if not isinstance(items, list):
        log.warning("job directory %s skipped: %s is not a list of overrides (%s)", job, path,
                    items)
        return None
    return [str(item) for item in items]


def jobs_of(multirun_dir: str | Path) -> list[tuple[str, list[str], Path | None]]:
    """Every job of a multirun as (name, override list, job directory or None).

    The jobs the sweep planned (`planned_jobs`) come first, in job-number order, each matched to
    the job directory (one holding Hydra's ``.hydra/overrides.yaml``) with the same overrides;
    one without a directory has None. Job directories the plan does not list follow. A job's
    name is its directory's name, or its job number when it has no directory.
    """
    root = Path(multirun_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    dirs = sorted(
        (p.parent.parent for p in root.glob("*/.hydra/overrides.yaml")),
        key=lambda p: (len(p.name), p.name),
    )
    read = {d: _saved_overrides(d) for d in dirs}
    saved = {d: overrides for d, overrides in read.items() if overrides is not None}
    unmatched = list(saved)
    jobs: list[tuple[str, list[str], Path | None]] = []
    for num, overrides in enumerate(planned_jobs(root) or []):
        job = next((d for d in unmatched if sorted(saved[d]) == sorted(overrides)), None)
        if job is not None:
            unmatched.remove(job)
        jobs.append((job.name if job else str(num), overrides, job))
    jobs += [(d.name, saved[d], d) for d in unmatched]
    if not jobs:
        raise FileNotFoundError(
            f"{root} holds no Hydra job directories (*/.hydra/overrides.yaml) and no "
            f"{PLAN_FILE}: is it a multirun directory (hydra.sweep.dir)?"
        )
    return jobs


def _values(overrides: Sequence[str]) -> dict[str, str]:
    pairs = (str(item).split("=", 1) for item in overrides)
    return {key.lstrip("+~"): value for key, value in pairs if not key.startswith("hydra")}


def job_row(job: Path) -> dict[str, Any]:
    """One job's sweep row (swept values are added by `collect`)."""
    row: dict[str, Any] = {"job": job.name, "dir": str(job)}
    status_file = job / STATUS_FILE
    status = json.loads(status_file.read_text()) if status_file.is_file() else {}
    done = (job / "pareto.csv").is_file() and (job / "history.csv").is_file()
    row["status"] = status.get("status") or ("ok" if done else "incomplete")
    row["error"] = status.get("error") or (
        None if done else "no status.json and no results: the job was killed, or is still running"
    )
    row["wall_s"] = status.get("wall_s", np.nan)
    if not done:
        return row
    run = RunTables.load(job)
    last = run.history.iloc[-1]
    row["final_hv"] = float(last["hypervolume"])
    row["n_evals"] = int(last["n_evals"])
    iso = run.meta.get("best_iso_accuracy") or {}
    row["best_iso_edap_reduction_x"] = iso.get("edap_reduction_x", np.nan)
    row["best_iso_accuracy_from"] = iso.get("accuracy_from")
    measured = (run.meta.get("measured_only") or {}).get("best_iso_accuracy") or {}
    row["best_iso_edap_reduction_measured_x"] = measured.get("edap_reduction_x", np.nan)
    row["accuracy_label"] = run.meta.get("accuracy_label")
    knee = run.pareto[run.pareto["role"].fillna("").astype(str).str.contains("knee")]
    if len(knee):
        k = knee.iloc[0]
        row["knee_accuracy"] = float(k[run.acc])
        row["knee_accuracy_from"] = k.get("accuracy_from")
        row.update({f"knee_{c}": float(k[c]) for c in KNEE_COLUMNS if c in k})
        row["knee_channels"] = k.get("channels")
    if not np.isfinite(row["wall_s"]):
        row["wall_s"] = float(last["elapsed_s"])
    return row


def collect(multirun_dir: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """The sweep table (one row per job) and the swept keys (those whose values differ)."""
    jobs = jobs_of(multirun_dir)
    values = [_values(overrides) for _, overrides, _ in jobs]
    keys = sorted({k for v in values for k in v})
    swept = [k for k in keys if len({v.get(k) for v in values}) > 1]
    rows = [
        {**{k: v.get(k) for k in swept}, **(job_row(job) if job else _missing_row(name))}
        for (name, _, job), v in zip(jobs, values, strict=True)
    ]
    return pd.DataFrame(rows), swept


def _missing_row(name: str) -> dict[str, Any]:
    return {
        "job": name,
        "dir": None,
        "status": "missing",
        "error": f"never started: planned in {PLAN_FILE}, but it has no job directory",
        "wall_s": np.nan,
    }


def settings_of(sweep: pd.DataFrame, swept: Sequence[str]) -> pd.Series:
    """Each job's setting: its swept values other than the seed, as one label."""
    keys = [k for k in swept if k != "seed"]
    if not keys:
        return pd.Series("all jobs", index=sweep.index)
    return (
        sweep[keys].astype(str).apply(lambda r: ", ".join(f"{k}={v}" for k, v in r.items()), axis=1)
    )


def seed_stats(sweep: pd.DataFrame, swept: Sequence[str]) -> pd.DataFrame:
    """Per setting: jobs ok and failed, and mean and std over its ok seeds of `METRICS`."""
    rows = []
    for setting, frame in sweep.groupby(settings_of(sweep, swept), sort=False):
        ok = frame[frame["status"] == "ok"]
        row: dict[str, Any] = {
            "setting": setting,
            "n_ok": len(ok),
            "n_failed": len(frame) - len(ok),
        }
        for m in METRICS:
            values = ok[m].astype(float) if m in ok else pd.Series(dtype=float)
            row[f"{m}_mean"] = values.mean()
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            row[f"{m}_std"] = spread if len(values) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def pooled_fronts(sweep: pd.DataFrame, swept: Sequence[str]) -> tuple[list[RunTables], list[str]]:
    """Per setting (seeds pooled): the non-dominated designs of all its seeds' fronts."""
    ok = sweep["status"] == "ok"
    runs, names = [], []
    for setting, frame in sweep[ok].groupby(settings_of(sweep[ok], swept), sort=False):
        tables = [RunTables.load(d) for d in frame["dir"]]
        acc = tables[0].acc
        pareto = pd.concat([t.pareto for t in tables], ignore_index=True)
        objectives = np.column_stack([-pareto[acc].to_numpy(float), np.log(pareto["edap"])])
        front = NonDominatedSorting().do(objectives, only_non_dominated_front=True)
        runs.append(
            RunTables(
                pareto=pareto.iloc[np.sort(front)].reset_index(drop=True),
                archive=pd.concat([t.archive for t in tables], ignore_index=True),
                history=tables[0].history,
                meta=tables[0].meta,
            )
        )
        names.append(setting)
    return runs, names


def aggregate(multirun_dir: str | Path) -> list[Path]:
    """Write sweep.csv, sweep_stats.csv, sweep.md and fronts.png/.pdf; return their paths."""
    root = Path(multirun_dir)
    sweep, swept = collect(root)
    return write_reports(root, sweep, swept)


def write_reports(root: Path, sweep: pd.DataFrame, swept: Sequence[str]) -> list[Path]:
    """Write `collect`'s table and its summaries into ``root`` (see `aggregate`)."""
    stats = seed_stats(sweep, swept)
    paths = [root / "sweep.csv", root / "sweep_stats.csv", root / "sweep.md"]
    sweep.to_csv(paths[0], index=False)
    stats.to_csv(paths[1], index=False)
    shown = [
        c
        for c in [
            *swept,
            "status",
            "final_hv",
            "best_iso_edap_reduction_x",
            "best_iso_accuracy_from",
            "best_iso_edap_reduction_measured_x",
            "knee_edap_reduction_x",
            "knee_accuracy_from",
            "knee_area_mm2",
            "wall_s",
            "error",
        ]
        if c in sweep
    ]
    text = [
        f"<!-- {stamp()} -->",
        "",
        f"# Sweep {root}",
        "",
        f"Swept: {', '.join(swept) or 'nothing'}; "
        f"{(sweep['status'] == 'ok').sum()} of {len(sweep)} jobs ok.",
        "",
        "## Jobs",
        "",
        markdown_table(sweep[shown]),
        "",
    ]
    if len(stats):
        text += ["## Mean and std over seeds", "", markdown_table(stats), ""]
    paths[2].write_text("\n".join(text))
    runs, names = pooled_fronts(sweep, swept)
    labels = {accuracy_axis_label(r.meta) for r in runs}
    if runs and len(labels) == 1:
        paths += plot_fronts(runs, root / "fronts.png", names)
    elif runs:
        log.warning(
            "fronts.png not drawn: the jobs use different accuracy scales %s", sorted(labels)
        )
    failed = sweep[sweep["status"] != "ok"]
    for _, row in failed.iterrows():
        log.warning("job %s %s: %s", row["job"], row["status"], row.get("error"))
    log.info(
        "sweep of %d jobs (%d ok) aggregated in %s",
        len(sweep),
        len(sweep) - len(failed),
        root / "sweep.csv",
    )
    return paths


class AggregateSweep(Callback):
    """Hydra callback: aggregate the multirun once every job has ended."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Run `aggregate` on ``hydra.sweep.dir`` (a failure to aggregate is logged, never
        raised); when no job of the sweep succeeded, say so in one line and exit with code 2."""
        root = Path(str(config.hydra.sweep.dir))
        try:
            sweep, swept = collect(root)
            write_reports(root, sweep, swept)
        except (OSError, ValueError, KeyError) as err:
            log.error("could not aggregate the sweep in %s: %s", root, err)
            return
        if not (sweep["status"] == "ok").any():
            sys.stderr.write(
                f"error: all {len(sweep)} jobs of the sweep failed; their errors are in "
                f"{root / 'sweep.csv'}\n"
            )
            sys.exit(2)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m xpert_evo.sweep", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("multirun_dir", help="a multirun directory (hydra.sweep.dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = aggregate(args.multirun_dir)
    except FileNotFoundError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    sys.stdout.write("".join(f"wrote {p}\n" for p in paths))
    return 0

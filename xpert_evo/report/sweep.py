"""Merge the jobs of a Hydra multirun into one comparison.

Usage::

    python -m xpert_evo.sweep MULTIRUN_DIR

also run automatically at the end of every ``python -m xpert_evo -m ...`` sweep (the
``AggregateSweep`` Hydra callback in ``conf/config.yaml``). It writes into MULTIRUN_DIR:

- ``sweep.csv``: one row per job: the swept values, status (``ok`` / ``failed`` /
  ``incomplete``) and error, final hypervolume, best EDAP reduction against the baseline at
  accuracy no worse than the baseline's (``best_iso_edap_reduction_x``: picked from the whole
  front, so its accuracy may be a prediction; ``best_iso_accuracy_from`` says where it came
  from: ``trained``, ``proxy``, ``predicted`` or ``surrogate``;
  ``best_iso_edap_reduction_measured_x``: the same picked only among designs whose accuracy is
  measured, empty when none reaches the baseline), the knee design's metrics
  (``knee_accuracy_from`` likewise), and wall time;
- ``sweep_stats.csv`` and ``sweep.md``: mean and standard deviation over seeds per setting;
- ``fronts.png`` / ``fronts.pdf``: the fronts overlaid, one colour per setting, seeds pooled.

Re-running it on the same directory rewrites those files from the job directories.
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


def job_dirs(multirun_dir: str | Path) -> list[Path]:
    """The job directories of a multirun (those holding Hydra's ``.hydra/overrides.yaml``)."""
    root = Path(multirun_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    jobs = [p.parent.parent for p in root.glob("*/.hydra/overrides.yaml")]
    if not jobs:
        raise FileNotFoundError(
            f"{root} holds no Hydra job directories (*/.hydra/overrides.yaml): is it a multirun "
            "directory (hydra.sweep.dir)?"
        )
    return sorted(jobs, key=lambda p: (len(p.name), p.name))


def _overrides(job: Path) -> dict[str, str]:
    items = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
    pairs = (str(item).split("=", 1) for item in items)
    return {key.lstrip("+~"): value for key, value in pairs if not key.startswith("hydra")}


def job_row(job: Path) -> dict[str, Any]:
    """One job's sweep row (swept values are added by `collect`)."""
    row: dict[str, Any] = {"job": job.name, "dir": str(job)}
    status_file = job / STATUS_FILE
    status = json.loads(status_file.read_text()) if status_file.is_file() else {}
    done = (job / "pareto.csv").is_file() and (job / "history.csv").is_file()
    row["status"] = status.get("status") or ("ok" if done else "incomplete")
    row["error"] = status.get("error")
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
    jobs = job_dirs(multirun_dir)
    overrides = [_overrides(j) for j in jobs]
    keys = sorted({k for o in overrides for k in o})
    swept = [k for k in keys if len({o.get(k) for o in overrides}) > 1]
    rows = [
        {**{k: o.get(k) for k in swept}, **job_row(j)} for j, o in zip(jobs, overrides, strict=True)
    ]
    return pd.DataFrame(rows), swept


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
        """Run `aggregate` on ``hydra.sweep.dir``; a failure here is logged, never raised."""
        try:
            aggregate(config.hydra.sweep.dir)
        except (FileNotFoundError, ValueError, KeyError) as err:
            log.error("could not aggregate the sweep in %s: %s", config.hydra.sweep.dir, err)


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

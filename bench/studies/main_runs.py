"""The README's main runs, run as a user runs them, and what they found.

    python bench/studies/main_runs.py [--data ../shared/datasets] [--out DIR]

Runs, each as a subprocess ``python -m xpert_evo ...`` with its own ``hydra.run.dir`` under
``--out`` (a temporary directory by default) and ``XPERT_EVO_CACHE`` set to ``--cache``:

* ``default``: ``python -m xpert_evo`` (no experiment);
* ``cifar10``: ``python -m xpert_evo +experiment=cifar10 data.root=DATA``;
* ``tinyimagenet``: ``python -m xpert_evo +experiment=tinyimagenet data.root=DATA``;
* ``xpert_cifar10``, ``xpert_tinyimagenet``: XPert's own setting (``+experiment=xpert_*``).

Each run is one seed (seed 0). Writes ``docs/results/main_runs.md`` and ``.csv`` (stamped): per
run the command, wall time, designs evaluated, front size, final hypervolume, the knee's and the
iso-accuracy design's EDAP reduction against VGG16 with their accuracy and where that accuracy
came from, read back from the run's ``run.json``, ``pareto.csv`` and ``history.csv``. Copies the
``cifar10`` run's ``pareto.png`` to ``docs/pareto_cifar10.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from xpert_evo.report import markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DOCS, REPO, RESULTS, write_stamped  # noqa: E402

FROM = {
    "predicted": "predicted (source model)",
    "trained": "measured (trained)",
    "proxy": "proxy score",
    "surrogate": "proxy score (surrogate)",
}
"""`accuracy_from` values of pareto.csv and what they mean."""


def runs(data: str) -> dict[str, list[str]]:
    """Run name -> the arguments after ``python -m xpert_evo``."""
    return {name: [f"+experiment={name}", f"data.root={data}"] if name != "default" else []
            for name in ("default", "cifar10", "tinyimagenet", "xpert_cifar10",
                         "xpert_tinyimagenet")}


def role_row(pareto: pd.DataFrame, role: str) -> pd.Series | None:
    """The front design holding ``role`` (roles may be joined with '+'), or None."""
    has = pareto["role"].fillna("").astype(str).str.split("+").apply(lambda r: role in r)
    return pareto[has].iloc[0] if has.any() else None


def summarise(name: str, args: list[str], run_dir: Path, wall_s: float, rc: int) -> dict[str, Any]:
    """One row of the results table, read from the run directory."""
    row: dict[str, Any] = {
        "run": name,
        "command": " ".join(["python -m xpert_evo", *args]),
        "exit_code": rc,
        "wall_s": round(wall_s, 1),
    }
    if rc != 0:
        return row
    meta = json.loads((run_dir / "run.json").read_text())
    pareto = pd.read_csv(run_dir / "pareto.csv")
    history = pd.read_csv(run_dir / "history.csv")
    acc = meta["accuracy_column"]
    row.update(
        seed=meta["seed"],
        designs_evaluated=int(meta["n_evals"]),
        front_size=len(pareto),
        final_hv=round(float(history["hypervolume"].iloc[-1]), 4),
        accuracy=meta["accuracy_label"],
        accuracy_source=meta["accuracy_source"],
        vgg16_accuracy=round(float(meta["baseline"]["accuracy"]), 2),
        vgg16_edap=f"{meta['baseline']['edap']:.4g}",
        vgg16_area_mm2=round(float(meta["baseline"]["area_mm2"]), 1),
    )
    if not meta["accuracy_is_percent"]:
        row["true_proxy_calls"] = int(meta["n_true_evals"])
    for role in ("knee", "iso_accuracy"):
        design = role_row(pareto, role)
        if design is None:
            continue
        row[f"{role}_edap_reduction_x"] = round(float(design["edap_reduction_x"]), 2)
        row[f"{role}_accuracy"] = round(float(design[acc]), 2)
        row[f"{role}_accuracy_from"] = FROM.get(design["accuracy_from"], design["accuracy_from"])
        row[f"{role}_area_mm2"] = round(float(design["area_mm2"]), 1)
    row["smallest_front_area_mm2"] = round(float(pareto["area_mm2"].min()), 1)
    return row


def write(rows: list[dict[str, Any]], extra: str) -> None:
    """docs/results/main_runs.csv and .md."""
    table = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / "main_runs.csv", index=False)
    write_stamped(RESULTS / "main_runs.md", [
        "",
        "# Main runs",
        "",
        "Each run is one seed (seed 0): no spread is measured here (see search_quality.md and "
        "sweep.md for seeds). `wall_s` is the whole command, start-up and report included, on "
        "the machine of the stamp. EDAP and area come from the analytic cost model "
        "(`docs/cost_model.md`): predicted, never measured. The accuracy column says what the "
        "accuracy is: `predicted (source model)` = validation accuracy in % at the source's "
        "training budget predicted by the model fitted on stand-alone trainings "
        "(`docs/accuracy.md`); `proxy score` = a zero-cost proxy score, not a %. "
        "`knee`: the front design farthest from the line between the front's ends; "
        "`iso_accuracy`: the lowest-EDAP front design at an accuracy no lower than VGG16's "
        "(same scale, VGG16's accuracy obtained the same way; `-`: no front design reaches it). "
        "`*_edap_reduction_x` = VGG16 EDAP / design EDAP (EDAP in pJ ns mm2).",
        "",
        markdown_table(table.T.reset_index().rename(columns={"index": "field"})
                       .set_axis(["field", *table["run"]], axis=1).iloc[1:]),
        "",
    ], extra)


def main(argv: list[str] | None = None) -> int:
    """Run the plan, write the results; returns 1 when a run failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/datasets", help="data.root of the data runs")
    parser.add_argument("--out", type=Path, help="keep the run directories here")
    parser.add_argument("--cache", type=Path, help="XPERT_EVO_CACHE (default: a fresh temp dir)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        cache = args.cache or Path(tmp) / "cache"
        env = {**os.environ, "XPERT_EVO_CACHE": str(cache)}
        rows = []
        for name, run_args in runs(args.data).items():
            run_dir = out / name
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "xpert_evo", *run_args, f"hydra.run.dir={run_dir}"],
                cwd=REPO, env=env, check=False,
            )
            rows.append(summarise(name, run_args, run_dir, time.perf_counter() - start,
                                  done.returncode))
            print(json.dumps(rows[-1]), flush=True)
            if name == "cifar10" and done.returncode == 0:
                shutil.copyfile(run_dir / "pareto.png", DOCS / "pareto_cifar10.png")
        cold = "fresh cache" if args.cache is None else f"cache {args.cache}"
        write(rows, f"XPERT_EVO_CACHE: {cold}, runs one after another")
    return int(any(r["exit_code"] for r in rows))


if __name__ == "__main__":
    sys.exit(main())

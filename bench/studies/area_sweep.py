"""The documented area-budget sweep, run as a user runs it, copied into docs/.

    python bench/studies/area_sweep.py [--areas 40,80,150] [--seeds 0,1] [--out DIR]

Runs ``python -m xpert_evo -m hydra/launcher=joblib hydra.launcher.n_jobs=2
constraints.area_mm2=AREAS seed=SEEDS`` (the default configuration otherwise) with
``hydra.sweep.dir`` under ``--out`` (a temporary directory by default) and a fresh
``XPERT_EVO_CACHE``. The sweep's own aggregation (``xpert_evo.report.sweep``) writes
``sweep.md``, ``sweep.csv`` and ``fronts.png``; this script copies them to
``docs/results/sweep.md`` (under its own stamp, above the sweep's), ``docs/results/sweep.csv``
and ``docs/sweep_fronts.png``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DOCS, REPO, RESULTS, write_stamped  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the sweep and copy its results; returns the sweep's exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--areas", default="40,80,150", help="constraints.area_mm2 values, mm2")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", type=Path, help="keep the sweep directory here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        sweep_dir = (args.out or Path(tmp)) / "sweep"
        swept = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                 f"constraints.area_mm2={args.areas}", f"seed={args.seeds}"]
        env = {**os.environ, "XPERT_EVO_CACHE": str(Path(tmp) / "cache")}
        done = subprocess.run(
            [sys.executable, "-m", "xpert_evo", "-m", *swept, f"hydra.sweep.dir={sweep_dir}"],
            cwd=REPO, env=env, check=False,
        )
        if done.returncode:
            return done.returncode
        command = " ".join(["python -m xpert_evo -m", *swept])
        write_stamped(RESULTS / "sweep.md", [
            "",
            f"The sweep `{command}` (default configuration otherwise; "
            f"area budgets in mm2, seeds {args.seeds}), as its aggregation wrote it (per-job rows, "
            "then mean and std over seeds per setting; per-job values in `sweep.csv`). Accuracy "
            "is the predicted % of `accuracy=measured`; EDAP comes from the cost model.\n\n"
            + (sweep_dir / "sweep.md").read_text()
        ])
        shutil.copyfile(sweep_dir / "sweep.csv", RESULTS / "sweep.csv")
        shutil.copyfile(sweep_dir / "fronts.png", DOCS / "sweep_fronts.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

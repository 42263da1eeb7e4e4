"""Redraw and overlay fronts from saved runs without re-running them.

Usage::

    python -m xpert_evo.plot RUN_DIR [RUN_DIR ...] [--out fronts.png] [--names A B ...]

Reads each run's ``pareto.csv``, ``archive.csv``, ``history.csv`` and ``run.json`` and writes the
overlaid accuracy-vs-EDAP fronts (``--out``, PNG at 300 dpi and PDF) and the overlaid convergence
curves (``<out stem>_convergence.png/.pdf``). Exit code 2 when a directory is not a run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from xpert_evo.report import RunTables, accuracy_axis_label, plot_convergence, plot_fronts


def replot(
    run_dirs: Sequence[str | Path], out: str | Path, names: Sequence[str] | None = None
) -> list[Path]:
    """Overlay the fronts and convergence curves of ``run_dirs``; returns the written files."""
    runs = [RunTables.load(d) for d in run_dirs]
    if names is None:
        names = [Path(d).resolve().name for d in run_dirs]
    if len(names) != len(runs):
        raise ValueError(f"{len(names)} names for {len(runs)} runs")
    labels = {accuracy_axis_label(r.meta) for r in runs}
    if len(labels) > 1:
        raise ValueError(
            f"the runs use different accuracy scales {sorted(labels)}; overlaying them would "
            "compare numbers that mean different things"
        )
    out = Path(out)
    paths = plot_fronts(runs, out, names)
    paths += plot_convergence(runs, out.with_name(out.stem + "_convergence.png"), names)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m xpert_evo.plot", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("runs", nargs="+", help="run directories written by python -m xpert_evo")
    parser.add_argument("--out", default="fronts.png", help="output figure (default fronts.png)")
    parser.add_argument("--names", nargs="+", help="legend names, one per run")
    args = parser.parse_args(argv)
    try:
        paths = replot(args.runs, args.out, args.names)
    except (FileNotFoundError, ValueError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    sys.stdout.write("".join(f"wrote {p}\n" for p in paths))
    return 0

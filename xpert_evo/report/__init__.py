"""Run outputs: CSV tables, figures and the markdown summary (DataFrames in, files out)."""

from __future__ import annotations

from pathlib import Path

from xpert_evo.report.figures import accuracy_axis_label, plot_convergence, plot_fronts
from xpert_evo.report.summary import headline_lines, summary_markdown, write_summary
from xpert_evo.report.tables import (
    RATIO_COLUMNS,
    RunTables,
    accuracy_column,
    markdown_table,
    summary_table,
)

__all__ = [
    "RATIO_COLUMNS",
    "RunTables",
    "accuracy_axis_label",
    "accuracy_column",
    "headline_lines",
    "markdown_table",
    "plot_convergence",
    "plot_fronts",
    "summary_markdown",
    "summary_table",
    "write_report",
    "write_summary",
]


def write_report(tables: RunTables, out_dir: str | Path, top_k: int = 10) -> list[Path]:
    """Write the tables, ``pareto.png/.pdf``, ``convergence.png/.pdf`` and ``summary.md``."""
    out = Path(out_dir)
    paths = tables.write(out)
    paths += plot_fronts([tables], out / "pareto.png")
    paths += plot_convergence([tables], out / "convergence.png")
    paths.append(write_summary(tables, out, top_k))
    return paths

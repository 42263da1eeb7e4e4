"""Paper-quality figures: accuracy-vs-EDAP fronts (one run or overlaid runs) and convergence."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from xpert_evo.files import atomic_write
from xpert_evo.report.tables import RunTables

MAX_CLOUD = 20000
"""Largest number of dominated designs drawn (an even subsample beyond that)."""

_STYLE = {
    "font.size": 9,
    "axes.labelsize": 9,
    "axes.titlesize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def accuracy_axis_label(meta: Mapping[str, Any]) -> str:
    """A run's accuracy axis label: its accuracy label and, below, the data the accuracy rests
    on (``accuracy_basis``: "proxy batch: real CIFAR-10 images", "proxy batch: Gaussian noise
    (no cifar10 found at ...)"). Runs may share an accuracy axis only when their labels are
    equal."""
    label = str(meta.get("accuracy_label", meta.get("accuracy_column", "accuracy")))
    basis = meta.get("accuracy_basis")
    return f"{label}\n{textwrap.fill(unrepeated(str(basis), label), 48)}" if basis else label


def unrepeated(basis: str, label: str) -> str:
    """`basis` without the items of its parentheses that `label` already names: "predicted from
    86 trained networks (cifar10, e5-pc500-w0.25-b64)" under "accuracy % at e5-pc500-w0.25-b64"
    reads "... (cifar10)"; a parenthesis left empty goes."""
    def keep(match: re.Match[str]) -> str:
        items = [i for i in match.group(1).split(", ") if i.strip() not in label]
        return f" ({', '.join(items)})" if items else ""

    return re.sub(r" \(([^()]*)\)", keep, basis)


def _save(fig: Figure, path: Path) -> list[Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = path.with_suffix(".png"), path.with_suffix(".pdf")
    atomic_write(png, lambda fh: fig.savefig(fh, format="png", dpi=300, bbox_inches="tight"))
    atomic_write(pdf, lambda fh: fig.savefig(fh, format="pdf", bbox_inches="tight"))
    return [png, pdf]


def plot_fronts(
    runs: Sequence[RunTables], path: str | Path, names: Sequence[str] | None = None
) -> list[Path]:
    """Accuracy vs EDAP (log x): each run's front as a staircase, its dominated designs as a faint
    cloud, the baseline as a star and the knee design circled (and annotated for a single run);
    for a single run with online refinement, the designs trained during the search as triangles.
    Writes ``path`` as PNG (300 dpi) and PDF; returns both paths.

    Args:
        runs: one or more runs' tables; the first run's `accuracy_axis_label` names the y axis.
        path: output path; the suffix is replaced by .png and .pdf.
        names: legend names of the runs (default: run 1, run 2, ... or nothing for one run).
    """
    if not runs:
        raise ValueError("plot_fronts needs at least one run")
    names = list(names) if names is not None else [f"run {i + 1}" for i in range(len(runs))]
    single = len(runs) == 1
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=(4.8, 3.4))
        ax = fig.subplots()
        baselines_drawn: set[tuple[float, float]] = set()
        for i, (run, name) in enumerate(zip(runs, names, strict=True)):
            color = colors[i % len(colors)]
            acc = run.acc
            cloud = run.archive
            if len(cloud) and acc in cloud:
                if "feasible" in cloud:
                    cloud = cloud[cloud["feasible"].astype(bool)]
                step = max(1, len(cloud) // MAX_CLOUD)
                cloud = cloud.iloc[::step]
                ax.scatter(
                    cloud["edap"], cloud[acc], s=3, color=color if not single else "0.55",
                    alpha=0.3, linewidths=0, rasterized=True,
                    label="evaluated designs" if single else None,
                )
            trained = (run.meta.get("refinement") or {}).get("designs", [])
            if single and trained and "design" in run.archive:
                rows = run.archive[run.archive["design"].isin(trained)]
                ax.scatter(rows["edap"], rows[acc], s=28, marker="^", facecolors="none",
                           edgecolors="tab:green", lw=0.9, zorder=4,
                           label="trained in the search (measured)")
            front = run.pareto.sort_values("edap")
            if "predicted_accuracy_pct" in front:  # verified: the front as the search saw it
                front = front.assign(**{acc: front["predicted_accuracy_pct"]})
            if len(front):
                label = "Pareto front" if single else f"{name} front"
                ax.step(front["edap"], front[acc], where="post", color=color, lw=1.2)
                ax.scatter(front["edap"], front[acc], s=10, color=color, zorder=3, label=label)
                knee = front[front["role"].fillna("").astype(str).str.contains("knee")]
                if len(knee):
                    k = knee.iloc[0]
                    ax.scatter([k["edap"]], [k[acc]], s=60, facecolors="none",
                               edgecolors="k", lw=1.0, zorder=4,
                               label="knee design" if i == 0 else None)
                    if single:
                        text = "knee"
                        if np.isfinite(k.get("edap_reduction_x", np.nan)):
                            text += f"\n{k['edap_reduction_x']:.1f}x lower EDAP"
                        if not bool(k.get("accuracy_measured", True)):
                            text += "\n(accuracy predicted)"
                        # above and left of the knee: no design lies above the front
                        ax.annotate(text, (k["edap"], k[acc]), xytext=(-10, 14),
                                    textcoords="offset points", fontsize=7, ha="right",
                                    arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "k"})
            base = run.meta.get("baseline", {})
            point = (float(base.get("edap", np.nan)), float(base.get("accuracy", np.nan)))
            if np.all(np.isfinite(point)) and point not in baselines_drawn:
                baselines_drawn.add(point)
                ax.scatter([point[0]], [point[1]], marker="*", s=110, color="crimson",
                           edgecolors="k", lw=0.5, zorder=5,
                           label=f"{base.get('name', 'baseline')} baseline")
        if single:
            _draw_verified(ax, runs[0].meta.get("verified"))
        ax.set_xscale("log")
        ax.set_xlabel("EDAP (pJ·ns·mm²), log scale")
        ax.set_ylabel(accuracy_axis_label(runs[0].meta))
        ax.grid(True, which="major", lw=0.3, alpha=0.5)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, markerscale=1.5)
        return _save(fig, Path(path))


def _draw_verified(ax: Any, verified: Mapping[str, Any] | None) -> None:
    """Measured points (seed mean ± seed std of the objective's measured counterpart) of the
    designs `python -m xpert_evo.verify` trained, each joined to its prediction by a thin line."""
    if not verified:
        return
    designs = verified.get("designs", [])
    for i, d in enumerate(designs):
        base = d["design"] == "baseline"
        std = d.get("measured_net_pct_std")
        ax.errorbar([d["edap"]], [d["measured_net_pct"]],
                    yerr=None if std is None or not np.isfinite(std) else [std],
                    fmt="*" if base else "s", ms=9 if base else 5, mfc="none",
                    mec="crimson" if base else "tab:purple",
                    ecolor="crimson" if base else "tab:purple", elinewidth=0.8, capsize=2,
                    zorder=6, label=(f"trained, {verified.get('seeds')} seeds (mean ± std)"
                                     if i == 0 else None))
        ax.plot([d["edap"]] * 2, [d["predicted_net_pct"], d["measured_net_pct"]], lw=0.6,
                ls=":", color="0.3", zorder=2)


def plot_convergence(
    histories: Sequence[RunTables], path: str | Path, names: Sequence[str] | None = None
) -> list[Path]:
    """Hypervolume (normalised objectives, fixed reference) per generation; surrogate refit
    rounds marked by dotted lines. Writes PNG (300 dpi) and PDF; returns both paths.
    """
    names = list(names) if names is not None else [f"run {i + 1}" for i in range(len(histories))]
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=(4.8, 3.0))
        ax = fig.subplots()
        for run, name in zip(histories, names, strict=True):
            h = run.history
            if not len(h):
                continue
            line = ax.plot(h["generation"], h["hypervolume"], lw=1.2,
                           label=name if len(histories) > 1 else "hypervolume")[0]
            if "refit" in h:
                for g in h.loc[h["refit"].astype(bool), "generation"]:
                    ax.axvline(g, color=line.get_color(), ls=":", lw=0.7, alpha=0.7)
        ax.set_xlabel("generation")
        ax.set_ylabel("hypervolume (normalised, fixed reference)")
        ax.grid(True, lw=0.3, alpha=0.5)
        handles, labels = ax.get_legend_handles_labels()
        if any(run.history.get("refit", np.zeros(0)).astype(bool).any() for run in histories):
            handles.append(Line2D([], [], color="0.3", ls=":", lw=0.7))
            labels.append("surrogate refit")
        ax.legend(handles, labels, loc="lower right", frameon=False)
        return _save(fig, Path(path))

"""``summary.md``: what ran, with which accuracy source and versions, and the top designs."""

from __future__ import annotations

from math import nan
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from xpert_evo.report.tables import RunTables, markdown_table, summary_table


def summary_markdown(tables: RunTables, top_k: int = 10) -> str:
    """The summary document of one run as markdown text."""
    meta: dict[str, Any] = tables.meta
    base = meta.get("baseline", {})
    alg = meta.get("algorithm", {})
    lines = [
        "# xpert_evo run summary",
        "",
        f"- Run directory: `{meta.get('run_dir', '.')}`",
        f"- Command: `{meta.get('command', 'python -m xpert_evo')}`",
        f"- Algorithm: {alg.get('name')} (pop_size {alg.get('pop_size')}, "
        f"n_gen {alg.get('n_gen')}, n_evals {alg.get('n_evals')}, "
        f"max_time_s {alg.get('max_time_s')}), seed {meta.get('seed')}",
        f"- Accuracy objective: **{meta.get('accuracy_label')}** from {meta.get('accuracy_source')}"
        + ("" if meta.get("accuracy_is_percent") else " — a proxy score, not an accuracy in %"),
        f"- Surrogate: {meta.get('surrogate', 'none')}",
        f"- Designs evaluated: {meta.get('n_evals')} distinct genomes; true proxy scores: "
        f"{meta.get('n_true_evals')}; search time {meta.get('search_s', 0.0):.1f} s"
        + (f" (resumed from `{meta['resumed_from']}`)" if meta.get("resumed_from") else ""),
        f"- Final hypervolume: {meta.get('hypervolume', float('nan')):.4f} "
        "(normalised objectives, fixed reference point 1.1; bounds from the search space)",
        f"- Feasible Pareto-optimal designs: {len(tables.pareto)}",
        f"- Baseline {base.get('name', '')}: {meta.get('accuracy_column')} "
        f"{base.get('accuracy', float('nan')):.4g}, EDAP {base.get('edap', float('nan')):.4g} "
        f"pJ·ns·mm², area {base.get('area_mm2', float('nan')):.4g} mm²",
    ]
    refine = meta.get("refinement")
    if refine:
        fit = refine.get("last_fit", {})
        lines.append(
            f"- Online refinement: {refine['n_trained']} networks trained and measured on the "
            f"crossbar ({refine.get('description', '')}, rows in `refine.csv`); "
            f"measured-accuracy model leave-one-out Kendall tau {fit.get('kendall_tau', nan):.3f}, "
            f"RMSE {fit.get('rmse_pp', nan):.2f} pp; the search's prediction before training was "
            f"off by {refine['prediction_mae_pp']:.2f} pp on average ({refine['n_predicted']} "
            f"designs); precision penalty vs measured crossbar accuracy: mean error "
            f"{refine['penalty_mae_pp']:.2f} pp"
        )
    iso = meta.get("best_iso_accuracy")
    if iso:
        lines.append(
            f"- Best EDAP reduction at {meta.get('accuracy_column')} no worse than "
            f"{base.get('name', 'the baseline')}: **{iso['edap_reduction_x']:.2f}x** "
            f"(design {iso['design']})"
        )
    versions = meta.get("versions", {})
    lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines += [
        "",
        f"## Top designs vs {base.get('name', 'the baseline')}",
        "",
        "Ratios: `edap_reduction_x` = baseline EDAP / EDAP; `tops_per_w_x`, `tops_per_mm2_x` = "
        "design / baseline. Roles: knee (largest distance to the line between the front's "
        "extremes, normalised objectives), best_edap, best_accuracy, iso_accuracy (lowest EDAP at "
        "no less accuracy than the baseline).",
        "",
        markdown_table(summary_table(tables, top_k)),
        "",
        "## Files",
        "",
        "`pareto.csv` (front), `archive.csv` (every evaluated design), `history.csv` (per "
        "generation), `pareto.png/.pdf`, `convergence.png/.pdf`, `designs/` (per-layer tables and "
        "NeuroSim network CSVs of the knee and best-EDAP designs), `checkpoint.pkl` (resume with "
        "`resume=<this directory>`), `run.json` (facts used by `python -m xpert_evo.plot`), "
        "`refine.csv` (networks trained by online refinement, when on).",
        "",
        "## Configuration",
        "",
        "```yaml",
        OmegaConf.to_yaml(OmegaConf.create(meta.get("config", {}))).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_summary(tables: RunTables, out_dir: str | Path, top_k: int = 10) -> Path:
    """Write ``summary.md`` into ``out_dir``; returns its path."""
    path = Path(out_dir) / "summary.md"
    path.write_text(summary_markdown(tables, top_k))
    return path

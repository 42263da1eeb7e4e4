"""``summary.md``: what ran, with which accuracy source and versions, and the top designs."""

from __future__ import annotations

from collections.abc import Mapping
from math import nan
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from xpert_evo.files import atomic_text
from xpert_evo.report.refinement import rounds_section
from xpert_evo.report.tables import RunTables, markdown_table, summary_table

MEASURED_NOTE: dict[str, str] = {
    "trained": "measured (trained network)",
    "proxy": "measured by the true proxy",
}
PREDICTED_NOTE: dict[str, str] = {
    "trained": "predicted",
    "proxy": "predicted from its true proxy score",
    "predicted": "predicted from the measured source's trainings",
    "surrogate": "predicted by the surrogate",
}


def accuracy_note(entry: Mapping[str, Any]) -> str:
    """How a headline design's accuracy was obtained, from its ``accuracy_from``, ``measured``
    and ``accuracy_std``: "measured by the true proxy", "predicted by the surrogate, ± 12.3"."""
    source = str(entry.get("accuracy_from"))
    if entry.get("measured", entry.get("accuracy_measured")):
        return MEASURED_NOTE.get(source, "measured")
    return f"{PREDICTED_NOTE.get(source, 'predicted')}, ± {entry.get('accuracy_std', nan):.3g}"


def headline_lines(meta: Mapping[str, Any], markdown: bool = False) -> list[str]:
    """The headline reductions of a run (``run.json`` facts), each saying whether the accuracy
    it rests on is measured or predicted (± std), then the same restricted to designs with a
    measured accuracy when there are any. Plain text; ``markdown`` bolds the reductions."""
    acc = meta.get("accuracy_column", "accuracy")
    base = meta.get("baseline", {})
    name = base.get("name", "the baseline")

    def x(value: float) -> str:
        text = f"{value:.2f}x"
        return f"**{text}**" if markdown else text

    lines = []
    knee = meta.get("knee")
    if knee:
        lines.append(
            f"Knee design {knee['design']}: EDAP reduction {x(knee['edap_reduction_x'])} vs "
            f"{name}; its {acc} {knee['accuracy']:.4g} is {accuracy_note(knee)}"
        )
    iso = meta.get("best_iso_accuracy")
    reference = (
        f"{acc} no worse than {name}'s ({base.get('accuracy', nan):.4g}, "
        f"{accuracy_note(base)})"
    )
    if iso:
        lines.append(
            f"Best EDAP reduction at {reference}: {x(iso['edap_reduction_x'])} (design "
            f"{iso['design']}); its {acc} {iso['accuracy']:.4g} is {accuracy_note(iso)}"
        )
    elif knee:
        lines.append(f"No front design has {reference}")
    only = meta.get("measured_only") or {}
    if only.get("n_designs"):
        parts = []
        if only.get("knee"):
            parts.append(f"knee {x(only['knee']['edap_reduction_x'])} "
                         f"(design {only['knee']['design']})")
        best = only.get("best_iso_accuracy")
        parts.append(
            f"best EDAP reduction at {acc} no worse than {name}'s {x(best['edap_reduction_x'])} "
            f"(design {best['design']})" if best else f"none reaches {name}'s {acc}"
        )
        lines.append(
            f"Measured designs only ({only['n_designs']} feasible designs whose {acc} is "
            f"measured): " + "; ".join(parts)
        )
    elif knee:
        lines.append(f"No feasible design has a measured {acc}: the reductions above rest on "
                     "predictions")
    return lines


def summary_markdown(tables: RunTables, top_k: int = 10) -> str:
    """The summary document of one run as markdown text."""
    meta: dict[str, Any] = tables.meta
    base = meta.get("baseline", {})
    alg = meta.get("algorithm", {})
    lines = [
        "# xpert_evo run summary",
        "",
        f"- **Accuracy data: {meta.get('accuracy_basis', meta.get('accuracy_source'))}**",
        f"- Run directory: `{meta.get('run_dir', '.')}`",
        f"- Command: `{meta.get('command', 'python -m xpert_evo')}`",
        f"- Algorithm: {alg.get('name')} (pop_size {alg.get('pop_size')}, "
        f"n_gen {alg.get('n_gen')}, n_evals {alg.get('n_evals')}, "
        f"max_time_s {alg.get('max_time_s')}), seed {meta.get('seed')}",
        f"- Accuracy objective: **{meta.get('accuracy_label')}** from {meta.get('accuracy_source')}"
        + ("" if meta.get("accuracy_is_percent") else " — a proxy score, not an accuracy in %"),
        f"- Surrogate: {meta.get('surrogate', 'none')}",
        f"- Designs evaluated: {meta.get('n_evals')} distinct genomes; "
        + ("distinct channel configurations predicted: " if meta.get("score_kind") == "predicted"
           else "true proxy scores: ")
        + f"{meta.get('n_true_evals')}; search time {meta.get('search_s', 0.0):.1f} s"
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
            f"accuracy model cross-validated Kendall tau {fit.get('kendall_tau', nan):.3f}, "
            + (f"RMSE {fit['rmse_pp']:.2f} pp" if "rmse_pp" in fit
               else f"mean error {fit.get('mae_pp', nan):.2f} pp")
            + "; the search's prediction before training was "
            f"off by {refine['prediction_mae_pp']:.2f} pp on average ({refine['n_predicted']} "
            f"designs); precision penalty vs measured crossbar accuracy: mean error "
            f"{refine['penalty_mae_pp']:.2f} pp"
        )
    bound = meta.get("precision_bound")
    if bound:
        error = (
            f"RMSE {bound['heldout_rmse_pp']:.2f} pp ({bound['heldout_rows']} crossbar "
            "evaluations)" if bound["heldout_rows"] else "not measured"
        )
        lines.append(
            f"- Precision-loss bound {bound['bound_pp']:g} pp (`constraints.precision_loss_pp`); "
            f"the penalty's error on networks it was not fitted to: {error}"
            + (" — the bound is within that error" if bound["heldout_rows"]
               and bound["bound_pp"] <= bound["heldout_rmse_pp"] else "")
        )
    if meta.get("accuracy_is_percent") and meta.get("crossbar_loss_modelled") is False:
        lines.append(
            "- **No crossbar-loss model** (`penalty: none`): the accuracy axis is the float "
            "network's, so low ADC and input bits cost nothing here but do on the crossbar "
            "(measured for xpert_tinyimagenet's headline design in "
            "docs/results/compare_methods.md). Check designs with `python -m xpert_evo.verify`."
        )
    lines += [f"- {line}" for line in headline_lines(meta, markdown=True)]
    versions = meta.get("versions", {})
    lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines += rounds_section(meta)
    lines += [
        "",
        f"## Top designs vs {base.get('name', 'the baseline')}",
        "",
        "Ratios: `edap_reduction_x` = baseline EDAP / EDAP; `tops_per_w_x`, `tops_per_mm2_x` = "
        "design / baseline. Roles: knee (largest distance to the line between the front's "
        "extremes, normalised objectives), best_edap, best_accuracy, iso_accuracy (lowest EDAP at "
        "no less accuracy than the baseline). `accuracy_from`: `trained`, `proxy` (scored by the "
        "true proxy), `predicted` (by the measured-source predictor) or `surrogate`; `_std` is "
        "the uncertainty of a prediction (0 for a measurement). "
        "`precision_loss_pp`: crossbar accuracy loss the precision penalty predicts for the "
        "input and ADC bits. Genes per layer, `8x13` = 8 in all 13 layers (`flash x13` "
        "likewise): `col_share` (columns per ADC, m), `adc_type`, `adc_bits`, `input_bits`.",
        "",
        markdown_table(summary_table(tables, top_k)),
        "",
        "## Files",
        "",
        "`pareto.csv` (front), `archive.csv` (every evaluated design), `history.csv` (per "
        "generation), `pareto.png/.pdf`, `convergence.png/.pdf`, `designs/` (per-layer tables and "
        "NeuroSim network CSVs of the knee and best-EDAP designs), `checkpoint.pkl` (resume with "
        "`resume=<this directory>`), `run.json` (facts used by `python -m xpert_evo.plot`), "
        "`refine.csv` (networks trained by online refinement, when on), `refinement.csv` (designs "
        "verified by `verify.rounds`, when on).",
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
    return atomic_text(Path(out_dir) / "summary.md", summary_markdown(tables, top_k))

"""Fit the cost model to NeuroSim's per-layer RRAM reference, validate it, and re-cost designs.

Run: python bench/calibrate/calibrate_hardware.py [--write-config] [--splits 20]

1. Fits the constants of `xpert_evo.hardware.validation.FIT_GROUPS` on all 54 rows of
   shared/reference/neurosim-rram-layers.csv; `--write-config` writes them, with this command,
   the commit and the date, into the artifact xpert_evo/fitted/hardware/xpert_rram_32nm.yaml
   (with OmegaConf), which the "fit" keys of conf/hardware/*.yaml read.
2. Validation: `--splits` shape-grouped splits (`validation.shape_splits`: the base layer's shape
   always fitted, half of the other shapes held out); errors on the fitted and on the held-out
   rows -> docs/results/cost_validation.{csv,md}, with the held-out latency and energy errors
   per shape. Also the shipped constants on all rows, in total and per part of the energy.
3. Trend check: every step of every one-factor sweep, model against reference
   -> docs/results/cost_trends.csv and a summary in cost_validation.md.
4. Re-costs VGG16 and XPert's published designs in every clocking x encoding
   -> docs/results/cost_designs.md.
5. Plots of each gene's trend, model against reference -> docs/cost_trends_<gene>.png.
Every result file starts with the command, git commit, date and machine that produced it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from xpert_evo.hardware.config import HardwareConfig, load_hardware_config  # noqa: E402
from xpert_evo.hardware.model import CostModel  # noqa: E402
from xpert_evo.hardware.reference import COMPARED, METRICS, PUBLISHED, load_layers  # noqa: E402
from xpert_evo.hardware.validation import (  # noqa: E402
    FIT_GROUPS,
    SHAPE_COLUMNS,
    all_rows_summary,
    energy_parts_summary,
    fit,
    held_out_by_shape,
    predict,
    split_errors,
    split_summary,
    trend_check,
)
from xpert_evo.space.backbone import Backbone  # noqa: E402
from xpert_evo.space.genome import Genomes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DOCS, REPO, RESULTS, save_fit, write_stamped  # noqa: E402

XPERTNET_GENES = {"col_share": 8, "adc_type": "flash", "adc_bits": 6, "input_bits": 4}
"""Peripheral genes of the published 50 mm2 design as the issue states them (every layer)."""


ARTIFACT = "hardware/xpert_rram_32nm.yaml"
"""The artifact of the fitted constants (`xpert_evo.schema.fitted`) conf/hardware/*.yaml read."""


def write_config(fitted: HardwareConfig) -> None:
    """Write the fitted constants (6 significant digits) into `ARTIFACT`."""
    keys = [k for group in FIT_GROUPS.values() for k in group]
    save_fit(ARTIFACT, "neurosim_rram_layers",
             {k: float(f"{getattr(fitted, k):.6g}") for k in keys},
             data="shared/reference/neurosim-rram-layers.csv (all 54 rows)",
             note="least squares on log errors, each group of "
                  "xpert_evo.hardware.validation.FIT_GROUPS on its own reference column; "
                  "6 significant digits")


def md(frame: pd.DataFrame) -> str:
    """A markdown table (numbers to 3 significant digits, Spearman to 3 decimals)."""

    def cell(value: object, column: str) -> str:
        if isinstance(value, float | np.floating):
            return f"{value:.3f}" if column == "spearman" else f"{value:.3g}"
        return str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.shape[1]]
    for row in frame.itertuples(index=False):
        cells = (cell(v, c) for v, c in zip(row, frame.columns, strict=True))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def designs_table() -> pd.DataFrame:
    """VGG16 and the published designs in every clocking x weight encoding."""
    hw = load_hardware_config()
    rows = []
    for clocking in ("layer", "chip"):
        for encoding in ("differential", "offset"):
            model = CostModel(
                replace(hw, clocking=clocking, weight_encoding=encoding), Backbone()
            )
            for name, channels in PUBLISHED.items():
                for adc in ("flash", "sar"):
                    genes = XPERTNET_GENES | {"adc_type": adc}
                    rep = model.evaluate(Genomes.uniform(channels, **genes))
                    rows.append(
                        {
                            "design": name,
                            "adc": adc,
                            "clocking": clocking,
                            "weight_encoding": encoding,
                            "area_mm2": rep.area_mm2[0],
                            "energy_pj": rep.energy_pj[0],
                            "leakage_pj": rep.leakage_pj[0],
                            "latency_ns": rep.latency_ns[0],
                            "edap": rep.edap[0],
                            "tops_per_w": rep.tops_per_w[0],
                            "clock_ns": rep.clock_period_ns[0],
                        }
                    )
    return pd.DataFrame(rows)


def plot_trends(hw, reference: pd.DataFrame) -> list[Path]:
    """One figure per gene: the four metrics, reference (dots) against model (lines)."""
    model = predict(hw, reference)
    base = {"col_share": 8, "adc_bits": 6, "input_bits": 4, "cin": 128, "cout": 128}
    paths = []
    for gene, label in (
        ("col_share", "column sharing m"),
        ("adc_bits", "ADC bits"),
        ("input_bits", "input bits"),
        ("adc_type", "ADC type"),
    ):
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
        fixed = {k: v for k, v in base.items() if k != gene}
        mask = np.logical_and.reduce([reference[k] == v for k, v in fixed.items()])
        part = reference[mask]
        for ax, metric in zip(axes, METRICS, strict=True):
            if gene == "adc_type":
                x = np.arange(2)
                for i, adc in enumerate(("flash", "sar")):
                    row = part[part.adc_type == adc].index
                    ax.bar(i - 0.2, reference.loc[row, COMPARED[metric]], 0.4, label="NeuroSim")
                    ax.bar(i + 0.2, model.loc[row, metric], 0.4, label="model", alpha=0.7)
                ax.set_xticks(x, ["flash", "sar"])
            else:
                for adc, colour in (("flash", "tab:blue"), ("sar", "tab:orange")):
                    rows = part[part.adc_type == adc].sort_values(gene)
                    ax.plot(rows[gene], rows[COMPARED[metric]], "o", color=colour,
                            label=f"NeuroSim {adc}")
                    ax.plot(rows[gene], model.loc[rows.index, metric], "-", color=colour,
                            label=f"model {adc}")
                if gene == "col_share":
                    ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{metric} vs {label}")
        axes[0].legend(fontsize=7)
        fig.suptitle("128->128 conv, F = 16; others at m = 8, 6-bit ADC, 4-bit inputs "
                     "(offset encoding, layer clock, as simulated)", fontsize=9)
        fig.tight_layout()
        path = DOCS / f"cost_trends_{gene}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main() -> None:
    """Fit, validate, check trends, re-cost the designs, plot; print every table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--write-config", action="store_true")
    parser.add_argument("--splits", type=int, default=20)
    args = parser.parse_args()
    reference = load_layers()
    fitted = fit(load_hardware_config(), reference)
    print("# constants fitted on all rows")
    for group in FIT_GROUPS.values():
        for key in group:
            print(f"{key}: {getattr(fitted, key):.6g}")
    if args.write_config:
        write_config(fitted)
    hw = load_hardware_config()

    errors = split_errors(hw, reference, splits=args.splits)
    split = split_summary(errors)
    n_shapes = len(reference.groupby(list(SHAPE_COLUMNS))) - 1
    shipped = all_rows_summary(hw, reference).assign(rows="all (shipped constants)")
    table = pd.concat([split, shipped[split.columns]], ignore_index=True)
    parts = energy_parts_summary(hw, reference)
    trends = trend_check(hw, reference)
    per_metric = trends.groupby("metric")["agrees"].agg(["sum", "count"]).reset_index()
    per_metric.columns = ["metric", "steps agreeing", "steps"]
    by_shape = "".join(
        f"Held-out {metric} by shape (signed error, model / reference - 1, over the (split, "
        "row) pairs that held the shape out; tiles and duplication as the reference maps "
        f"it):\n\n{md(held_out_by_shape(errors, reference, metric))}\n\n"
        for metric in ("latency_ns", "energy_pj")
    )
    text = write_stamped(RESULTS / "cost_validation.md", [
        "",
        f"Cost model against neurosim-rram-layers.csv ({len(reference)} rows). Split: "
        f"{args.splits} shape-grouped splits: a shape's rows ({', '.join(SHAPE_COLUMNS)}) are "
        "all fitted or all held out; the base layer's shape (128 -> 128, F = 16, the only one "
        "with the m, ADC-bit and input-bit sweeps) is always fitted, and half of the other "
        f"{n_shapes} shapes are held out (sklearn GroupShuffleSplit, test_size 0.5, seed 0). "
        "Errors pooled over (split, row); Spearman = median over splits. Model output vs "
        f"reference column: {COMPARED}.\n\n{md(table)}\n\n"
        "Dynamic energy part by part, shipped constants on all rows (each part is fitted on its "
        "own against the reference's figure for it; share = the part's median share of the "
        f"reference's energy):\n\n{md(parts)}\n\n{by_shape}"
        "Trend directions (every step of every one-factor series; a step agrees when both move "
        "the same way or either is within +-2 %):\n\n"
        f"{md(per_metric)}\n",
    ])
    table.to_csv(RESULTS / "cost_validation.csv", index=False)
    trends.to_csv(RESULTS / "cost_trends.csv", index=False)
    print(text)
    bad = trends[~trends.agrees]
    print(f"trend steps disagreeing: {len(bad)} of {len(trends)}")
    if len(bad):
        print(bad.to_string(index=False))

    designs = designs_table()
    text = write_stamped(RESULTS / "cost_designs.md", [
        "",
        "VGG16 and XPert's published designs, every layer m = 8, 6-bit ADC, 4-bit inputs, "
        "CIFAR-10 backbone (13 convs + classifier, physical map sizes), "
        "conf/hardware/xpert_rram_32nm.yaml. Defaults: clocking layer, weight_encoding "
        f"differential.\n\n{md(designs)}\n",
    ])
    print(text)
    for path in plot_trends(hw, reference):
        print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()

"""`python -m xpert_evo.cost INPUT.csv --out OUT.csv [hardware=NAME|FILE.yaml] [KEY=VALUE ...]`.

Costs anything the model can price and writes the rows back with area_mm2, energy_pj (dynamic),
leakage_pj, latency_ns and clock_ns added. The input format is recognised from its header:
- a per-layer table with the reference's gene columns (cin, cout, out_map, col_share, adc_type
  flash|sar, adc_bits, input_bits; optional k): every row one layer on its own tiles and clock;
- a `pareto.csv` of a search run (columns channels_1.. / col_share_1.. / adc_type_1.. /
  adc_bits_1.. / input_bits_1..): every row one whole design (`CostModel`; clock_ns is the
  slowest layer's clock);
- NeuroSim's 12-column network CSV without a header (H W Cin K K Cout pool stride col_share
  adc_type(1 flash) input_bits adc_levels): one row per layer, out_map = H - K + 1 (H includes
  the padding), priced like a per-layer table; the output gets a header naming the 12 columns.
`KEY=VALUE` overrides a hardware key (e.g. weight_encoding=offset clocking=chip). Bad input
exits with code 2 and one message naming the row and the column.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from xpert_evo.hardware.config import HardwareConfig, HardwareConfigError, load_hardware_config
from xpert_evo.hardware.export import NEUROSIM_COLUMNS
from xpert_evo.hardware.layers import (
    ADC_TYPE_NAMES,
    LayerTableError,
    allowed_text,
    cost_table,
    unsupported,
    why_unsupported,
)
from xpert_evo.hardware.model import CostModel
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import GENE_COLUMNS, Genomes

NEUROSIM_WIDTH = len(NEUROSIM_COLUMNS)
"""Columns of NeuroSim's network CSV (xpert_evo.hardware.export); the output names them."""

PARETO_GENES: tuple[str, ...] = tuple(GENE_COLUMNS.values())
"""Per-layer gene column stems of pareto.csv (xpert_evo.report.results.gene_frame)."""


def _hardware(args: list[str]) -> HardwareConfig:
    name = "xpert_rram_32nm"
    overrides: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise HardwareConfigError(f"argument {arg!r} is not KEY=VALUE")
        if key == "hardware":
            name = value
        else:
            overrides[key.removeprefix("hardware.")] = value
    hw = load_hardware_config(name)
    return HardwareConfig.from_config(hw.to_dict() | overrides) if overrides else hw


def _read(path: Path) -> tuple[str, pd.DataFrame]:
    """The input's format ("layers", "pareto" or "neurosim") and its rows."""
    first = path.read_text().splitlines()[:1]
    cells = first[0].split(",") if first else []
    try:
        [float(c) for c in cells]
        numeric = bool(cells)
    except ValueError:
        numeric = False
    if numeric:
        frame = pd.read_csv(path, header=None)
        if frame.shape[1] != NEUROSIM_WIDTH:
            raise LayerTableError(
                f"{path}: row 1: a header-less file must be NeuroSim's {NEUROSIM_WIDTH}-column "
                f"network CSV, this one has {frame.shape[1]} columns"
            )
        return "neurosim", frame
    frame = pd.read_csv(path)
    return ("pareto" if "channels_1" in frame.columns else "layers"), frame


def _neurosim_layers(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    h, k, adc_type = frame[0], frame[3], frame[9]
    bad = ~adc_type.isin([0, 1])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise LayerTableError(
            f"{source}: row {i + 1}, column 10 (adc_type): {adc_type.iloc[i]!r} is not an ADC "
            "type; allowed values are [0 (sar), 1 (flash)]"
        )
    levels = frame[11].astype(float)
    return pd.DataFrame(
        {
            "cin": frame[2],
            "cout": frame[5],
            "k": k,
            "out_map": h - k + 1,
            "col_share": frame[8],
            "adc_type": np.asarray(ADC_TYPE_NAMES)[adc_type.astype(int)],
            "adc_bits": np.round(np.log2(levels)).astype(int),
            "input_bits": frame[10],
        }
    )


def _pareto(hw: HardwareConfig, frame: pd.DataFrame, source: str, backbone: Backbone):
    n_layers = backbone.n_conv
    genes = {}
    for stem in PARETO_GENES:
        columns = [f"{stem}_{i + 1}" for i in range(n_layers)]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise LayerTableError(
                f"{source}: header: missing column {missing[0]!r}; a pareto.csv needs "
                f"{stem}_1..{stem}_{n_layers}"
            )
        values = frame[columns]
        if stem == "adc_type":
            text = values.astype(str).apply(lambda c: c.str.strip().str.lower())
            bad = ~text.isin(ADC_TYPE_NAMES)
            if bad.to_numpy().any():
                i, j = (int(x) for x in np.argwhere(bad.to_numpy())[0])
                raise LayerTableError(
                    f"{source}: row {i + 1}, column {columns[j]!r}: {values.iat[i, j]!r} is not "
                    f"an ADC type; allowed values are {list(ADC_TYPE_NAMES)}"
                )
            genes["adc_flash"] = text.eq("flash").to_numpy().astype(np.int64)
        else:
            genes[stem] = values.to_numpy().astype(np.int64)
    share = genes["col_share"]
    bad = unsupported(hw, "col_share", share)
    if bad.any():
        i, j = (int(x) for x in np.argwhere(bad)[0])
        raise LayerTableError(
            f"{source}: row {i + 1}, column 'col_share_{j + 1}': "
            f"{why_unsupported(hw, 'col_share', int(share[i, j]))}; allowed: "
            f"{allowed_text(hw, 'col_share')}"
        )
    report = CostModel(hw, backbone).evaluate(Genomes(**genes), breakdown=False)
    out = frame.copy()
    for column, values in (
        ("area_mm2", report.area_mm2),
        ("energy_pj", report.energy_pj),
        ("leakage_pj", report.leakage_pj),
        ("latency_ns", report.latency_ns),
        ("clock_ns", report.clock_period_ns),
        ("edap", report.edap),
    ):
        out[column] = values.astype(np.float64)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the cost command; return the exit code (0, or 2 on bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m xpert_evo.cost", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("input", type=Path, help="layers CSV, pareto.csv or NeuroSim network CSV")
    parser.add_argument("--out", type=Path, required=True, help="output CSV")
    parser.add_argument("--input-size", type=int, default=32, help="image side (pareto.csv)")
    parser.add_argument("--num-classes", type=int, default=10, help="classes (pareto.csv)")
    parser.add_argument("overrides", nargs="*", help="hardware=NAME|FILE.yaml, KEY=VALUE")
    args = parser.parse_intermixed_args(argv)
    try:
        hw = _hardware(args.overrides)
        if not args.input.is_file():
            raise LayerTableError(f"{args.input}: no such file")
        kind, frame = _read(args.input)
        source = str(args.input)
        if kind == "pareto":
            backbone = Backbone(input_size=args.input_size, num_classes=args.num_classes)
            out = _pareto(hw, frame, source, backbone)
        elif kind == "neurosim":
            layers = _neurosim_layers(frame, source)
            costed = cost_table(hw, layers, source)
            named = frame.set_axis(list(NEUROSIM_COLUMNS), axis=1)
            out = pd.concat([named, costed.iloc[:, len(layers.columns) :]], axis=1)
        else:
            out = cost_table(hw, frame, source)
    except (LayerTableError, HardwareConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    print(f"{kind}: {len(out)} rows costed on hardware {hw.name} -> {args.out}")
    return 0

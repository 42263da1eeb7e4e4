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
`KEY=VALUE` overrides a hardware key (e.g. weight_encoding=offset clocking=chip). Every gene
cell must be an integer within the model's limits (xpert_evo.hardware.layers: `LAYER_LIMITS`,
`allowed_values`). Bad input (a cell, the file, an argument or an unwritable --out) exits with
code 2 and one line naming the row and the column, the argument or the path. The output is
written atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from xpert_evo.hardware.config import HardwareConfig, HardwareConfigError, load_hardware_config
from xpert_evo.hardware.export import NEUROSIM_COLUMNS
from xpert_evo.hardware.layers import (
    DTYPE,
    HARDWARE_GENES,
    LAYER_LIMITS,
    MAX_MAP,
    OUTPUT_COLUMNS,
    LayerTableError,
    allowed_text,
    allowed_values,
    cost_table,
    why_unsupported,
)
from xpert_evo.hardware.model import CostModel
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import ADC_TYPES, GENE_COLUMNS, Genomes
from xpert_evo.tables import (
    OneLineParser,
    TableError,
    check_out,
    integers,
    read_csv,
    refuse,
    write_csv,
)
from xpert_evo.tables import allowed_text as values_text

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


def _backbone(input_size: int, num_classes: int) -> Backbone:
    """The backbone a pareto.csv's designs are priced on; refuses a size it cannot have."""
    halvings = 2 ** len(Backbone().pool_after)
    if not halvings <= input_size <= MAX_MAP or input_size % halvings:
        raise TableError(
            f"argument --input-size: {input_size}; allowed: multiples of {halvings} in "
            f"{halvings}..{MAX_MAP} (the backbone's 2x2 max-pools halve the image "
            f"{len(Backbone().pool_after)} times; {MAX_MAP} is the largest map the model prices)"
        )
    if num_classes not in LAYER_LIMITS["cout"]:
        raise TableError(
            f"argument --num-classes: {num_classes}; allowed: {values_text(LAYER_LIMITS['cout'])} "
            "(the classifier's output channels)"
        )
    return Backbone(input_size=input_size, num_classes=num_classes)


def _read(path: Path) -> tuple[str, pd.DataFrame]:
    """The input's format ("layers", "pareto" or "neurosim") and its rows."""
    first = read_csv(path, header=None, nrows=1, dtype=str).iloc[0]
    if pd.to_numeric(first, errors="coerce").notna().all():
        frame = read_csv(path, header=None)
        if frame.shape[1] != NEUROSIM_WIDTH:
            raise LayerTableError(
                f"{path}: row 1: a header-less file must be NeuroSim's {NEUROSIM_WIDTH}-column "
                f"network CSV, this one has {frame.shape[1]} columns"
            )
        return "neurosim", frame
    frame = read_csv(path)
    return ("pareto" if "channels_1" in frame.columns else "layers"), frame


def _first_bad(bad: np.ndarray, message: Callable[[int], str]) -> None:
    """Raise `LayerTableError` with ``message(i)`` for the first row ``i`` where ``bad``."""
    if bad.any():
        raise LayerTableError(message(int(np.flatnonzero(bad)[0])))


def _neurosim_layers(hw: HardwareConfig, frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The layer table of a NeuroSim network CSV, every cell checked against the limits of the
    per-layer table's column it becomes (`LAYER_LIMITS`, `allowed_values`)."""
    levels = tuple(2**b for b in allowed_values(hw, "adc_bits"))
    allowed: list[tuple[range | tuple[int, ...], Callable[[int], str] | None]] = [
        (range(1, MAX_MAP + 1), None),  # H
        (range(1, MAX_MAP + 1), None),  # W
        (LAYER_LIMITS["cin"], None),
        (LAYER_LIMITS["k"], None),
        (LAYER_LIMITS["k"], None),
        (LAYER_LIMITS["cout"], None),
        ((0, 1), None),  # pool
        ((1,), lambda v: f"stride {v} is not priced (the cost model's layers have stride 1)"),
        (allowed_values(hw, "col_share"), lambda v: why_unsupported(hw, "col_share", v)),
        ((0, 1), lambda v: f"{v} is not an ADC type (0 sar, 1 flash)"),
        (allowed_values(hw, "input_bits"), lambda v: why_unsupported(hw, "input_bits", v)),
        (levels, lambda v: f"{v} levels is not 2^b for ADC bits b in "
                           f"{allowed_text(hw, 'adc_bits')}"),
    ]

    def where(j: int) -> Callable[[int], str]:
        return lambda i: f"{source}: row {i + 1}, column {j + 1} ({NEUROSIM_COLUMNS[j]})"

    cells = [integers(frame[j], values, where(j), why) for j, (values, why) in enumerate(allowed)]
    h, w, cin, k, k2, cout, _, _, share, flash, input_bits, adc_levels = cells
    _first_bad(w != h, lambda i: f"{where(1)(i)}: W = {w[i]} differs from H = {h[i]}; allowed: "
                                 "W = H (the cost model prices square maps)")
    _first_bad(k2 != k, lambda i: f"{where(4)(i)}: {k2[i]} differs from column 4 (K) = {k[i]}; "
                                  "allowed: square kernels")
    out_map = h - k + 1
    _first_bad(k // 2 > out_map, lambda i: (
        f"{where(0)(i)}: H = {h[i]} gives a {out_map[i]}-pixel output map for K = {k[i]}; "
        f"allowed: H >= K + K // 2 - 1 (H counts the padding; the output map is H - K + 1, at "
        "least K // 2)"))
    return pd.DataFrame(
        {
            "cin": cin,
            "cout": cout,
            "k": k,
            "out_map": out_map,
            "col_share": share,
            "adc_type": np.asarray(ADC_TYPES)[flash],
            "adc_bits": np.log2(adc_levels).round().astype(np.int64),
            "input_bits": input_bits,
        }
    )


def _pareto(
    hw: HardwareConfig, frame: pd.DataFrame, source: str, backbone: Backbone
) -> pd.DataFrame:
    """The pareto.csv rows with the cost of every design added, every gene cell checked."""
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
            bad = ~text.isin(ADC_TYPES)
            if bad.to_numpy().any():
                i, j = (int(x) for x in np.argwhere(bad.to_numpy())[0])
                raise LayerTableError(
                    f"{source}: row {i + 1}, column {columns[j]!r}: {values.iat[i, j]!r} is not "
                    f"an ADC type; allowed values are {list(ADC_TYPES)}"
                )
            genes["adc_flash"] = text.eq("flash").to_numpy().astype(np.int64)
            continue
        if stem in HARDWARE_GENES:
            allowed = allowed_values(hw, stem)

            def why(v: int, gene: str = stem) -> str:
                return why_unsupported(hw, gene, v)
        else:
            allowed, why = LAYER_LIMITS["cout"], None
        genes[stem] = np.stack([
            integers(values[c], allowed, lambda i, c=c: f"{source}: row {i + 1}, column {c!r}",
                     why)
            for c in columns
        ], axis=1)
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


def _check_finite(out: pd.DataFrame, source: str) -> None:
    """Refuse a priced row with a figure that overflows float32 (the cost model's `DTYPE`): an
    allowed cell can still give one (a whole design's EDAP multiplies three large figures, and
    KEY=VALUE can scale any constant), and an inf or a blank is never written."""
    for column in [c for c in (*OUTPUT_COLUMNS, "edap") if c in out.columns]:
        values = out[column].to_numpy()
        _first_bad(~np.isfinite(values), lambda i, column=column, values=values: (
            f"{source}: row {i + 1}, column {column!r}: {values[i]} overflows the cost model's "
            f"float32 range; allowed: figures up to {float(np.finfo(DTYPE).max):.3g} (fewer or "
            "narrower layers, a smaller map or input size, smaller hardware constants)"))


def main(argv: list[str] | None = None) -> int:
    """Run the cost command; return the exit code (0, or 2 on bad input)."""
    parser = OneLineParser(
        prog="python -m xpert_evo.cost", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("input", type=Path, help="layers CSV, pareto.csv or NeuroSim network CSV")
    parser.add_argument("--out", type=Path, required=True,
                        help="output CSV (written atomically)")
    parser.add_argument("--input-size", type=int, default=32, help="image side (pareto.csv)")
    parser.add_argument("--num-classes", type=int, default=10, help="classes (pareto.csv)")
    parser.add_argument("overrides", nargs="*", help="hardware=NAME|FILE.yaml, KEY=VALUE")
    args = parser.parse_intermixed_args(argv)
    try:
        check_out(args.out)
        hw = _hardware(args.overrides)
        backbone = _backbone(args.input_size, args.num_classes)
        kind, frame = _read(args.input)
        source = str(args.input)
        with np.errstate(over="ignore", invalid="ignore"):  # _check_finite names the row
            if kind == "pareto":
                out = _pareto(hw, frame, source, backbone)
            elif kind == "neurosim":
                layers = _neurosim_layers(hw, frame, source)
                costed = cost_table(hw, layers, source)
                named = frame.set_axis(list(NEUROSIM_COLUMNS), axis=1)
                out = pd.concat([named, costed.iloc[:, len(layers.columns) :]], axis=1)
            else:
                out = cost_table(hw, frame, source)
        _check_finite(out, source)
        write_csv(out, args.out)
    except (TableError, HardwareConfigError) as err:
        return refuse(err)
    print(f"{kind}: {len(out)} rows costed on hardware {hw.name} -> {args.out}")
    return 0

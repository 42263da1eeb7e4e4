"""Per-layer physics of the crossbar cost model, on arrays of any (broadcastable) shape.

One function, `layer_costs`, prices conv layers from their genes; `CostModel` calls it on
(N genomes, L + 1 layers) arrays, the cost command (`xpert_evo.cost`) and the validation on
(rows,) arrays. Equations (docs/cost_model.md derives them; the constants are in
conf/hardware/*.yaml with their sources):

Mapping (NeuroSim V1.3 floorplan, neurosim-rram-layers.md): a tile is T x T crossbars,
T = sqrt(crossbars per tile); the weight matrix (rows = Cin K^2, cols = Cout x cells per weight x
2 for a differential encoding) is cut into tile-sized blocks:
    tiles = ceil(rows / (T X_r)) ceil(cols / (T X_c))
    duplication d = floor(T / min(row blocks, T)) floor(T / min(col blocks, T))
    vectors = ceil(F^2 / d)  input vectors each crossbar reads one after another
Sensing path (ns, before the clock margin):
    path = t_sense + t_sel (X_c / m) + t_sel2 (X_c / m)^2 + t_dec log2 m + t_ADC
    t_ADC = t_flash + t_level (2^b - 1) for flash, (b + 1) t_SAR for SAR
Cycles: sensing vectors p m; accumulation vectors m (a_t tiles + a_p p) (partial sums of
    every tile of the layer, and of every bit plane, accumulated in turn); buffers and
    interconnect: global c_in F^2 Cin p, and the buffers of the largest tile (tiles run in
    parallel; a tile's buffers pass every output position, duplicated or not)
    c_ti F^2 p min(rows, T X_r) + c_to F^2 min(cols, T X_c) / (columns per weight).
Energy (pJ, dynamic): conversions = F^2 (p - 1) row blocks cols (the all-zero sign plane of
    non-negative inputs costs nothing), each e_ADC(type, b) + e_cur(type, b) a, the column current
    following a = row fill x w, w the share of a K x K window inside the zero-padded map; word
    lines: F^2 (p - 1) row blocks col blocks crossbar reads x m cycles x X_r lines x w e_wl
    (NeuroSim charges all X_r lines at the mapped rows' activity); muxes and decoders F^2 p row
    blocks col blocks m e_mux; accumulation F^2 p row blocks cols (e_acc + e_acc_b b); tile
    buffers and wires (x the tile side) per input bit delivered to a tile, F^2 p rows x column
    tiles, and per partial-sum bit leaving one, F^2 Cout x row tiles x (b + p + partial-sum bits).
Area (um2 per tile): T^2 (X_r X_c A_cell + (X_c / m)(A_ADC + A_acc + A_acc_b (b + p))
    + A_dec m) + A_tile.
Leakage (uW per tile): P_tile + T^2 (X_c / m) P_ADC(type, b).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xpert_evo.hardware.config import HardwareConfig
from xpert_evo.space.genome import ADC_TYPES, GeneError
from xpert_evo.tables import TableError, integers
from xpert_evo.tables import allowed_text as values_text

MAX_ADC_BITS = 16
"""Largest ADC resolution the model tabulates."""

BIT_RANGES: dict[str, tuple[int, int]] = {"adc_bits": (1, MAX_ADC_BITS), "input_bits": (2, 16)}
"""Inclusive (lowest, highest) value of each bits gene the models support; the one place these
limits are stated (search-space and per-layer-table checks read them). ADC bits: the cost model
tabulates ADCs of 1..`MAX_ADC_BITS` bits. Input bits: at least 2, the sign plane plus one
magnitude bit (the cost model converts p - 1 bit planes; the crossbar simulation quantises to
2^p - 1 levels); at most 16, as for the ADC: the simulation's bit planes, the ADC calibration
and the precision penalty were built and checked for inputs of a few bits (the penalty's fit
spans 2..8), and nothing here claims more."""

DTYPE = np.float32
"""Working precision: float32 halves memory traffic; relative rounding ~1e-7 is far below the
model's error against NeuroSim."""

# NeuroSim V1.3 SAR ADC area: A_nmos (269 + (b - 1) 109) + A_pmos (209 + (b - 1) 73) (facts file);
# with A_nmos = A_pmos that is (478 + 182 (b - 1)) transistor areas.
_SAR_TRANSISTORS_BASE = 269 + 209
_SAR_TRANSISTORS_PER_BIT = 109 + 73


@dataclass(frozen=True)
class AdcTables:
    """Per-ADC figures indexed by `key = adc_flash * (MAX_ADC_BITS + 1) + adc_bits`.

    Attributes:
        area_um2, area_per_share_um2: area of one ADC is area_um2 + area_per_share_um2 x m.
        delay_ns: conversion delay on the sensing path.
        energy_pj, current_energy_pj: energy per conversion is energy_pj + current_energy_pj x a.
        leakage_uw: leakage power of one ADC.
    """

    area_um2: np.ndarray
    area_per_share_um2: np.ndarray
    delay_ns: np.ndarray
    energy_pj: np.ndarray
    current_energy_pj: np.ndarray
    leakage_uw: np.ndarray

    @classmethod
    def of(cls, hw: HardwareConfig) -> AdcTables:
        """Tabulate every (type, bits) for these hardware constants."""
        bits = np.tile(np.arange(MAX_ADC_BITS + 1, dtype=np.float64), 2)
        flash = np.repeat([False, True], MAX_ADC_BITS + 1)
        comparators = 2.0**bits - 1
        sar_transistors = _SAR_TRANSISTORS_BASE + _SAR_TRANSISTORS_PER_BIT * (bits - 1)
        tables = {
            "area_um2": np.where(
                flash,
                comparators
                * (hw.flash_area_per_level_um2 + hw.flash_area_per_level_bit_um2 * bits),
                hw.sar_area_per_transistor_um2 * sar_transistors,
            ),
            "area_per_share_um2": np.where(
                flash, comparators * hw.flash_area_per_level_share_um2, 0.0
            ),
            "delay_ns": np.where(
                flash,
                hw.flash_delay_ns + hw.flash_delay_per_level_ns * comparators,
                (bits + 1) * hw.sar_delay_per_cycle_ns,
            ),
            "energy_pj": np.where(
                flash,
                hw.flash_energy_per_level_pj * comparators,
                (hw.sar_energy_per_cycle_pj + hw.sar_energy_per_cycle_bit_pj * bits) * (bits + 1),
            ),
            "current_energy_pj": np.where(
                flash, hw.flash_current_energy_pj, hw.sar_current_energy_per_cycle_pj * (bits + 1)
            ),
            "leakage_uw": np.where(
                flash, hw.flash_leakage_per_level_uw * comparators, hw.sar_leakage_uw
            ),
        }
        return cls(**{k: v.astype(DTYPE) for k, v in tables.items()})


def window_fraction(out_map: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Share of a K x K 'same' window's taps that fall inside the map, averaged over the F^2
    output positions: ((K F - h (h + 1)) / (K F))^2 with h = K // 2 (1 for a 1x1 kernel)."""
    half = kernel // 2
    return ((kernel * out_map - half * (half + 1)) / (kernel * out_map)) ** 2


def layer_costs(
    hw: HardwareConfig,
    adc: AdcTables,
    cin: np.ndarray,
    cout: np.ndarray,
    out_map: np.ndarray,
    kernel: np.ndarray,
    col_share: np.ndarray,
    adc_key: np.ndarray,
    adc_bits: np.ndarray,
    input_bits: np.ndarray,
    breakdown: bool = False,
) -> dict[str, np.ndarray]:
    """Cost of every layer of the broadcast arrays (float `DTYPE`, integer `adc_key`).

    Returns arrays of the broadcast shape: tiles, crossbars, duplication, path_ns (sensing path
    before the margin), cycles, area_mm2, energy_pj (dynamic), leakage_uw; with `breakdown`
    also the parts: cycles_{sense,accumulation,buffer}, area_{array,adc,mux,accumulation,buffer}
    _mm2 and energy_{array,adc,mux,accumulation,buffer,interconnect}_pj. Latency is cycles x clock
    period, set by the caller (it depends on the clocking mode).
    """
    xr, xc = DTYPE(hw.xbar_rows), DTYPE(hw.xbar_cols)
    side = DTYPE(hw.tile_side_xbars)
    m, b, p = col_share, adc_bits, input_bits
    pixels = out_map * out_map

    rows = cin * kernel * kernel
    cols = cout * DTYPE(hw.columns_per_weight)
    row_blocks = np.ceil(rows / xr)
    col_blocks = np.ceil(cols / xc)
    row_tiles = np.ceil(row_blocks / side)
    col_tiles = np.ceil(col_blocks / side)
    tiles = row_tiles * col_tiles
    duplication = np.floor(side / np.minimum(row_blocks, side)) * np.floor(
        side / np.minimum(col_blocks, side)
    )
    vectors = np.ceil(pixels / duplication)
    adcs = xc / m  # ADCs per crossbar

    # sensing path and cycles
    path_ns = (
        hw.sense_delay_ns
        + adcs * (hw.select_delay_per_col_ns + hw.select_delay_per_col2_ns * adcs)
        + hw.decoder_delay_per_stage_ns * np.log2(m)
        + adc.delay_ns[adc_key]
    )
    sense_cycles = vectors * p * m
    accum_per_sense = hw.accum_cycles_per_tile * tiles + hw.accum_cycles_per_input_bit * p
    accum_cycles = vectors * m * accum_per_sense
    input_bits_moved = pixels * cin * p
    tile_input_bits = pixels * p * np.minimum(rows, side * xr)
    tile_outputs = pixels * np.minimum(cols, side * xc) / DTYPE(hw.columns_per_weight)
    buffer_cycles = (
        hw.input_cycles_per_bit * input_bits_moved
        + hw.tile_input_cycles_per_bit * tile_input_bits
        + hw.tile_output_cycles_per_value * tile_outputs
    )

    # area per tile, um2
    cell_um2 = hw.cell_area_f2 * (hw.feature_nm * 1e-3) ** 2
    adc_um2 = adc.area_um2[adc_key] + adc.area_per_share_um2[adc_key] * m
    accum_um2 = hw.accum_area_per_adc_um2 + hw.accum_area_per_adc_bit_um2 * (b + p)
    per_xbar_um2 = xr * xc * cell_um2 + adcs * (adc_um2 + accum_um2) + hw.decoder_area_um2 * m
    tile_um2 = side * side * per_xbar_um2 + hw.tile_periphery_area_um2
    area_mm2 = tiles * tile_um2 * 1e-6

    # dynamic energy, pJ
    window = window_fraction(out_map, kernel)
    activity = rows / (row_blocks * xr) * window  # conducting share of a crossbar's rows
    reads = pixels * row_blocks * cols  # column reads per input bit plane
    signal = reads * (p - 1)
    adc_pj = signal * (adc.energy_pj[adc_key] + adc.current_energy_pj[adc_key] * activity)
    cycles_read = pixels * row_blocks * col_blocks * m  # crossbar sensing cycles per bit plane
    wordline_pj = cycles_read * (p - 1) * (window * (xr * hw.wordline_energy_pj))
    mux_pj = cycles_read * p * hw.mux_energy_pj
    accum_pj = reads * p * (hw.accum_energy_pj + hw.accum_energy_per_bit_pj * b)
    tile_in_bits = pixels * p * rows * col_tiles  # every column tile receives its rows' bits
    psum_bits = pixels * cout * row_tiles * (b + p + DTYPE(hw.partial_sum_extra_bits))
    buffer_pj = (
        hw.buffer_energy_per_input_bit_pj * tile_in_bits
        + hw.buffer_energy_per_output_bit_pj * psum_bits
    )
    tile_side_mm = np.sqrt(tile_um2) * 1e-3
    wire_pj = tile_side_mm * (
        hw.wire_energy_per_input_bit_mm_pj * tile_in_bits
        + hw.wire_energy_per_output_bit_mm_pj * psum_bits
    )
    out = {
        "tiles": tiles,
        "crossbars": row_blocks * col_blocks,
        "duplication": duplication,
        "path_ns": path_ns,
        "cycles": sense_cycles + accum_cycles + buffer_cycles,
        "area_mm2": area_mm2,
        "energy_pj": adc_pj + wordline_pj + mux_pj + accum_pj + buffer_pj + wire_pj,
        "leakage_uw": tiles
        * (hw.leakage_per_tile_uw + side * side * adcs * adc.leakage_uw[adc_key]),
    }
    if breakdown:
        scale = tiles * 1e-6
        out |= {
            "cycles_sense": sense_cycles,
            "cycles_accumulation": accum_cycles,
            "cycles_buffer": buffer_cycles,
            "area_array_mm2": scale * side * side * xr * xc * cell_um2,
            "area_adc_mm2": scale * side * side * adcs * adc_um2,
            "area_mux_mm2": scale * side * side * hw.decoder_area_um2 * m,
            "area_accumulation_mm2": scale * side * side * adcs * accum_um2,
            "area_buffer_mm2": scale * hw.tile_periphery_area_um2 * np.ones_like(m),
            "energy_array_pj": wordline_pj,
            "energy_adc_pj": adc_pj,
            "energy_mux_pj": mux_pj,
            "energy_accumulation_pj": accum_pj,
            "energy_buffer_pj": buffer_pj,
            "energy_interconnect_pj": wire_pj,
        }
    return out


def clock_ns(hw: HardwareConfig, path_ns: np.ndarray) -> np.ndarray:
    """Clock period of a sensing path: margin x path, never faster than the maximum clock."""
    return np.maximum(DTYPE(1.0 / hw.max_clock_ghz), DTYPE(hw.clock_margin) * path_ns)


LAYER_COLUMNS: tuple[str, ...] = (
    "cin",
    "cout",
    "out_map",
    "col_share",
    "adc_type",
    "adc_bits",
    "input_bits",
)
"""Gene columns of a per-layer table (the reference file's names); `k` (kernel) is optional."""

OUTPUT_COLUMNS: tuple[str, ...] = ("area_mm2", "energy_pj", "leakage_pj", "latency_ns", "clock_ns")
"""What `cost_table` adds to every row."""


class LayerTableError(TableError):
    """A per-layer table the cost model cannot price; the message names the row and column."""


MAX_CHANNELS = 1 << 16
"""Most input or output channels of a layer the cost command prices: with `MAX_KERNEL`, the
Cin K^2 crossbar rows stay below 2^24, the largest count float32 (`DTYPE`) holds exactly; 128 x
the widest layer of the search space (512, conf/space/default.yaml)."""

MAX_KERNEL = 15
"""Largest kernel side K the cost command prices: 2^16 x 15^2 < 2^24 crossbar rows (see
`MAX_CHANNELS`)."""

MAX_MAP = 1 << 12
"""Largest output feature-map side F the cost command prices: F^2 = 2^24 pixels, the largest
count float32 holds exactly (18 x the side of a 224-pixel ImageNet input)."""

LAYER_LIMITS: dict[str, range] = {
    "cin": range(1, MAX_CHANNELS + 1),
    "cout": range(1, MAX_CHANNELS + 1),
    "out_map": range(1, MAX_MAP + 1),
    "k": range(1, MAX_KERNEL + 1),
}
"""Allowed values of the geometry columns of a per-layer table (see the constants above); the
tests price a layer at every maximum and get finite figures."""


def _check_table(hw: HardwareConfig, frame: pd.DataFrame, source: str) -> dict[str, np.ndarray]:
    """The table's genes as arrays (`LAYER_COLUMNS` and `k` as int64, adc_type as the
    `adc_flash` 0/1), after checking every cell; raises `TableError` for the first bad one."""
    missing = [c for c in LAYER_COLUMNS if c not in frame.columns]
    if missing:
        raise LayerTableError(
            f"{source}: header: missing column {missing[0]!r}; a layer table needs the columns "
            f"{list(LAYER_COLUMNS)} (and optionally 'k')"
        )
    adc_type = frame["adc_type"].astype(str).str.strip().str.lower()
    bad = ~adc_type.isin(ADC_TYPES).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LayerTableError(
            f"{source}: row {i + 1}, column 'adc_type': {frame['adc_type'].iloc[i]!r} is not an "
            f"ADC type; allowed values are {list(ADC_TYPES)}"
        )
    genes = {"adc_flash": adc_type.eq("flash").to_numpy().astype(np.int64)}
    for column in [c for c in LAYER_COLUMNS if c != "adc_type"] + (["k"] if "k" in frame else []):

        def where(i: int, column: str = column) -> str:
            return f"{source}: row {i + 1}, column {column!r}"

        if column in HARDWARE_GENES:
            genes[column] = integers(frame[column], allowed_values(hw, column), where,
                                     lambda v, gene=column: why_unsupported(hw, gene, v))
        else:
            genes[column] = integers(frame[column], LAYER_LIMITS[column], where)
    kernel = genes.get("k", np.full(len(frame), 3, np.int64))
    bad = kernel // 2 > genes["out_map"]
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LayerTableError(
            f"{source}: row {i + 1}, column 'k': a {kernel[i]} x {kernel[i]} kernel on a "
            f"{genes['out_map'][i]}-pixel map; allowed: k // 2 <= out_map (the model's 'same' "
            "window reaches at most one map side into the padding)"
        )
    return genes


HARDWARE_GENES: tuple[str, ...] = ("col_share", "adc_bits", "input_bits")
"""Genes whose values the hardware limits (`unsupported`)."""


def unsupported(hw: HardwareConfig, gene: str, values: np.ndarray) -> np.ndarray:
    """Boolean mask of ``values`` of one of `HARDWARE_GENES` that ``hw`` and the models cannot
    build: a column sharing not in ``hw.col_share_options``, bits outside `BIT_RANGES`."""
    values = np.asarray(values, dtype=np.int64)
    if gene == "col_share":
        return ~np.isin(values, hw.col_share_options)
    low, high = BIT_RANGES[gene]
    return (values < low) | (values > high)


def allowed_values(hw: HardwareConfig, gene: str) -> range | tuple[int, ...]:
    """The values of one of `HARDWARE_GENES` that ``hw`` and the models can build: the column
    sharings ``hw.col_share_options``, or the `BIT_RANGES` of a bits gene."""
    if gene == "col_share":
        return hw.col_share_options
    low, high = BIT_RANGES[gene]
    return range(low, high + 1)


def allowed_text(hw: HardwareConfig, gene: str) -> str:
    """The values of one of `HARDWARE_GENES` that ``hw`` allows, as text: "1, 2, 4, ..." or
    "1..16"."""
    return values_text(allowed_values(hw, gene))


def why_unsupported(hw: HardwareConfig, gene: str, value: int) -> str:
    """Why one `unsupported` value of ``gene`` cannot be built, e.g. "3 does not divide the 64
    crossbar columns"."""
    if gene == "col_share":
        if value < 1 or hw.xbar_cols % value:
            return f"{value} does not divide the {hw.xbar_cols} crossbar columns"
        return f"{value} is not a power of two (a column mux decodes log2(m) select bits)"
    low, high = BIT_RANGES[gene]
    what = {"adc_bits": "ADC bits", "input_bits": "input bits"}[gene]
    return f"{value} is outside the {low}..{high} {what} the models support"


def check_genes(hw: HardwareConfig, values: Mapping[str, Sequence[int]], key: str) -> None:
    """Raise `GeneError` for the first gene value ``hw`` cannot build.

    Args:
        hw: the hardware.
        values: gene name -> the values given for it (genes not in `HARDWARE_GENES` are skipped).
        key: the config node the values come from (``space``, ``space.baseline``), named in the
            message with the gene, the value and the allowed values, e.g. ``space.col_share=[3]:
            3 does not divide the 64 crossbar columns; allowed: 1, 2, 4, 8, 16, 32, 64``.
    """
    for gene in HARDWARE_GENES:
        if gene not in values:
            continue
        given = [int(v) for v in values[gene]]
        bad = np.asarray(given)[unsupported(hw, gene, np.asarray(given))]
        if len(bad):
            shown = given[0] if len(set(given)) == 1 and key.endswith("baseline") else given
            raise GeneError(
                f"{key}.{gene}={shown}: {why_unsupported(hw, gene, int(bad[0]))}; allowed: "
                f"{allowed_text(hw, gene)}"
            )


def cost_table(
    hw: HardwareConfig, frame: pd.DataFrame, source: str = "table", breakdown: bool = False
) -> pd.DataFrame:
    """Price every row of a per-layer table (`LAYER_COLUMNS`, optional `k`, default 3) as one
    layer on its own tiles with its own clock; return the rows with `OUTPUT_COLUMNS` added
    (and the components when `breakdown`). Raise `TableError` naming the row, the column and
    the allowed values of the first bad cell (`LAYER_LIMITS`, `allowed_values`). The leakage is
    the layer's own tiles over its own latency, as the reference's leakage_energy_real_tiles_pj.
    """
    genes = _check_table(hw, frame, source)
    adc = AdcTables.of(hw)

    def col(name: str) -> np.ndarray:
        return genes[name].astype(DTYPE)

    bits = genes["adc_bits"]
    kernel = col("k") if "k" in genes else np.full(len(frame), 3, DTYPE)
    costs = layer_costs(
        hw,
        adc,
        col("cin"),
        col("cout"),
        col("out_map"),
        kernel,
        col("col_share"),
        genes["adc_flash"] * (MAX_ADC_BITS + 1) + bits,
        bits.astype(DTYPE),
        col("input_bits"),
        breakdown,
    )
    period = clock_ns(hw, costs["path_ns"])
    latency = costs["cycles"] * period
    out = frame.copy()
    out["area_mm2"] = costs["area_mm2"].astype(np.float64)
    out["energy_pj"] = costs["energy_pj"].astype(np.float64)
    out["leakage_pj"] = (costs["leakage_uw"] * latency * 1e-3).astype(np.float64)
    out["latency_ns"] = latency.astype(np.float64)
    out["clock_ns"] = period.astype(np.float64)
    if breakdown:
        for key in ("tiles", "duplication"):
            out[key] = costs[key].astype(np.float64)
        for key, values in costs.items():
            if key.startswith(("area_", "energy_")) and key not in OUTPUT_COLUMNS:
                out[key] = values.astype(np.float64)
    return out

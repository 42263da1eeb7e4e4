"""Fit the cost model's free constants to the NeuroSim per-layer reference and validate it.

- `fit`: non-negative linear least squares, then least squares on log errors
  (scipy.optimize.nnls, least_squares), one group of constants per target, in order: clock <-
  clock_ns; area <- real-layer area; cycles <- latency (with the fitted clock); the dynamic
  energy part by part (`ENERGY_PARTS`: ADC, accumulation, buffers, interconnect, column muxes,
  each against the reference's figure for that part); leakage <- the real tiles' leakage
  energy. Constants stay >= 0.
- `split_errors`, `split_summary`: shape-grouped splits (scikit-learn `GroupShuffleSplit`): the
  rows of one layer shape (`SHAPE_COLUMNS`) are all fitted or all held out; fit, then report the
  errors on the fitted and on the held-out rows.
- `trend_check`: every step of every one-factor sweep, model against reference.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, nnls
from scipy.stats import spearmanr
from sklearn.model_selection import GroupShuffleSplit

from xpert_evo.hardware.config import HardwareConfig
from xpert_evo.hardware.layers import cost_table
from xpert_evo.hardware.reference import COMPARED, GENE_COLUMNS, METRICS, SWEEPS

FIT_GROUPS: dict[str, tuple[str, ...]] = {
    "clock_ns": (
        "sense_delay_ns",
        "select_delay_per_col_ns",
        "select_delay_per_col2_ns",
        "decoder_delay_per_stage_ns",
        "flash_delay_ns",
        "flash_delay_per_level_ns",
    ),
    "area_mm2": (
        "flash_area_per_level_um2",
        "flash_area_per_level_bit_um2",
        "flash_area_per_level_share_um2",
        "sar_area_per_transistor_um2",
        "accum_area_per_adc_um2",
        "accum_area_per_adc_bit_um2",
        "decoder_area_um2",
        "tile_periphery_area_um2",
    ),
    "latency_ns": (
        "accum_cycles_per_tile",
        "accum_cycles_per_input_bit",
        "input_cycles_per_bit",
        "tile_input_cycles_per_bit",
        "tile_output_cycles_per_value",
    ),
    "energy_adc": (
        "flash_energy_per_level_pj",
        "flash_current_energy_pj",
        "sar_current_energy_per_cycle_pj",
        "wordline_energy_pj",
    ),
    "energy_accumulation": ("accum_energy_pj", "accum_energy_per_bit_pj"),
    "energy_buffer": ("buffer_energy_per_input_bit_pj", "buffer_energy_per_output_bit_pj"),
    "energy_interconnect": ("wire_energy_per_input_bit_mm_pj", "wire_energy_per_output_bit_mm_pj"),
    "energy_mux": ("mux_energy_pj",),
    "leakage_pj": ("leakage_per_tile_uw", "flash_leakage_per_level_uw", "sar_leakage_uw"),
}
"""Fitted constants per target (a metric of `COMPARED` or a part of `ENERGY_PARTS`), fitted in
this order (later groups use the earlier ones)."""

ENERGY_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "energy_adc": (("energy_array_pj", "energy_adc_pj"), ("energy_adc_pj",), ()),
    "energy_accumulation": (("energy_accumulation_pj",), ("energy_accum_pj",), ()),
    "energy_buffer": (("energy_buffer_pj",), ("energy_buffer_pj",), ()),
    "energy_interconnect": (("energy_interconnect_pj",), ("energy_ic_pj",), ()),
    "energy_mux": (
        ("energy_mux_pj",),
        ("energy_other_pj",),
        ("energy_buffer_pj", "energy_ic_pj"),
    ),
}
"""The dynamic energy's parts, each fitted on its own: part -> (the model's breakdown columns,
summed; the reference's columns of the same part, added; and subtracted). The reference's
parts (neurosim-rram-layers.md): ADC + accumulation + other = energy_pj, with buffer and
interconnect parts of other; the rest of other is the crossbars' column muxes, their decoders
and word-line switch matrices. NeuroSim books the word lines' switching, the model's array
energy, with the ADC."""

SHAPE_COLUMNS: tuple[str, ...] = ("cin", "cout", "out_map", "k")
"""A layer's shape: the rows of one shape are never split between fit and test."""

FLAT = 0.02
"""Relative step within which a sweep step counts as flat (issue 13)."""


def predict(hw: HardwareConfig, reference: pd.DataFrame) -> pd.DataFrame:
    """Model outputs for the reference rows, with the breakdown, priced as the reference prices
    them: each row one layer with its own clock, NeuroSim's offset weight mapping (one column per
    weight slice)."""
    offset = replace(hw, weight_encoding="offset", clocking="layer")
    return cost_table(offset, reference[list(GENE_COLUMNS)], "reference", breakdown=True)


def _target(
    model: pd.DataFrame, reference: pd.DataFrame, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """(model, reference) values of a fit target of `FIT_GROUPS`, as float64 arrays."""
    if name in ENERGY_PARTS:
        columns, plus, minus = ENERGY_PARTS[name]
        part = reference[list(plus)].sum(axis=1) - reference[list(minus)].sum(axis=1)
        return model[list(columns)].sum(axis=1).to_numpy(np.float64), part.to_numpy()
    return model[name].to_numpy(np.float64), reference[COMPARED[name]].to_numpy()


def _linear_start(
    hw: HardwareConfig, reference: pd.DataFrame, name: str, keys: tuple[str, ...]
) -> np.ndarray:
    """Every target is affine in its own group's constants: solve that as a non-negative least
    squares on relative errors (scipy.optimize.nnls), the start of the log-error fit."""
    target = _target(predict(hw, reference), reference, name)[1]

    def model(values: dict[str, float]) -> np.ndarray:
        return _target(predict(replace(hw, **values), reference), reference, name)[0]

    zeros = dict.fromkeys(keys, 0.0)
    base = model(zeros)
    design = np.stack([model(zeros | {k: 1.0}) - base for k in keys], axis=1)
    solution, _ = nnls(design / target[:, None], 1.0 - base / target)
    return solution


def fit(hw: HardwareConfig, reference: pd.DataFrame) -> HardwareConfig:
    """Constants of `FIT_GROUPS` fitted on these reference rows, the others kept from `hw`.

    Each group: non-negative linear least squares on relative errors, then least squares on log
    errors from there (constants the linear solve set to 0 stay at 0)."""
    for name, keys in FIT_GROUPS.items():
        target = np.log(_target(predict(hw, reference), reference, name)[1])
        start = _linear_start(hw, reference, name, keys)
        free = tuple(k for k, x in zip(keys, start, strict=True) if x > 0)
        hw = replace(hw, **dict(zip(keys, start.tolist(), strict=True)))

        def residual(
            x: np.ndarray,
            free: tuple[str, ...] = free,
            base: HardwareConfig = hw,
            name: str = name,
            target: np.ndarray = target,
        ) -> np.ndarray:
            trial = replace(base, **dict(zip(free, np.exp(x).tolist(), strict=True)))
            return np.log(_target(predict(trial, reference), reference, name)[0]) - target

        x0 = np.log([getattr(hw, k) for k in free])
        solution = least_squares(residual, x0, method="trf", diff_step=1e-3)  # float32 model
        hw = replace(hw, **dict(zip(free, np.exp(solution.x).tolist(), strict=True)))
    return hw


def errors(hw: HardwareConfig, reference: pd.DataFrame) -> pd.DataFrame:
    """Relative error (model / reference - 1) of every metric on every row."""
    model = predict(hw, reference)
    return pd.DataFrame(
        {m: model[m].to_numpy() / reference[COMPARED[m]].to_numpy() - 1 for m in COMPARED}
    )


def _summary(rel: np.ndarray, model: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    return {
        "median_ape_pct": 100 * float(np.median(np.abs(rel))),
        "p90_ape_pct": 100 * float(np.quantile(np.abs(rel), 0.9)),
        "spearman": float(spearmanr(model, ref).statistic),
    }


def shape_splits(
    reference: pd.DataFrame, splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fitted, held-out) row indices of `splits` shape-grouped splits.

    The base layer's shape (the rows of group "base") is always fitted: it is the only shape
    with the m, ADC-bit and input-bit sweeps, and without it every other row is at m = 8, 6-bit
    ADC, 4-bit inputs, so the constants those genes scale could not be fitted. The other shapes
    are split by `GroupShuffleSplit` (half of them held out, rounded up): a shape's rows are
    all fitted or all held out.
    """
    shape = reference[list(SHAPE_COLUMNS)].apply(tuple, axis=1)
    base = shape.isin(set(shape[reference["groups"].apply(lambda g: "base" in g)])).to_numpy()
    pinned, free = np.flatnonzero(base), np.flatnonzero(~base)
    groups = pd.factorize(shape.iloc[free])[0]
    split = GroupShuffleSplit(splits, test_size=0.5, random_state=seed)
    return [
        (np.concatenate([pinned, free[train]]), free[test])
        for train, test in split.split(free, groups=groups)
    ]


def split_errors(
    hw: HardwareConfig, reference: pd.DataFrame, splits: int = 20, seed: int = 0
) -> pd.DataFrame:
    """Fit on the rows of some layer shapes, price every row (`shape_splits`), `splits` times.

    Returns one row per (split, rows: fitted | held-out, metric, reference row): the split's
    number, `row` (the reference row's index), and the `model` and `reference` values.
    """
    table = []
    for split, (train, test) in enumerate(shape_splits(reference, splits, seed)):
        model = predict(fit(hw, reference.iloc[train]), reference)
        for rows, index in (("fitted", train), ("held-out", test)):
            for metric in (*METRICS, "leakage_pj"):
                table.append(
                    pd.DataFrame(
                        {
                            "split": split,
                            "rows": rows,
                            "metric": metric,
                            "row": index,
                            "model": model[metric].to_numpy()[index],
                            "reference": reference[COMPARED[metric]].to_numpy()[index],
                        }
                    )
                )
    return pd.concat(table, ignore_index=True)


def split_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """One row per (rows: fitted | held-out, metric) of `split_errors`: the median and
    90th-percentile absolute percentage error over all (split, row) pairs, and the median over
    splits of the Spearman rank correlation within that split's rows."""
    table = []
    for (rows, metric), part in errors.groupby(["rows", "metric"], sort=False):
        ape = np.abs(part.model.to_numpy() / part.reference.to_numpy() - 1)
        rho = [spearmanr(s.model, s.reference).statistic for _, s in part.groupby("split")]
        table.append(
            {
                "rows": rows,
                "metric": metric,
                "median_ape_pct": 100 * float(np.median(ape)),
                "p90_ape_pct": 100 * float(np.quantile(ape, 0.9)),
                "spearman": float(np.median(rho)),
            }
        )
    return pd.DataFrame(table)


def held_out_by_shape(errors: pd.DataFrame, reference: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The held-out rows of `split_errors` for one metric, per layer shape: its tiles and weight
    duplication (the reference's), how many (split, row) pairs held it out, and the median,
    lowest and highest signed error model / reference - 1, in %."""
    part = errors[(errors.rows == "held-out") & (errors.metric == metric)]
    rows = reference.loc[part.row.to_numpy()]
    signed = 100 * (part.model.to_numpy() / part.reference.to_numpy() - 1)
    frame = pd.DataFrame(
        {
            "shape": [
                f"{a} -> {b}, F = {f}, k = {k}"
                for a, b, f, k in rows[list(SHAPE_COLUMNS)].itertuples(index=False)
            ],
            "tiles": rows.tiles_real.to_numpy(),
            "duplication": rows.speedup_real.to_numpy(),
            "error_pct": signed,
        }
    )
    table = frame.groupby(["shape", "tiles", "duplication"], sort=False).error_pct.agg(
        held_out="count", median_pct="median", min_pct="min", max_pct="max"
    )
    return table.reset_index()


def all_rows_summary(hw: HardwareConfig, reference: pd.DataFrame) -> pd.DataFrame:
    """Errors of the constants in `hw` on every reference row (one row per metric)."""
    model = predict(hw, reference)
    return pd.DataFrame(
        [
            {"metric": metric}
            | _summary(
                model[metric].to_numpy() / reference[COMPARED[metric]].to_numpy() - 1,
                model[metric].to_numpy(),
                reference[COMPARED[metric]].to_numpy(),
            )
            for metric in (*METRICS, "leakage_pj")
        ]
    )


def energy_parts_summary(hw: HardwareConfig, reference: pd.DataFrame) -> pd.DataFrame:
    """Errors of the constants in `hw` on every reference row, per part of `ENERGY_PARTS` (one
    row per part, the reference's figure for that part named), and the part's median share of
    the reference's dynamic energy in %."""
    model = predict(hw, reference)
    table = []
    for name, (_, plus, minus) in ENERGY_PARTS.items():
        out, ref = _target(model, reference, name)
        table.append(
            {"part": name, "reference": " - ".join([" + ".join(plus), *minus])}
            | _summary(out / ref - 1, out, ref)
            | {"share_pct": 100 * float(np.median(ref / reference["energy_pj"].to_numpy()))}
        )
    return pd.DataFrame(table)


def _direction(step: np.ndarray) -> np.ndarray:
    return np.where(np.abs(step) <= FLAT, 0, np.sign(step))


def sweep_series(reference: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Every one-factor series of the reference, as (name, rows sorted by the varied gene): the
    m, ADC-bit and input-bit sweeps per ADC type, the grid's m and ADC-bit series, and ADC type
    at every peripheral setting that has both."""
    series = []
    for sweep, gene in SWEEPS.items():
        rows = reference[reference["groups"].apply(lambda g, s=sweep: s in g)]
        for adc, part in rows.groupby("adc_type"):
            series.append((f"{sweep} {adc}", part.sort_values(gene)))
    grid = reference[reference["groups"].apply(lambda g: "grid" in g)]
    for (adc, bits), part in grid.groupby(["adc_type", "adc_bits"]):
        series.append((f"grid m {adc} {bits}b", part.sort_values("col_share")))
    for (adc, m), part in grid.groupby(["adc_type", "col_share"]):
        series.append((f"grid adc_bits {adc} m={m}", part.sort_values("adc_bits")))
    return series


def trend_check(hw: HardwareConfig, reference: pd.DataFrame) -> pd.DataFrame:
    """Every step of every one-factor series: reference and model relative steps per metric,
    and whether they agree (same direction, or either within +-`FLAT`)."""
    model = predict(hw, reference)
    table = []
    for name, part in sweep_series(reference):
        index = part.index.to_numpy()
        for metric in METRICS:
            ref = reference.loc[index, COMPARED[metric]].to_numpy()
            out = model.loc[index, metric].to_numpy()
            ref_step = ref[1:] / ref[:-1] - 1
            out_step = out[1:] / out[:-1] - 1
            rd, od = _direction(ref_step), _direction(out_step)
            for i in range(len(ref_step)):
                table.append(
                    {
                        "series": name,
                        "metric": metric,
                        "step": i + 1,
                        "ref_step_pct": 100 * ref_step[i],
                        "model_step_pct": 100 * out_step[i],
                        "agrees": bool(rd[i] == od[i] or rd[i] == 0 or od[i] == 0),
                    }
                )
    return pd.DataFrame(table)

"""Fit the cost model's calibrated constants to the NeuroSim figures of the facts file.

Run: python bench/calibrate_hardware.py

It prints the fitted constants (the values marked "fit" in conf/hardware/xpert_rram_32nm.yaml)
and, for the constants currently in that file, the model against every reference figure.
Every fitted group is linear in its constants once the groups before it are fixed, so each step
is a small relative least-squares solve:
  1. area: per-crossbar buffer + interconnect overhead and per-ADC area (flash, SAR) <- the ten
     per-tile areas;
  2. cycles: shift-add cycles per read and data-movement bandwidth <- test-layer cycles at
     2/4/8-bit inputs and the VGG16 latencies divided by their clock periods;
  3. sensing path: row-drive delay from the latency minimum at m ~ 11 (facts: lowest at m = 8-16),
     then bit-line, mux and flash delays from the m = 8 clock periods;
  4. energy: ADC energy per conversion <- test-layer ADC energy per input bit; buffer energy per
     bit and leakage power per tile <- VGG16 energies (flash and SAR). The SAR run is 4x longer
     than the flash run but its ADCs use only 1.4x the energy: leakage explains the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import yaml

from xpert_evo.hardware.config import CONF_DIR, HardwareConfig
from xpert_evo.hardware.model import CostModel
from xpert_evo.hardware.reference import (
    CLOCK_PERIOD_NS_M8,
    LATENCY_MIN_COL_SHARE,
    TEST_LAYER_ADC_PJ_PER_INPUT_BIT,
    TEST_LAYER_CYCLES,
    TEST_LAYER_INDEX,
    TILE_AREA_MM2,
    VGG16,
    VGG16_N_LAYERS,
    reference_genome,
)
from xpert_evo.hardware.validation import compare_to_reference
from xpert_evo.space.backbone import Backbone

BUFFER_SHARE = 0.6  # assumption: split of the per-crossbar overhead area, buffers vs interconnect
BITLINE_SHARE = 0.75  # assumption: split of the non-ADC, non-drive sensing path, bit line vs mux
START = {  # any positive start values: every fit below is exact in its own constants
    "flash_area_per_level_um2": 1.0,
    "sar_area_per_transistor_um2": 1.0,
    "buffer_area_per_xbar_um2": 1.0,
    "interconnect_area_per_xbar_um2": 1.0,
    "bitline_delay_ns": 0.1,
    "mux_delay_ns": 0.05,
    "drive_delay_per_col_ns": 0.01,
    "flash_delay_ns": 1.0,
    "shift_add_cycles_per_pixel_bit": 1.0,
    "buffer_bits_per_cycle": 10.0,
    "interconnect_bits_per_cycle": 10.0,
    "flash_energy_6b_pj": 1.0,
    "sar_energy_6b_pj": 1.0,
    "buffer_energy_per_bit_pj": 1.0,
    "leakage_mw_per_tile": 0.01,
}


def linear_fit(
    params: dict, keys: list[str], predict: Callable[[dict], np.ndarray], target: np.ndarray
) -> dict:
    """Set `keys` so that `predict` (affine in them) best matches `target` in relative error."""
    zero = predict({**params, **{k: 1e-12 for k in keys}})
    columns = [predict({**params, **{k: 1e-12 for k in keys}, k: 1.0}) - zero for k in keys]
    design = np.stack(columns, axis=1) / target[:, None]
    solution, *_ = np.linalg.lstsq(design, 1.0 - zero / target, rcond=None)
    return {**params, **dict(zip(keys, solution.tolist(), strict=True))}


def model_of(params: dict) -> CostModel:
    """Cost model on the CIFAR-10 backbone with these hardware constants."""
    return CostModel(HardwareConfig.from_config(params), Backbone())


def tile_areas(params: dict) -> np.ndarray:
    """Per-tile area (mm2) of the test layer at every (ADC type, m) of the reference table."""
    out = []
    for adc, table in TILE_AREA_MM2.items():
        for m in table:
            rep = model_of(params).evaluate(reference_genome(adc, m))
            layer = rep.layer_area_mm2[0, TEST_LAYER_INDEX].sum()
            out.append(layer / rep.tiles[0, TEST_LAYER_INDEX])
    return np.array(out)


def cycles(params: dict) -> np.ndarray:
    """Test-layer cycles at 2/4/8-bit inputs, then VGG16 (12 layers) cycles for flash and SAR."""
    out = []
    for p in TEST_LAYER_CYCLES:
        rep = model_of(params).evaluate(reference_genome("flash", 8, p))
        out.append(rep.layer_latency_ns[0, TEST_LAYER_INDEX].sum() / rep.clock_period_ns[0])
    for adc in VGG16:
        rep = model_of(params).evaluate(reference_genome(adc))
        out.append(rep.layer_latency_ns[0, :VGG16_N_LAYERS].sum() / rep.clock_period_ns[0])
    return np.array(out)


def vgg16_energy(params: dict) -> np.ndarray:
    """VGG16 (12 layers) energy per image for flash and SAR, pJ."""
    return np.array(
        [
            model_of(params)
            .evaluate(reference_genome(adc))
            .layer_energy_pj[0, :VGG16_N_LAYERS]
            .sum()
            for adc in VGG16
        ]
    )


def fit() -> dict:
    """All calibrated constants, starting from the assumed ones in the YAML file."""
    with (CONF_DIR / "xpert_rram_32nm.yaml").open() as fh:
        params = {k: START.get(k, v) for k, v in yaml.safe_load(fh).items()}

    # 1. area: overhead per crossbar (split by assumption) and per-ADC area of each type
    params = linear_fit(
        {**params, "interconnect_area_per_xbar_um2": 1e-12},
        ["buffer_area_per_xbar_um2", "flash_area_per_level_um2", "sar_area_per_transistor_um2"],
        tile_areas,
        np.array([v for table in TILE_AREA_MM2.values() for v in table.values()]),
    )
    overhead = params["buffer_area_per_xbar_um2"]
    params["buffer_area_per_xbar_um2"] = BUFFER_SHARE * overhead
    params["interconnect_area_per_xbar_um2"] = (1 - BUFFER_SHARE) * overhead

    # 2. cycles: shift-add cycles per read, input (buffer) and output (interconnect) bandwidth
    target = np.array(
        list(TEST_LAYER_CYCLES.values())
        + [VGG16[adc]["latency_ns"] / CLOCK_PERIOD_NS_M8[adc] for adc in VGG16]
    )

    inverse = {"inv_in": "buffer_bits_per_cycle", "inv_out": "interconnect_bits_per_cycle"}

    def cycles_of(q: dict) -> np.ndarray:
        q = dict(q)
        bandwidths = {key: 1.0 / q.pop(inv) for inv, key in inverse.items()}
        return cycles({**q, **bandwidths})

    fitted = linear_fit(
        {**params, **dict.fromkeys(inverse, 0.1)},
        ["shift_add_cycles_per_pixel_bit", *inverse],
        cycles_of,
        target,
    )
    bandwidths = {key: 1.0 / fitted.pop(inv) for inv, key in inverse.items()}
    params = {**fitted, **bandwidths}

    # 3. sensing path. Latency(m) ~ (C0 + S m)(t0 + t_d X/m) is lowest at m*^2 = C0 X t_d / (S t0)
    rep = model_of(params).evaluate(reference_genome("flash", 8, 4))
    m_ref = 8
    period = rep.clock_period_ns[0]
    lat = rep.layer_latency_ns[0, TEST_LAYER_INDEX]
    total_cycles = lat.sum() / period
    sensing_cycles = (lat[0] + lat[1] + lat[2]) / period  # array + adc + mux shares of sensing
    per_m = sensing_cycles / m_ref
    c0 = total_cycles - sensing_cycles
    m_star = float(np.sqrt(np.prod(LATENCY_MIN_COL_SHARE)))
    cols = params["xbar_cols"]
    ratio = m_star**2 * per_m / (c0 * cols)  # t_d / t0
    path_flash = CLOCK_PERIOD_NS_M8["flash"] / params["clock_margin"]
    path_sar = CLOCK_PERIOD_NS_M8["sar"] / params["clock_margin"]
    t0_flash = path_flash / (1 + ratio * cols / m_ref)
    drive = ratio * t0_flash
    sar_adc = (6 + 1) * params["sar_delay_per_cycle_ns"]
    rest = path_sar - sar_adc - drive * cols / m_ref  # bit line + mux
    params["drive_delay_per_col_ns"] = drive
    params["bitline_delay_ns"] = BITLINE_SHARE * rest
    params["mux_delay_ns"] = (1 - BITLINE_SHARE) * rest
    params["flash_delay_ns"] = path_flash - rest - drive * cols / m_ref

    # 4. energy: ADC per conversion from the test layer, then buffer energy and leakage
    rep = model_of(params).evaluate(reference_genome("flash", 8, 1))
    conversions = rep.layer_energy_pj[0, TEST_LAYER_INDEX, 1] / params["flash_energy_6b_pj"]
    params["flash_energy_6b_pj"] = TEST_LAYER_ADC_PJ_PER_INPUT_BIT["flash"] / conversions
    params["sar_energy_6b_pj"] = TEST_LAYER_ADC_PJ_PER_INPUT_BIT["sar"] / conversions
    return linear_fit(
        params,
        ["buffer_energy_per_bit_pj", "leakage_mw_per_tile"],
        vgg16_energy,
        np.array([VGG16[adc]["energy_pj"] for adc in VGG16]),
    )


def main() -> None:
    """Print the fitted constants and the current model against the reference figures."""
    fitted = fit()
    print("# fitted constants (the 'fit' lines of conf/hardware/xpert_rram_32nm.yaml)")
    for key in START:
        print(f"{key}: {fitted[key]:.6g}")
    print()
    print("# model (constants as in conf/hardware/xpert_rram_32nm.yaml) against NeuroSim")
    print(compare_to_reference().to_string(index=False))


if __name__ == "__main__":
    main()

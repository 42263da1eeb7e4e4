"""NeuroSim reference data for the cost model: the per-layer RRAM simulations and the designs
whose figures docs/cost_model.md re-costs.

`neurosim-rram-layers.csv` (described in `neurosim-rram-layers.md`, both in the shared reference
folder) holds 54 single-layer NeuroSim V1.3 (XPertSim) runs of XPert's RRAM configuration. Each
model output is compared against one reference column (`COMPARED`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from xpert_evo.hardware.layers import LAYER_COLUMNS
from xpert_evo.space.backbone import VGG16_CHANNELS

REFERENCE_DIR = Path(
    os.environ.get(
        "XPERT_EVO_REFERENCE", Path(__file__).resolve().parents[3] / "shared" / "reference"
    )
)
"""Folder of the shared reference files (XPERT_EVO_REFERENCE overrides it)."""

LAYERS_CSV = REFERENCE_DIR / "neurosim-rram-layers.csv"

COMPARED: dict[str, str] = {
    "area_mm2": "real_layer_area_mm2",
    "energy_pj": "energy_pj",
    "latency_ns": "latency_ns",
    "clock_ns": "clock_ns",
    "leakage_pj": "leakage_energy_real_tiles_pj",
}
"""Model output -> the reference column it is compared with: the real layer's own tiles (not the
companion layer's, not the chip-level overhead), its dynamic read energy, its latency, the clock
period, and its own tiles' leakage power x its latency."""

METRICS: tuple[str, ...] = ("area_mm2", "energy_pj", "latency_ns", "clock_ns")
"""The metrics with acceptance targets (leakage is reported too)."""

SWEEPS: dict[str, str] = {
    "m_sweep": "col_share",
    "adcbits_sweep": "adc_bits",
    "inbits_sweep": "input_bits",
}
"""One-factor sweeps of the reference (around the base layer) and the gene each one varies."""

GENE_COLUMNS: tuple[str, ...] = LAYER_COLUMNS
"""The reference file's gene columns: exactly a per-layer cost table's."""

PUBLISHED: dict[str, list[int]] = {
    "VGG16": list(VGG16_CHANNELS),
    "XPertNet_50": [64, 128, 64, 512, 512, 128, 128, 64, 512, 128, 64, 64, 64],
    "XPert 80mm2_model": [256, 512, 512, 128, 256, 256, 256, 256, 64, 256, 128, 128, 512],
}
"""Channel lists: VGG16 and the models of XPert's public repository (13 convs, same pools)."""


def load_layers(path: str | Path = LAYERS_CSV) -> pd.DataFrame:
    """The per-layer reference rows (status ok only), with a `groups` list column."""
    frame = pd.read_csv(path)
    frame = frame[frame["status"] == "ok"].reset_index(drop=True)
    frame["groups"] = frame["groups"].str.split(";")
    return frame

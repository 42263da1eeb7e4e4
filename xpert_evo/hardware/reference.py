"""NeuroSim V1.3 reference figures for XPert's hardware, used to calibrate and test the cost model.

All figures are from `shared/reference/imc-cost-model-facts.md` (NeuroSim runs of the
configuration in `conf/hardware/xpert_rram_32nm.yaml`); they carry about +-8 % run-to-run noise.
"""

from __future__ import annotations

from xpert_evo.space.backbone import VGG16_CHANNELS
from xpert_evo.space.genome import Genomes

TEST_LAYER_INDEX = 3
"""The facts' test layer (128 -> 128 channels, 3x3, 16x16 output) is VGG16's conv4 on CIFAR-10."""

TILE_AREA_MM2: dict[str, dict[int, float]] = {
    "flash": {2: 2.832, 4: 1.587, 8: 1.014, 16: 0.691, 32: 0.596},
    "sar": {2: 1.240, 4: 0.791, 8: 0.570, 16: 0.469, 32: 0.439},
}
"""Per-tile area of the test layer at 4-bit input and 6-bit ADC, by ADC type and column sharing."""

TEST_LAYER_ADC_PJ_PER_INPUT_BIT: dict[str, float] = {"flash": 0.892e6, "sar": 1.253e6}
"""ADC energy of the test layer per input bit (exactly linear in input bits), m = 8."""

TEST_LAYER_CYCLES: dict[int, float] = {2: 62e3, 4: 74e3, 8: 105e3}
"""Test-layer latency in clock cycles by input bits, m = 8, the same for flash and SAR."""

CLOCK_PERIOD_NS_M8: dict[str, float] = {"flash": 2.45, "sar": 10.3}
"""Chip clock period at m = 8, 6-bit ADC."""

LATENCY_MIN_COL_SHARE = (8, 16)
"""NeuroSim's latency is lowest for m in this range (slow clock at small m)."""

VGG16_N_LAYERS = 12
"""The whole-network figures cover VGG16's first 12 conv layers."""

VGG16: dict[str, dict[str, float]] = {
    "flash": {"energy_pj": 4.96e7, "latency_ns": 1.51e6, "tops_per_w": 31.2},
    "sar": {"energy_pj": 9.05e7, "latency_ns": 6.22e6, "tops_per_w": 17.1},
}
"""VGG16 on CIFAR-10, every layer m = 8, 4-bit inputs, 6-bit ADC; energy and latency per image."""


def reference_genome(adc_type: str, col_share: int = 8, input_bits: int = 4) -> Genomes:
    """The homogeneous VGG16 genome NeuroSim was run on (6-bit ADC)."""
    return Genomes.uniform(VGG16_CHANNELS, col_share, adc_type, 6, input_bits)

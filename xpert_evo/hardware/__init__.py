"""Analytic IMC cost model: area, energy, latency and EDAP of whole genome populations at once."""

from xpert_evo.hardware.config import HardwareConfig, load_hardware_config
from xpert_evo.hardware.export import neurosim_rows, write_neurosim_csv
from xpert_evo.hardware.model import COMPONENTS, CostModel, CostReport

__all__ = [
    "COMPONENTS",
    "CostModel",
    "CostReport",
    "HardwareConfig",
    "load_hardware_config",
    "neurosim_rows",
    "write_neurosim_csv",
]

"""Fixed hardware parameters of the IMC chip, read from a Hydra config in `conf/hardware/`.

Every field carries its unit in its name. Where each value comes from (paper, datasheet-style
equation, or a fit to named reference data) is written next to it in the YAML file; the fitted
values are reproduced by `bench/calibrate_hardware.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "hardware"


class HardwareConfigError(ValueError):
    """A hardware config key that is unknown, missing or out of range."""


@dataclass(frozen=True)
class HardwareConfig:
    """Fixed (not searched) parameters of the crossbar chip; conf/hardware/*.yaml gives sources."""

    name: str
    # --- array organisation
    xbar_rows: int
    xbar_cols: int
    cell_bits: int
    weight_bits: int
    xbars_per_pe: int
    pes_per_tile: int
    activation_bits: int
    # --- device and technology
    feature_nm: float
    r_on_ohm: float
    r_off_ohm: float
    read_voltage_v: float
    input_activity: float
    cell_area_f2: float
    # --- area
    row_driver_area_um2: float
    mux_area_per_col_um2: float
    flash_area_per_level_um2: float
    sar_area_per_transistor_um2: float
    shift_add_area_per_bit_um2: float
    buffer_area_per_xbar_um2: float
    interconnect_area_per_xbar_um2: float
    # --- timing
    max_clock_ghz: float
    clock_margin: float
    bitline_delay_ns: float
    mux_delay_ns: float
    drive_delay_per_col_ns: float
    flash_delay_ns: float
    sar_delay_per_cycle_ns: float
    shift_add_cycles_per_pixel_bit: float
    buffer_bits_per_cycle: float
    interconnect_bits_per_cycle: float
    # --- energy
    flash_energy_6b_pj: float
    sar_energy_6b_pj: float
    mux_energy_pj: float
    shift_add_energy_per_bit_pj: float
    buffer_energy_per_bit_pj: float
    wire_energy_per_bit_mm_pj: float
    leakage_mw_per_tile: float

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "name" and not value > 0 and f.name != "leakage_mw_per_tile":
                raise HardwareConfigError(f"hardware.{f.name}={value!r} must be > 0")
        if self.leakage_mw_per_tile < 0:
            raise HardwareConfigError("hardware.leakage_mw_per_tile must be >= 0")
        if not 0 < self.input_activity <= 1:
            raise HardwareConfigError("hardware.input_activity must be in (0, 1]")
        if self.cell_bits > self.weight_bits:
            raise HardwareConfigError(
                f"hardware.cell_bits={self.cell_bits} exceeds "
                f"hardware.weight_bits={self.weight_bits}"
            )

    @property
    def xbars_per_tile(self) -> int:
        """Crossbars in one tile."""
        return self.xbars_per_pe * self.pes_per_tile

    @property
    def cells_per_weight(self) -> int:
        """Cells (columns) that hold one weight: ceil(weight_bits / cell_bits)."""
        return -(-self.weight_bits // self.cell_bits)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> HardwareConfig:
        """Build from a Hydra/OmegaConf node or a plain dict; unknown or missing keys raise."""
        cfg = dict(cfg)
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(cfg) - set(allowed))
        if unknown:
            raise HardwareConfigError(
                f"unknown hardware config key(s) {unknown}; allowed keys are {allowed}"
            )
        missing = [k for k in allowed if k not in cfg]
        if missing:
            raise HardwareConfigError(f"hardware config is missing key(s) {missing}")
        types = {f.name: f.type for f in fields(cls)}
        converted: dict[str, Any] = {}
        for key, value in cfg.items():
            kind = {"int": int, "float": float, "str": str}[types[key]]
            try:
                converted[key] = kind(value)
            except (TypeError, ValueError) as err:
                raise HardwareConfigError(
                    f"hardware.{key}={value!r} is not a valid {types[key]}"
                ) from err
        return cls(**converted)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (the inverse of `from_config`)."""
        return asdict(self)


def load_hardware_config(name_or_path: str | Path = "xpert_rram_32nm") -> HardwareConfig:
    """Load `conf/hardware/<name>.yaml` (or a YAML file path) into a `HardwareConfig`."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CONF_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
        raise HardwareConfigError(f"no hardware config at {path}; known configs are {known}")
    with path.open() as fh:
        return HardwareConfig.from_config(yaml.safe_load(fh))

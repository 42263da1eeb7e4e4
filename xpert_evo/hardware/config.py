"""Fixed hardware parameters of the IMC chip, read from a Hydra config in `conf/hardware/`.

Every field carries its unit in its name. Where each value comes from (paper, datasheet-style
equation, or a fit to named reference data) is written next to it in the YAML file; the fitted
values live in the artifact its ``fitted`` key names (`xpert_evo.schema.fitted`), written by
`bench/calibrate/calibrate_hardware.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from xpert_evo.config import ConfigError, conf_dir, typed

CONF_DIR = conf_dir("hardware")
"""Where the named hardware configs are (`xpert_evo.config.conf_dir`)."""


class HardwareConfigError(ConfigError):
    """A hardware config key that is unknown, missing or out of range."""


CHOICES: dict[str, tuple[str, ...]] = {
    "weight_encoding": ("differential", "offset"),
    "clocking": ("layer", "chip"),
}
"""Allowed values of the hardware's string options (docs/cost_model.md explains them)."""

POSITIVE: tuple[str, ...] = (
    "xbar_rows",
    "xbar_cols",
    "cell_bits",
    "weight_bits",
    "xbars_per_pe",
    "pes_per_tile",
    "feature_nm",
    "cell_area_f2",
    "max_clock_ghz",
    "clock_margin",
)
"""Keys that must be strictly positive (the fitted constants may be 0)."""


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
    weight_encoding: str
    clocking: str
    # --- technology
    feature_nm: float
    cell_area_f2: float
    # --- area
    flash_area_per_level_um2: float
    flash_area_per_level_bit_um2: float
    flash_area_per_level_share_um2: float
    sar_area_per_transistor_um2: float
    accum_area_per_adc_um2: float
    accum_area_per_adc_bit_um2: float
    decoder_area_um2: float
    tile_periphery_area_um2: float
    # --- timing
    max_clock_ghz: float
    clock_margin: float
    sense_delay_ns: float
    select_delay_per_col_ns: float
    select_delay_per_col2_ns: float
    decoder_delay_per_stage_ns: float
    flash_delay_ns: float
    flash_delay_per_level_ns: float
    sar_delay_per_cycle_ns: float
    accum_cycles_per_tile: float
    accum_cycles_per_input_bit: float
    input_cycles_per_bit: float
    tile_input_cycles_per_bit: float
    tile_output_cycles_per_value: float
    # --- energy
    flash_energy_per_level_pj: float
    sar_energy_per_cycle_pj: float
    sar_energy_per_cycle_bit_pj: float
    flash_current_energy_pj: float
    sar_current_energy_per_cycle_pj: float
    wordline_energy_pj: float
    mux_energy_pj: float
    accum_energy_pj: float
    accum_energy_per_bit_pj: float
    partial_sum_extra_bits: int
    buffer_energy_per_input_bit_pj: float
    buffer_energy_per_output_bit_pj: float
    wire_energy_per_input_bit_mm_pj: float
    wire_energy_per_output_bit_mm_pj: float
    # --- leakage
    leakage_per_tile_uw: float
    flash_leakage_per_level_uw: float
    sar_leakage_uw: float
    # --- where the fitted constants were read from (`xpert_evo.schema.fitted`); None: inline
    fitted: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and not value >= 0:
                raise HardwareConfigError(f"hardware.{f.name}={value!r} must be >= 0")
        for key in POSITIVE:
            if not getattr(self, key) > 0:
                raise HardwareConfigError(f"hardware.{key}={getattr(self, key)!r} must be > 0")
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise HardwareConfigError(
                    f"hardware.{key}={getattr(self, key)!r} is not one of {list(allowed)}"
                )
        if self.cell_bits > self.weight_bits:
            raise HardwareConfigError(
                f"hardware.cell_bits={self.cell_bits} exceeds "
                f"hardware.weight_bits={self.weight_bits}"
            )
        side = round(self.xbars_per_tile**0.5)
        if side * side != self.xbars_per_tile:
            raise HardwareConfigError(
                f"hardware.xbars_per_pe x hardware.pes_per_tile = {self.xbars_per_tile} must be "
                "a square number (a tile is T x T crossbars, NeuroSim's floorplan)"
            )

    @property
    def tile_side_xbars(self) -> int:
        """Crossbars along one side of a (square) tile: sqrt(crossbars per tile)."""
        return round(self.xbars_per_tile**0.5)

    @property
    def columns_per_weight(self) -> int:
        """Columns one weight occupies: its cells, twice for a differential (signed pair)
        encoding."""
        return self.cells_per_weight * (2 if self.weight_encoding == "differential" else 1)

    @property
    def col_share_options(self) -> tuple[int, ...]:
        """Column-sharing ratios m this crossbar can build: the powers of two that divide
        `xbar_cols` (a column mux of m inputs has log2(m) decoder stages and every ADC serves m
        whole columns)."""
        return tuple(
            m for m in range(1, self.xbar_cols + 1) if self.xbar_cols % m == 0 and m & (m - 1) == 0
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
        """Build from a Hydra/OmegaConf node or a plain dict, checked by OmegaConf against the
        fields (`xpert_evo.config.typed`): an unknown, missing or mistyped key raises
        `HardwareConfigError` naming it."""
        return typed(cls, cfg, "hardware", HardwareConfigError)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (the inverse of `from_config`)."""
        return asdict(self)


def load_hardware_config(name_or_path: str | Path = "xpert_rram_32nm") -> HardwareConfig:
    """The hardware config ``conf/hardware/<name>.yaml`` (or a YAML file of its own), composed by
    Hydra (`xpert_evo.schema.compose`: its schema, the fitted constants of its artifact).

    Raises:
        HardwareConfigError: no such config (the message lists the shipped ones), or a bad key.
    """
    from xpert_evo.schema import compose, group_node  # the schema types this module's class

    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CONF_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
        raise HardwareConfigError(f"no hardware config at {path}; known configs are {known}")
    try:
        node = (group_node("hardware", path.stem) if path.parent == CONF_DIR
                else compose(path.stem, config_dir=path.parent.resolve()))
    except ConfigError as err:
        raise HardwareConfigError(str(err)) from err
    return HardwareConfig.from_config(node)

"""Vectorised analytic cost model of a layer-by-layer RRAM crossbar accelerator.

Arrays are shaped (N genomes, L + 1 layers): the backbone's conv layers, then the classifier,
which is mapped like a 1x1 convolution on a 1x1 feature map and uses the peripheral genes of the
last conv layer. Per-layer, per-component figures have a trailing axis over `COMPONENTS`; they
add up exactly to the per-genome totals.

Mapping (facts file, "Mapping a layer onto crossbars", X = crossbar size):
    rows = Cin K^2, cols = Cout ceil(weight_bits / cell_bits)
    crossbars = ceil(rows / X_rows) ceil(cols / X_cols)
    tiles = ceil(crossbars / crossbars_per_tile)
    duplication d = tiles crossbars_per_tile / crossbars (spare crossbars hold weight copies)
Every output pixel needs p bit-serial reads; with column sharing m a read takes m sensing cycles.

Clock: synchronous; period = clock_margin x the slowest sensing path over all layers, where
    path = t_bitline + t_mux + t_drive X_cols / m + t_ADC
t_ADC is a fixed column-limited delay for flash, (bits + 1) cycles for SAR. The drive term models
the row driver charging the X_cols / m columns that are sensed at once.

Latency per layer (ns) = period x cycles, cycles = (pixels / d) p m + pixels p c_shift_add
    + bits_in / buffer_bandwidth + bits_out / interconnect_bandwidth,
    bits_in = pixels Cin p (input feature map fed from the buffers, each pixel once),
    bits_out = pixels Cout activation_bits (outputs collected over the interconnect).
The shift-add/accumulation term is not divided by d: the tile's accumulation path handles every
output pixel's partial sums in turn, whichever weight copy produced them (the NeuroSim test-layer
and VGG16 cycle counts are consistent only with that).

Energy per layer (pJ): conversions = pixels p ceil(rows / X_rows) cols (every column is converted
once per read, whatever m is); ADC, mux and shift-add energies are per conversion (a shift-add
accumulates one ADC-bit-wide result); the array dissipates V^2 G_mean t_sense per active cell;
buffers take energy per bit in or out; interconnect per bit-mm over the chip's side length;
leakage = leakage power per tile x all tiles of the chip x layer latency (every tile leaks while
any layer runs; the buffers and digital periphery dominate it).

Area per layer (mm2): every crossbar of the layer's tiles is built with its periphery
(X_cols / m ADCs and shift-adders, X_cols mux inputs, X_rows row drivers) plus per-crossbar
buffer and interconnect area.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import product

import numpy as np
import pandas as pd

from xpert_evo.hardware.config import HardwareConfig
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes

COMPONENTS: tuple[str, ...] = (
    "array",
    "adc",
    "mux",
    "shift_add",
    "buffer",
    "interconnect",
    "leakage",
)
"""Breakdown components, the last axis of every per-layer figure."""


# NeuroSim V1.3 SAR ADC area: A_nmos (269 + (b - 1) 109) + A_pmos (209 + (b - 1) 73) (facts file);
# with A_nmos = A_pmos that is (478 + 182 (b - 1)) transistor areas.
_SAR_TRANSISTORS_BASE = 269 + 209
_SAR_TRANSISTORS_PER_BIT = 109 + 73

MAX_ADC_BITS = 16
"""Largest ADC resolution the model tabulates."""

CHUNK = 4096
"""Genomes per vectorised pass: (CHUNK, L + 1) float32 temporaries fit in a core's L2 cache."""

DTYPE = np.float32
"""Working precision: float32 halves memory traffic; relative rounding ~1e-7 is far below the
model's calibration error."""


def _sar_power_uw(bits: np.ndarray) -> np.ndarray:
    """NeuroSim V1.3 SAR ADC power in uW (facts file; column-resistance term is < 0.1 uW)."""
    return 1.1294 * bits + 8.8998


@dataclass(frozen=True)
class CostReport:
    """Cost of N genomes. Totals have shape (N,); per-layer breakdowns (N, L + 1, len(COMPONENTS)).

    Attributes:
        area_mm2: chip area, sum of the layers' tile areas.
        energy_pj: energy of one inference (one input image).
        latency_ns: latency of one inference, layers executed one after another.
        edap: energy x delay x area in pJ ns mm2.
        tops_per_w: tera-operations per second per watt, ops / energy (2 ops per MAC).
        tops_per_mm2: tera-operations per second per mm2, ops / latency / area.
        clock_period_ns: the synchronous chip clock.
        ops: operations per inference (2 x MACs).
        tiles, crossbars: (N, L + 1) tiles allocated and crossbars holding weights, per layer.
        duplication: (N, L + 1) weight copies that run in parallel (spare crossbars of the tiles).
        layer_area_mm2, layer_energy_pj, layer_latency_ns: (N, L + 1, len(COMPONENTS)) breakdowns,
            None when evaluated with breakdown=False.
    """

    area_mm2: np.ndarray
    energy_pj: np.ndarray
    latency_ns: np.ndarray
    edap: np.ndarray
    tops_per_w: np.ndarray
    tops_per_mm2: np.ndarray
    clock_period_ns: np.ndarray
    ops: np.ndarray
    tiles: np.ndarray
    crossbars: np.ndarray
    duplication: np.ndarray
    layer_area_mm2: np.ndarray | None = None
    layer_energy_pj: np.ndarray | None = None
    layer_latency_ns: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.area_mm2)

    def __getitem__(self, index: int | slice | np.ndarray) -> CostReport:
        """Select genomes; an integer keeps a batch of one."""
        if isinstance(index, int | np.integer):
            index = slice(int(index), int(index) + 1)
        return CostReport(
            **{
                f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                for f in fields(self)
            }
        )

    @classmethod
    def concat(cls, parts: Sequence[CostReport]) -> CostReport:
        """Concatenate reports along the genome axis."""
        return cls(
            **{
                f.name: None
                if getattr(parts[0], f.name) is None
                else np.concatenate([getattr(r, f.name) for r in parts])
                for f in fields(cls)
            }
        )

    def totals_frame(self) -> pd.DataFrame:
        """One row per genome with the per-genome totals."""
        return pd.DataFrame(
            {
                "area_mm2": self.area_mm2,
                "energy_pj": self.energy_pj,
                "latency_ns": self.latency_ns,
                "edap": self.edap,
                "tops_per_w": self.tops_per_w,
                "tops_per_mm2": self.tops_per_mm2,
                "clock_period_ns": self.clock_period_ns,
            }
        )

    def layer_frame(self, genome: int = 0) -> pd.DataFrame:
        """Per-layer, per-component table of one genome (rows: layers; units in column names)."""
        if self.layer_area_mm2 is None:
            raise ValueError("this report was evaluated with breakdown=False")
        n_layers = self.tiles.shape[1]
        names = [f"conv{i + 1}" for i in range(n_layers - 1)] + ["classifier"]
        table = {"layer": names, "tiles": self.tiles[genome], "crossbars": self.crossbars[genome]}
        table["duplication"] = self.duplication[genome]
        for quantity, unit, values in (
            ("area", "mm2", self.layer_area_mm2),
            ("energy", "pj", self.layer_energy_pj),
            ("latency", "ns", self.layer_latency_ns),
        ):
            for c, comp in enumerate(COMPONENTS):
                table[f"{quantity}_{comp}_{unit}"] = values[genome, :, c]
            table[f"{quantity}_{unit}"] = values[genome].sum(axis=-1)
        return pd.DataFrame(table)


class CostModel:
    """Costs whole populations of genomes on one hardware configuration and backbone."""

    def __init__(self, hw: HardwareConfig, backbone: Backbone) -> None:
        self.hw = hw
        self.backbone = backbone
        sizes = backbone.feature_sizes().astype(DTYPE)
        self.pixels = np.append(sizes**2, DTYPE(1))  # output pixels per layer (same-padded convs)
        self.kernel = np.append(np.full(backbone.n_conv, backbone.kernel), 1).astype(DTYPE)
        self._adc = self._adc_tables()

    def _adc_tables(self) -> dict[str, np.ndarray]:
        """ADC area (um2), delay (ns) and energy per conversion (pJ), indexed by
        adc_flash * (MAX_ADC_BITS + 1) + adc_bits."""
        hw = self.hw
        bits = np.tile(np.arange(MAX_ADC_BITS + 1, dtype=np.float64), 2)
        flash = np.repeat([False, True], MAX_ADC_BITS + 1)
        levels = 2.0**bits
        sar_pj_6b = _sar_power_uw(np.float64(6)) * 7
        tables = {
            "area_um2": np.where(
                flash,
                hw.flash_area_per_level_um2 * (levels - 1),
                hw.sar_area_per_transistor_um2
                * (_SAR_TRANSISTORS_BASE + _SAR_TRANSISTORS_PER_BIT * (bits - 1)),
            ),
            "delay_ns": np.where(flash, hw.flash_delay_ns, (bits + 1) * hw.sar_delay_per_cycle_ns),
            "energy_pj": np.where(
                flash,
                hw.flash_energy_6b_pj * (levels - 1) / (2**6 - 1),
                hw.sar_energy_6b_pj * _sar_power_uw(bits) * (bits + 1) / sar_pj_6b,
            ),
        }
        return {k: v.astype(DTYPE) for k, v in tables.items()}

    # ------------------------------------------------------------------ geometry
    def layer_channels(self, genomes: Genomes) -> tuple[np.ndarray, np.ndarray]:
        """Input and output channels of every layer, classifier included; each (N, L + 1)."""
        ch = genomes.channels.astype(DTYPE)
        cin = np.concatenate([self.backbone.in_channels_of(ch), ch[:, -1:]], axis=1)
        cout = np.concatenate([ch, np.full((len(ch), 1), self.backbone.num_classes, DTYPE)], axis=1)
        return cin, cout

    @staticmethod
    def _with_classifier(gene: np.ndarray) -> np.ndarray:
        return np.concatenate([gene, gene[:, -1:]], axis=1)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, genomes: Genomes, breakdown: bool = True) -> CostReport:
        """Area, energy, latency and derived metrics of every genome, in one vectorised pass.

        With `breakdown=False` the per-layer, per-component arrays are left out (None): the
        totals are the same, and the search's hot path runs about twice as fast. Large batches
        are evaluated in chunks of `CHUNK` genomes so that the temporaries stay in cache.
        """
        if genomes.n_layers != self.backbone.n_conv:
            raise ValueError(
                f"genomes have {genomes.n_layers} layers but the backbone has "
                f"{self.backbone.n_conv} conv layers"
            )
        if genomes.adc_bits.max(initial=1) > MAX_ADC_BITS or genomes.adc_bits.min(initial=1) < 1:
            raise ValueError(f"adc_bits must be in 1..{MAX_ADC_BITS}")
        if genomes.n <= CHUNK:
            return self._evaluate(genomes, breakdown)
        return CostReport.concat(
            [self._evaluate(genomes[i : i + CHUNK], breakdown) for i in range(0, genomes.n, CHUNK)]
        )

    def _evaluate(self, genomes: Genomes, breakdown: bool) -> CostReport:
        hw = self.hw
        adc_key = self._with_classifier(genomes.adc_flash * (MAX_ADC_BITS + 1) + genomes.adc_bits)
        m = self._with_classifier(genomes.col_share).astype(DTYPE)
        bits = self._with_classifier(genomes.adc_bits).astype(DTYPE)
        p = self._with_classifier(genomes.input_bits).astype(DTYPE)
        cin, cout = self.layer_channels(genomes)
        pixels, kernel = self.pixels, self.kernel

        # mapping
        rows = cin * kernel**2
        cols = cout * hw.cells_per_weight
        row_blocks = np.ceil(rows / hw.xbar_rows)
        crossbars = row_blocks * np.ceil(cols / hw.xbar_cols)
        tiles = np.ceil(crossbars / hw.xbars_per_tile)
        built = tiles * hw.xbars_per_tile
        adcs_per_xbar = np.ceil(hw.xbar_cols / m)
        n_adc = built * adcs_per_xbar

        # area, um2 per layer
        cell_um2 = hw.cell_area_f2 * (hw.feature_nm * 1e-3) ** 2
        adc_um2 = self._adc["area_um2"][adc_key]
        per_xbar_um2 = (
            hw.xbar_rows * (hw.xbar_cols * cell_um2 + hw.row_driver_area_um2)
            + hw.xbar_cols * hw.mux_area_per_col_um2
            + hw.buffer_area_per_xbar_um2
            + hw.interconnect_area_per_xbar_um2
        )
        per_adc_um2 = adc_um2 + hw.shift_add_area_per_bit_um2 * (bits + p)
        layer_area = (built * per_xbar_um2 + n_adc * per_adc_um2) * 1e-6
        area_mm2 = layer_area.sum(axis=1)

        # clock: slowest sensing path of the chip, times the margin
        adc_ns = self._adc["delay_ns"][adc_key]
        drive_ns = hw.drive_delay_per_col_ns * adcs_per_xbar
        path_ns = (hw.bitline_delay_ns + hw.mux_delay_ns) + drive_ns + adc_ns
        period = np.maximum(1.0 / hw.max_clock_ghz, hw.clock_margin * path_ns.max(axis=1))

        # cycles per layer; latency = cycles x period
        sense_cycles = pixels * crossbars / built * p * m
        shift_add_cycles = pixels * p * hw.shift_add_cycles_per_pixel_bit
        bits_in = pixels * cin * p
        bits_out = pixels * cout * hw.activation_bits
        buffer_cycles = bits_in / hw.buffer_bits_per_cycle
        interconnect_cycles = bits_out / hw.interconnect_bits_per_cycle
        layer_latency = (
            sense_cycles + shift_add_cycles + buffer_cycles + interconnect_cycles
        ) * period[:, None]
        latency_ns = layer_latency.sum(axis=1)

        # energy, pJ per layer
        conversions = pixels * p * row_blocks * cols
        g_mean_s = 0.5 * (1.0 / hw.r_on_ohm + 1.0 / hw.r_off_ohm)  # mean of uniform levels
        cell_pj = hw.read_voltage_v**2 * g_mean_s * (hw.bitline_delay_ns + hw.mux_delay_ns) * 1e3
        array_pj = (pixels * hw.input_activity * cell_pj) * p * rows * cols
        adc_pj = conversions * self._adc["energy_pj"][adc_key]
        digital_pj = conversions * (hw.mux_energy_pj + hw.shift_add_energy_per_bit_pj * bits)
        bits_moved = bits_in + bits_out
        wire_pj_per_bit = hw.wire_energy_per_bit_mm_pj * np.sqrt(area_mm2)[:, None]
        chip_tiles = tiles.sum(axis=1, keepdims=True)
        layer_energy = (
            array_pj
            + adc_pj
            + digital_pj
            + bits_moved * (hw.buffer_energy_per_bit_pj + wire_pj_per_bit)
            + hw.leakage_mw_per_tile * chip_tiles * layer_latency
        )
        energy_pj = layer_energy.sum(axis=1)

        ops = (2.0 * pixels * kernel**2 * cin * cout).sum(axis=1)
        report = {
            "area_mm2": area_mm2,
            "energy_pj": energy_pj,
            "latency_ns": latency_ns,
            "edap": energy_pj * latency_ns * area_mm2,
            "tops_per_w": ops / energy_pj,
            "tops_per_mm2": ops / latency_ns / area_mm2 * 1e-3,
            "clock_period_ns": period,
            "ops": ops,
            "tiles": tiles.astype(np.int64),
            "crossbars": crossbars.astype(np.int64),
            "duplication": built / crossbars,
        }
        if not breakdown:
            return CostReport(**report)

        # per-component breakdown of the same terms
        def stack(parts: dict[str, np.ndarray]) -> np.ndarray:
            zero = np.zeros_like(layer_area)
            return np.stack([parts.get(c, zero) for c in COMPONENTS], axis=-1)

        period_col = period[:, None]
        sense_ns = sense_cycles * period_col / path_ns
        report["layer_area_mm2"] = (
            stack(
                {
                    "array": built
                    * hw.xbar_rows
                    * (hw.xbar_cols * cell_um2 + hw.row_driver_area_um2),
                    "mux": built * hw.xbar_cols * hw.mux_area_per_col_um2,
                    "adc": n_adc * adc_um2,
                    "shift_add": n_adc * hw.shift_add_area_per_bit_um2 * (bits + p),
                    "buffer": built * hw.buffer_area_per_xbar_um2,
                    "interconnect": built * hw.interconnect_area_per_xbar_um2,
                }
            )
            * 1e-6
        )
        report["layer_latency_ns"] = stack(
            {
                "array": sense_ns * (hw.bitline_delay_ns + drive_ns),
                "mux": sense_ns * hw.mux_delay_ns,
                "adc": sense_ns * adc_ns,
                "shift_add": shift_add_cycles * period_col,
                "buffer": buffer_cycles * period_col,
                "interconnect": interconnect_cycles * period_col,
            }
        )
        report["layer_energy_pj"] = stack(
            {
                "array": array_pj,
                "adc": adc_pj,
                "mux": conversions * hw.mux_energy_pj,
                "shift_add": conversions * hw.shift_add_energy_per_bit_pj * bits,
                "buffer": bits_moved * hw.buffer_energy_per_bit_pj,
                "interconnect": bits_moved * wire_pj_per_bit,
                "leakage": hw.leakage_mw_per_tile * chip_tiles * layer_latency,
            }
        )
        return CostReport(**report)

    def smallest_area_mm2(self, allowed: Mapping[str, Sequence[int]]) -> float:
        """The smallest chip area (mm2) any genome built from these per-layer option sets can have.

        Per-layer area depends only on that layer's genes and grows with channels, so the minimum
        is a uniform genome with the fewest channels and the cheapest peripheral option.
        """
        combos = list(
            product(
                allowed["col_share"],
                allowed["adc_flash"],
                allowed["adc_bits"],
                allowed["input_bits"],
            )
        )
        n_layers = self.backbone.n_conv
        genes = np.array(combos, dtype=np.int64)[:, None, :].repeat(n_layers, axis=1)
        channels = np.full((len(combos), n_layers), min(allowed["channels"]), dtype=np.int64)
        genomes = Genomes(
            channels=channels,
            col_share=genes[..., 0],
            adc_flash=genes[..., 1],
            adc_bits=genes[..., 2],
            input_bits=genes[..., 3],
        )
        return float(self.evaluate(genomes, breakdown=False).area_mm2.min())

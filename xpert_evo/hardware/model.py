"""Vectorised cost model of a layer-by-layer RRAM crossbar accelerator, for whole populations.

Arrays are shaped (N genomes, L + 1 layers): the backbone's conv layers, then the classifier,
which is mapped like a 1x1 convolution on a 1x1 feature map and uses the peripheral genes of the
last conv layer. Every layer is priced by `xpert_evo.hardware.layers.layer_costs` (equations
there and in docs/cost_model.md); this module adds the chip-level rules:

- clocking `layer`: each layer's tiles run at their own period, margin x that layer's sensing
  path (XPert's per-layer simulation); `chip`: one synchronous clock, margin x the slowest path
  of all layers (NeuroSim's full-chip mode). Layer latency = cycles x its period.
- area = sum of the layers' tile areas (tiles are never shared between layers);
  energy = sum of the layers' dynamic energies; latency = sum of the layers' latencies;
  leakage = leakage power of all the chip's tiles x the inference latency (every tile is powered
  while any layer runs), reported apart from the dynamic energy.
- EDAP = dynamic energy x latency x area; TOPS/W = ops / dynamic energy, as NeuroSim and XPert
  report them (leakage excluded).

Per-layer, per-component figures have a trailing axis over `COMPONENTS`; they add up exactly to
the per-genome totals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import product

import numpy as np
import pandas as pd

from xpert_evo.hardware.config import HardwareConfig
from xpert_evo.hardware.layers import DTYPE, MAX_ADC_BITS, AdcTables, clock_ns, layer_costs
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes

COMPONENTS: tuple[str, ...] = (
    "array",
    "adc",
    "mux",
    "accumulation",
    "buffer",
    "interconnect",
)
"""Breakdown components, the last axis of every per-layer figure (a component a quantity does not
have is 0: e.g. no interconnect area; the array energy is the word lines' switching)."""


CHUNK = 2048
"""Genomes per vectorised pass: each (L + 1, CHUNK) float32 temporary is 115 KB, so a pass's
working set stays in a core's L2 cache (the fastest of the chunk sizes timed; the figures are
in docs/cost_model.md, "Speed")."""


@dataclass(frozen=True)
class CostReport:
    """Cost of N genomes. Totals have shape (N,); per-layer breakdowns (N, L + 1, len(COMPONENTS)).

    Attributes:
        area_mm2: chip area, sum of the layers' tile areas.
        energy_pj: dynamic energy of one inference (one input image).
        latency_ns: latency of one inference, layers executed one after another.
        edap: energy x delay x area in pJ ns mm2.
        tops_per_w: tera-operations per second per watt, ops / energy (2 ops per MAC).
        tops_per_mm2: tera-operations per second per mm2, ops / latency / area.
        clock_period_ns: the slowest layer's clock period (the chip clock with `clocking: chip`).
        leakage_pj: leakage energy of one inference (all tiles x latency), not in energy_pj.
        ops: operations per inference (2 x MACs).
        tiles, crossbars: (N, L + 1) tiles allocated and crossbars holding weights, per layer.
        duplication: (N, L + 1) weight copies that run in parallel (spare crossbars of the tiles).
        layer_area_mm2, layer_energy_pj, layer_latency_ns: (N, L + 1, len(COMPONENTS)) breakdowns,
            None when evaluated with breakdown=False.
        layer_clock_ns: (N, L + 1) clock period of each layer, None without breakdown.
    """

    area_mm2: np.ndarray
    energy_pj: np.ndarray
    latency_ns: np.ndarray
    edap: np.ndarray
    tops_per_w: np.ndarray
    tops_per_mm2: np.ndarray
    clock_period_ns: np.ndarray
    leakage_pj: np.ndarray
    ops: np.ndarray
    tiles: np.ndarray
    crossbars: np.ndarray
    duplication: np.ndarray
    layer_area_mm2: np.ndarray | None = None
    layer_energy_pj: np.ndarray | None = None
    layer_latency_ns: np.ndarray | None = None
    layer_clock_ns: np.ndarray | None = None

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

    def layer_frame(self, genome: int = 0) -> pd.DataFrame:
        """Per-layer, per-component table of one genome (rows: layers; units in column names)."""
        if self.layer_area_mm2 is None:
            raise ValueError("this report was evaluated with breakdown=False")
        n_layers = self.tiles.shape[1]
        names = [f"conv{i + 1}" for i in range(n_layers - 1)] + ["classifier"]
        table = {"layer": names, "tiles": self.tiles[genome], "crossbars": self.crossbars[genome]}
        table["duplication"] = self.duplication[genome]
        table["clock_ns"] = self.layer_clock_ns[genome]
        for quantity, unit, values in (
            ("area", "mm2", self.layer_area_mm2),
            ("energy", "pj", self.layer_energy_pj),
            ("latency", "ns", self.layer_latency_ns),
        ):
            for c, comp in enumerate(COMPONENTS):
                table[f"{quantity}_{comp}_{unit}"] = values[genome, :, c]
            table[f"{quantity}_{unit}"] = values[genome].sum(axis=-1)
        return pd.DataFrame(table)


def _sum_layers(values: np.ndarray) -> np.ndarray:
    """Sum of (L + 1, N) per-layer values over the layers, adding rows in layer order, so a
    genome's float32 total does not depend on the batch it is in (numpy's pairwise sum would)."""
    total = values[0].copy()
    for row in values[1:]:
        total += row
    return total


class CostModel:
    """Costs whole populations of genomes on one hardware configuration and backbone."""

    def __init__(self, hw: HardwareConfig, backbone: Backbone) -> None:
        self.hw = hw
        self.backbone = backbone
        sizes = backbone.feature_sizes().astype(DTYPE)
        self.out_map = np.append(sizes, DTYPE(1))  # output map side per layer (same-padded convs)
        self.pixels = self.out_map**2
        self.kernel = np.append(np.full(backbone.n_conv, backbone.kernel), 1).astype(DTYPE)
        self._adc = AdcTables.of(hw)

    # ------------------------------------------------------------------ geometry
    def layer_channels(self, genomes: Genomes) -> tuple[np.ndarray, np.ndarray]:
        """Input and output channels of every layer, classifier included; each (L + 1, N),
        layers first (the layout `_evaluate` computes in)."""
        ch = genomes.channels.T
        cin = np.empty((ch.shape[0] + 1, ch.shape[1]), DTYPE)
        cin[0] = self.backbone.in_channels
        cin[1:] = ch
        cout = np.empty_like(cin)
        cout[:-1] = ch
        cout[-1] = self.backbone.num_classes
        return cin, cout

    @staticmethod
    def _layers_first(gene: np.ndarray, dtype: type = DTYPE) -> np.ndarray:
        """(N, L) gene -> (L + 1, N), the classifier row repeating the last conv layer's."""
        out = np.empty((gene.shape[1] + 1, gene.shape[0]), dtype)
        out[:-1] = gene.T
        out[-1] = gene[:, -1]
        return out

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, genomes: Genomes, breakdown: bool = True) -> CostReport:
        """Area, energy, latency and derived metrics of every genome, in one vectorised pass.

        With `breakdown=False` the per-layer, per-component arrays are left out (None): the
        totals are the same, and the search's hot path runs faster. Large batches are evaluated
        in chunks of `CHUNK` genomes so that the temporaries stay in cache.
        """
        genomes.check_layers(self.backbone.n_conv)
        if genomes.adc_bits.max(initial=1) > MAX_ADC_BITS or genomes.adc_bits.min(initial=1) < 1:
            raise ValueError(f"adc_bits must be in 1..{MAX_ADC_BITS}")
        if genomes.n <= CHUNK:
            return self._evaluate(genomes, breakdown)
        return CostReport.concat(
            [self._evaluate(genomes[i : i + CHUNK], breakdown) for i in range(0, genomes.n, CHUNK)]
        )

    def _evaluate(self, genomes: Genomes, breakdown: bool) -> CostReport:
        """One chunk. Arrays are (L + 1, N), layers first: sums and maxima over the layers then
        add whole rows, many times faster than reducing a short last axis."""
        hw = self.hw
        adc_key = self._layers_first(
            genomes.adc_flash * (MAX_ADC_BITS + 1) + genomes.adc_bits, np.intp
        )
        cin, cout = self.layer_channels(genomes)
        layer = layer_costs(
            hw,
            self._adc,
            cin,
            cout,
            self.out_map[:, None],
            self.kernel[:, None],
            self._layers_first(genomes.col_share),
            adc_key,
            self._layers_first(genomes.adc_bits),
            self._layers_first(genomes.input_bits),
            breakdown,
        )
        period = clock_ns(hw, layer["path_ns"])
        slowest = period.max(axis=0)
        if hw.clocking == "chip":
            period = np.broadcast_to(slowest, period.shape)
        layer_latency = layer["cycles"] * period
        area_mm2 = _sum_layers(layer["area_mm2"])
        energy_pj = _sum_layers(layer["energy_pj"])
        latency_ns = _sum_layers(layer_latency)
        ops = _sum_layers(2.0 * (self.pixels * self.kernel**2)[:, None] * cin * cout)
        report = {
            "area_mm2": area_mm2,
            "energy_pj": energy_pj,
            "latency_ns": latency_ns,
            "edap": energy_pj * latency_ns * area_mm2,
            "tops_per_w": ops / energy_pj,
            "tops_per_mm2": ops / latency_ns / area_mm2 * 1e-3,
            "clock_period_ns": slowest,
            "leakage_pj": _sum_layers(layer["leakage_uw"]) * latency_ns * 1e-3,  # uW ns = 1e-3 pJ
            "ops": ops,
            "tiles": layer["tiles"].T.astype(np.int64),
            "crossbars": layer["crossbars"].T.astype(np.int64),
            "duplication": np.ascontiguousarray(layer["duplication"].T),
        }
        if not breakdown:
            return CostReport(**report)

        def stack(parts: Mapping[str, np.ndarray]) -> np.ndarray:
            """(N, L + 1, len(COMPONENTS)) from per-component (L + 1, N) arrays."""
            zero = np.zeros_like(layer["area_mm2"])
            return np.stack([parts.get(c, zero).T for c in COMPONENTS], axis=-1)

        def parts_of(quantity: str, unit: str) -> dict[str, np.ndarray]:
            return {c: layer[f"{quantity}_{c}{unit}"] for c in COMPONENTS
                    if f"{quantity}_{c}{unit}" in layer}

        report["layer_area_mm2"] = stack(parts_of("area", "_mm2"))
        report["layer_energy_pj"] = stack(parts_of("energy", "_pj"))
        report["layer_latency_ns"] = stack({
            "adc": layer["cycles_sense"] * period,
            "accumulation": layer["cycles_accumulation"] * period,
            "buffer": layer["cycles_buffer"] * period,
        })
        report["layer_clock_ns"] = np.ascontiguousarray(period.T)
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

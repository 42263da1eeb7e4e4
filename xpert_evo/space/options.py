"""The co-design search space: per-layer option sets, the integer encoding pymoo sees, the baseline.

Encoding (the vector layout pymoo sees). A genome of L conv layers is a vector of
``n_var = 5 * L`` integers, gene-major::

    x[g * L + l] = index of layer l's value of gene g in that gene's option list

with genes in `xpert_evo.space.genome.GENE_NAMES` order (channels, col_share, adc_flash, adc_bits,
input_bits). Numeric option lists are sorted ascending, so neighbouring indices are neighbouring
values and SBX / polynomial mutation on the indices make small steps. The ADC type list keeps the
order given in the config (``adc_type: [flash, sar]`` -> index 0 = flash). Index bounds are
``0 <= x[g * L + l] <= len(options[g]) - 1``.

The option sets and the named baseline (VGG16 by default) come from ``conf/space/*.yaml``; the
baseline may use values outside the searched option sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from xpert_evo.config import ConfigError, plain_config
from xpert_evo.space.genome import ADC_TYPES, GENE_NAMES, GeneError, Genomes

SPACE_KEYS: tuple[str, ...] = ("channels", "col_share", "adc_type", "adc_bits", "input_bits")
"""Option-set keys of the ``space`` config node, one per gene (``adc_type`` -> ``adc_flash``)."""



def _adc_code(name: Any, key: str) -> int:
    text = str(name).lower()
    if text not in ADC_TYPES:
        raise ConfigError(f"{key}: {name!r} is not an ADC type; use one of {list(ADC_TYPES)}")
    return ADC_TYPES.index(text)


def _int_list(values: Any, key: str) -> list[int]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ConfigError(f"{key} must be a list of integers, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
            raise ConfigError(f"{key}: {v!r} is not a positive integer")
        out.append(int(v))
    return out


@dataclass(frozen=True)
class SearchSpace:
    """Per-gene option sets for every conv layer plus a named baseline genome.

    Attributes:
        options: gene name (`GENE_NAMES`) -> allowed gene values in encoding order; the
            ``adc_flash`` values are 1 (flash) / 0 (SAR).
        n_layers: conv layers per genome (the backbone's ``n_conv``).
        baseline: the reference design (one genome) every result is compared against.
        baseline_name: its readable name, e.g. ``VGG16``.
    """

    options: Mapping[str, tuple[int, ...]]
    n_layers: int
    baseline: Genomes
    baseline_name: str = "VGG16"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], n_layers: int) -> SearchSpace:
        """Build from the ``space`` config node (see ``conf/space/default.yaml``).

        Raises:
            ConfigError: empty or duplicated option set, bad baseline (unknown keys:
                `xpert_evo.schema.check_config`); the message
                names the offending ``space.*`` key.
        """
        node = plain_config(cfg)
        options: dict[str, tuple[int, ...]] = {}
        for key in SPACE_KEYS:
            raw = node.get(key)
            if raw is None or (isinstance(raw, Sequence) and len(raw) == 0):
                raise ConfigError(
                    f"space.{key} is empty; give at least one allowed value "
                    f"(e.g. space.{key}=[...] or edit conf/space/*.yaml)"
                )
            if key == "adc_type":
                if isinstance(raw, str):
                    raw = [raw]
                values = [_adc_code(v, f"space.{key}") for v in raw]
                gene = "adc_flash"
            else:
                values = sorted(_int_list(raw, f"space.{key}"))
                gene = key
            if len(set(values)) != len(values):
                raise ConfigError(f"space.{key} lists a value twice: {list(raw)}")
            options[gene] = tuple(values)
        baseline_node = node.get("baseline")
        if not isinstance(baseline_node, Mapping):
            raise ConfigError("space.baseline is missing; it names the reference design (VGG16)")
        baseline = cls._baseline_genome(baseline_node, n_layers)
        return cls(
            options=options,
            n_layers=n_layers,
            baseline=baseline,
            baseline_name=str(baseline_node.get("name", "baseline")),
        )

    @staticmethod
    def _baseline_genome(node: Mapping[str, Any], n_layers: int) -> Genomes:
        genes: dict[str, np.ndarray] = {}
        for key in SPACE_KEYS:
            where = f"space.baseline.{key}"
            if node.get(key) is None:
                raise ConfigError(f"{where} is missing; give one value or one per conv layer")
            raw = node[key]
            is_list = isinstance(raw, Sequence) and not isinstance(raw, str)
            per_layer = list(raw) if is_list else [raw]
            if key == "adc_type":
                values = [_adc_code(v, where) for v in per_layer]
                key = "adc_flash"
            else:
                values = _int_list(per_layer, where)
            if len(values) == 1:
                values = values * n_layers
            if len(values) != n_layers:
                raise ConfigError(
                    f"{where} has {len(values)} values; the backbone has {n_layers} conv layers "
                    "(give one value or one per layer)"
                )
            genes[key] = np.asarray([values], dtype=np.int64)
        return Genomes(**genes)

    @property
    def n_var(self) -> int:
        """Length of an encoded genome: 5 genes x ``n_layers``."""
        return len(GENE_NAMES) * self.n_layers

    @property
    def xl(self) -> np.ndarray:
        """Lower index bound of every variable (all zeros), shape (n_var,)."""
        return np.zeros(self.n_var, dtype=np.int64)

    @property
    def xu(self) -> np.ndarray:
        """Upper index bound of every variable (option count - 1), shape (n_var,)."""
        return np.repeat([len(self.options[g]) - 1 for g in GENE_NAMES], self.n_layers)

    @property
    def size(self) -> float:
        """Number of distinct genomes in the space (a float: it overflows int64)."""
        return float(np.prod([float(len(self.options[g])) ** self.n_layers for g in GENE_NAMES]))

    def allowed(self) -> dict[str, tuple[int, ...]]:
        """Gene name -> allowed values (what `Genomes.validate` and the cost model take)."""
        return {g: tuple(self.options[g]) for g in GENE_NAMES}

    def decode(self, x: np.ndarray) -> Genomes:
        """Integer index vectors (N, n_var) -> `Genomes` of N genomes.

        Raises:
            GeneError: wrong vector length or an index outside its gene's option list.
        """
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] != self.n_var:
            raise GeneError(f"encoded genomes have {x.shape[1]} variables, expected {self.n_var}")
        idx = np.rint(x).astype(np.int64).reshape(len(x), len(GENE_NAMES), self.n_layers)
        genes = {}
        for gi, gene in enumerate(GENE_NAMES):
            values = np.asarray(self.options[gene], dtype=np.int64)
            block = idx[:, gi, :]
            bad = (block < 0) | (block >= len(values))
            if bad.any():
                g, layer = (int(i) for i in np.argwhere(bad)[0])
                raise GeneError(
                    f"genome {g}, layer {layer + 1}: index {int(block[g, layer])} of gene {gene} "
                    f"is outside 0..{len(values) - 1}"
                )
            genes[gene] = values[block]
        return Genomes(**genes)

    def encode(self, genomes: Genomes) -> np.ndarray:
        """`Genomes` -> integer index vectors (N, n_var); inverse of `decode`.

        Raises:
            GeneError: a gene value outside the option set (names genome, layer, gene, allowed).
        """
        self.validate(genomes)
        blocks = []
        for gene in GENE_NAMES:
            values = np.asarray(self.options[gene], dtype=np.int64)
            order = np.argsort(values)
            pos = np.searchsorted(values[order], getattr(genomes, gene))
            blocks.append(order[pos])
        return np.concatenate(blocks, axis=1).astype(np.int64)

    def validate(self, genomes: Genomes) -> None:
        """Raise `GeneError` for the first gene outside the option sets or a wrong layer count."""
        genomes.validate(self.allowed(), n_layers=self.n_layers)

    def uniform_grid(self) -> Genomes:
        """Every genome whose genes are the same in all layers: prod(len(options)) genomes."""
        mesh = np.meshgrid(*[np.asarray(self.options[g]) for g in GENE_NAMES], indexing="ij")
        flat = [m.reshape(-1, 1) for m in mesh]
        ones = np.ones((1, self.n_layers), dtype=np.int64)
        return Genomes(**{g: flat[i] * ones for i, g in enumerate(GENE_NAMES)})

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` encoded genomes drawn uniformly from the space, shape (n, n_var)."""
        return rng.integers(0, self.xu + 1, size=(n, self.n_var))

    def nearest(self, genomes: Genomes) -> Genomes:
        """``genomes`` with every gene value replaced by the nearest value of its option set
        (ties to the smaller; an ADC type that is not allowed becomes the first allowed one)."""
        genes = {}
        for gene in GENE_NAMES:
            values = np.asarray(self.options[gene], dtype=np.int64)
            given = getattr(genomes, gene)
            if gene == "adc_flash":
                genes[gene] = np.where(np.isin(given, values), given, values[0])
                continue
            order = np.sort(values)
            genes[gene] = order[np.argmin(np.abs(given[..., None] - order), axis=-1)]
        return Genomes(**genes)

    def seeds(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``n`` distinct encoded genomes (N, n_var) likely to be feasible from the start.

        All carry the baseline's peripheral genes (column sharing, ADC type and bits, input
        bits: a precision the crossbar loses little accuracy at), made allowed by `nearest`,
        on these channels in turn: the uniform-width anchors (narrowest first, so small chips
        come first), the baseline's channels, then channels drawn uniformly from the options.
        """
        widths = np.asarray(self.options["channels"], dtype=np.int64)
        drawn = widths[rng.integers(0, len(widths), size=(n, self.n_layers))]
        channels = np.concatenate([
            np.repeat(np.sort(widths)[:, None], self.n_layers, axis=1),
            self.baseline.channels,
            drawn,
        ])
        copies = self.baseline[np.zeros(len(channels), dtype=np.int64)]
        encoded = self.encode(self.nearest(replace(copies, channels=channels)))
        _, first = np.unique(encoded, axis=0, return_index=True)
        return encoded[np.sort(first)][:n]

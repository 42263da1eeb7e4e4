"""A population of co-design genomes as named numpy arrays (genomes x conv layers).

This is the one data structure shared by the search space, the hardware cost model and the
accuracy surrogate. The search space (`xpert_evo.space`) turns pymoo's integer vectors into
`Genomes` and back; everything downstream takes `Genomes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

GENE_NAMES: tuple[str, ...] = ("channels", "col_share", "adc_flash", "adc_bits", "input_bits")
"""Per-layer genes, in the order they are stored in an encoded genome."""

ADC_TYPES: tuple[str, ...] = ("sar", "flash")
"""Readable ADC type names; index 1 (flash) matches the `adc_flash` gene value 1."""

GENE_COLUMNS: dict[str, str] = {
    "channels": "channels",
    "col_share": "col_share",
    "adc_flash": "adc_type",
    "adc_bits": "adc_bits",
    "input_bits": "input_bits",
}
"""Genome field -> the column that holds it, readable, in the run tables (``pareto.csv``,
``archive.csv``: dash-joined per layer, and ``<column>_<layer>``) and per-layer files."""


class GeneError(ValueError):
    """A gene value or genome shape that the search space or the backbone does not allow."""


def adc_flash_value(adc_type: object) -> int:
    """The `adc_flash` gene of one ADC type, given by name ("sar" or "flash", any case) or as the
    gene itself (0 = sar, 1 = flash; also "0", "1.0").

    Raises:
        GeneError: any other value (the allowed ones named).
    """
    text = str(adc_type).strip().lower()
    if text in ADC_TYPES:
        return ADC_TYPES.index(text)
    if text in ("0", "1", "0.0", "1.0"):
        return int(float(text))
    raise GeneError(
        f"adc_type {adc_type!r} is not one of {list(ADC_TYPES)} (or 0 = sar, 1 = flash)"
    )


@dataclass(frozen=True)
class Genomes:
    """N genomes of L conv layers each; every field is an integer array of shape (N, L).

    Attributes:
        channels: output channels of each conv layer.
        col_share: columns sharing one ADC through a column multiplexer (m).
        adc_flash: 1 for a flash ADC, 0 for a SAR ADC.
        adc_bits: ADC resolution in bits (2**bits output levels).
        input_bits: input activation precision in bits, fed bit-serially (one read per bit).
    """

    channels: np.ndarray
    col_share: np.ndarray
    adc_flash: np.ndarray
    adc_bits: np.ndarray
    input_bits: np.ndarray

    def __post_init__(self) -> None:
        shapes = {f.name: np.shape(getattr(self, f.name)) for f in fields(self)}
        first = shapes["channels"]
        if len(first) != 2 or any(s != first for s in shapes.values()):
            raise GeneError(f"every gene must be a 2-D array of one shape (N, L); got {shapes}")
        for f in fields(self):
            object.__setattr__(self, f.name, np.asarray(getattr(self, f.name), dtype=np.int64))

    @property
    def n(self) -> int:
        """Number of genomes."""
        return self.channels.shape[0]

    @property
    def n_layers(self) -> int:
        """Number of conv layers per genome."""
        return self.channels.shape[1]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int | slice | np.ndarray) -> Genomes:
        """Select genomes; an integer index keeps the 2-D shape (a batch of one)."""
        if isinstance(index, int | np.integer):
            index = slice(int(index), int(index) + 1)
        return Genomes(**{name: getattr(self, name)[index] for name in GENE_NAMES})

    def stack(self) -> np.ndarray:
        """All genes as one (N, L, 5) integer array, genes in `GENE_NAMES` order."""
        return np.stack([getattr(self, name) for name in GENE_NAMES], axis=-1)

    @classmethod
    def concat(cls, parts: Sequence[Genomes]) -> Genomes:
        """Concatenate batches along the genome axis."""
        return cls(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in GENE_NAMES}
        )

    @classmethod
    def uniform(
        cls,
        channels: Sequence[int],
        col_share: int,
        adc_type: str,
        adc_bits: int,
        input_bits: int,
    ) -> Genomes:
        """One genome with the given channels and the same peripheral genes in every layer."""
        adc_type = adc_type.lower()
        if adc_type not in ADC_TYPES:
            raise GeneError(f"adc_type={adc_type!r} is not one of {list(ADC_TYPES)}")
        n_layers = len(channels)
        row = np.ones((1, n_layers), dtype=np.int64)
        return cls(
            channels=np.asarray([list(channels)], dtype=np.int64),
            col_share=row * col_share,
            adc_flash=row * ADC_TYPES.index(adc_type),
            adc_bits=row * adc_bits,
            input_bits=row * input_bits,
        )

    def check_layers(self, n_layers: int) -> None:
        """Raise `GeneError` unless every genome has `n_layers` layers (the backbone's conv
        layers)."""
        if self.n_layers != n_layers:
            raise GeneError(
                f"genomes have {self.n_layers} layers but the backbone has {n_layers} conv layers"
            )

    def validate(self, allowed: Mapping[str, Sequence[int]], n_layers: int | None = None) -> None:
        """Raise `GeneError` naming genome, layer, gene and allowed values of the first bad gene.

        Args:
            allowed: gene name -> allowed values; genes not named are not checked.
            n_layers: the backbone's conv layer count, checked when given.
        """
        if n_layers is not None:
            self.check_layers(n_layers)
        for name, values in allowed.items():
            if name not in GENE_NAMES:
                raise GeneError(f"unknown gene {name!r}; genes are {list(GENE_NAMES)}")
            gene = getattr(self, name)
            bad = ~np.isin(gene, np.asarray(list(values)))
            if bad.any():
                g, layer = (int(i) for i in np.argwhere(bad)[0])
                raise GeneError(
                    f"genome {g}, layer {layer + 1}: gene {name}={int(gene[g, layer])} is not "
                    f"allowed; allowed values are {sorted(int(v) for v in values)}"
                )

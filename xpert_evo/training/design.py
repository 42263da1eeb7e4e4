"""Which design to train: a genome read from a run's design file or from a ``genome:`` node."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xpert_evo.config import plain_config
from xpert_evo.space.genome import Genomes, adc_flash_value

log = logging.getLogger(__name__)

_ALIASES: dict[str, tuple[str, ...]] = {
    "channels": ("channels", "cout", "out_channels", "c_out"),
    "col_share": ("col_share", "column_sharing", "m", "mux"),
    "adc_type": ("adc_type", "adc", "adc_flash"),
    "adc_bits": ("adc_bits", "adc_precision", "adc_resolution"),
    "input_bits": ("input_bits", "input_precision", "in_bits"),
}


def read_design(
    path: str | Path,
    n_layers: int,
    defaults: Mapping[str, Any] | None = None,
    row: int = 0,
) -> Genomes:
    """The genome of a design file: a run's per-layer table or a one-design-per-row table.

    Accepts `designs/<role>_layers.csv` (one row per layer; rows whose `layer` is not a conv
    layer, e.g. "classifier", and rows with an empty `channels` are dropped) and tables with
    dash-joined genes per row (`pareto.csv`, `archive.csv`, the ground-truth table; `row`
    selects the design). Column names are matched case-insensitively with common aliases;
    peripheral genes missing from the file come from `defaults` (gene -> value) with a warning.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file has no channels column, or not `n_layers` conv layers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"design file {path} does not exist")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.columns = [str(c).strip().lower() for c in table.columns]
    found = {g: next((a for a in names if a in table.columns), None)
             for g, names in _ALIASES.items()}
    if found["channels"] is None:
        raise ValueError(
            f"design file {path} has no channels column (columns: {list(table.columns)}); "
            "expected a designs/*_layers.csv per-layer table or a table of dash-joined genes"
        )
    ch = table[found["channels"]].str.strip()
    compact = ch.str.contains("-").any()
    if compact:
        if not 0 <= row < len(table):
            raise ValueError(f"design_row={row} but {path} holds {len(table)} designs")
        picked = table.iloc[row]

        def values(col: str) -> list[str]:
            return str(picked[col]).split("-")
    else:
        keep = ch != ""
        if "layer" in table.columns:
            names = table["layer"].str.strip().str.lower()
            keep &= names.str.fullmatch(r"(conv)?\s*\d+")
        layers = table[keep]

        def values(col: str) -> list[str]:
            return layers[col].str.strip().tolist()
    genes: dict[str, np.ndarray] = {}
    for gene, col in found.items():
        if col is None:
            if defaults is None or defaults.get(gene) is None:
                raise ValueError(f"design file {path} has no {gene} column and no default")
            log.warning("design file %s has no %s column; using %s=%s", path, gene, gene,
                        defaults[gene])
            genes[gene] = np.array([_per_layer(defaults[gene], n_layers, gene)])
            continue
        raw = values(col)
        if gene == "adc_type":
            genes[gene] = np.array([[adc_flash_value(v) for v in raw]])
        else:
            genes[gene] = np.array([[int(float(v)) for v in raw]])
    lengths = {g: v.shape[1] for g, v in genes.items()}
    if any(n != n_layers for n in lengths.values()):
        raise ValueError(f"design file {path}: per-gene layer counts {lengths}, backbone has "
                         f"{n_layers} conv layers")
    return Genomes(genes["channels"], genes["col_share"], genes["adc_type"], genes["adc_bits"],
                   genes["input_bits"])


def _per_layer(value: Any, n_layers: int, gene: str) -> list[int]:
    """A scalar or per-layer list of one gene as n_layers integers (ADC types as 0/1)."""
    items = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    if len(items) == 1:
        items = items * n_layers
    if len(items) != n_layers:
        raise ValueError(f"genome.{gene} has {len(items)} values; the backbone has {n_layers} "
                         "conv layers (give one value or one per layer)")
    return [adc_flash_value(v) if gene == "adc_type" else int(v) for v in items]


def genome_from_config(node: Mapping[str, Any], n_layers: int) -> Genomes:
    """The genome of a `genome:` node (channels list required; other genes scalar or lists)."""
    node = dict(plain_config(node) or {})
    if node.get("channels") is None:
        raise ValueError(
            "no design given: set genome.channels=[c1,...,c13] (13 output channels) or "
            "design=<run dir> / design=<path to designs/knee_layers.csv>"
        )
    genes = {g: np.array([_per_layer(node.get(g), n_layers, g)]) for g in _ALIASES}
    return Genomes(genes["channels"], genes["col_share"], genes["adc_type"], genes["adc_bits"],
                   genes["input_bits"])

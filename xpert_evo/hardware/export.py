"""Export a genome to the 12-column network CSV read by NeuroSim-derived simulators.

Columns (no header), one row per layer, conv layers then the classifier:
    H, W          input feature size + 2 (padding included); 1, 1 for the classifier
    Cin, K, K, Cout
    pool          1 if a 2x2 max-pool follows the layer
    stride        1
    col_share     columns per ADC (m)
    adc_type      1 flash, 0 SAR
    input_bits    input precision (bit-serial reads)
    adc_levels    2 ** adc_bits (NeuroSim's `levelOutput` counts levels, not bits)
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes

NEUROSIM_COLUMNS: tuple[str, ...] = (
    "H",
    "W",
    "Cin",
    "K",
    "K",
    "Cout",
    "pool",
    "stride",
    "col_share",
    "adc_type",
    "input_bits",
    "adc_levels",
)


def neurosim_rows(genome: Genomes, backbone: Backbone) -> np.ndarray:
    """The network CSV rows of one genome (a batch of one), shape (n_conv + 1, 12), integers."""
    if genome.n != 1:
        raise ValueError(f"export takes one genome, got a batch of {genome.n}")
    if genome.n_layers != backbone.n_conv:
        raise ValueError(
            f"genome has {genome.n_layers} layers but the backbone has "
            f"{backbone.n_conv} conv layers"
        )
    ch = genome.channels[0]
    size = backbone.feature_sizes() + 2
    conv = np.stack(
        [
            size,
            size,
            backbone.in_channels_of(ch),
            np.full_like(ch, backbone.kernel),
            np.full_like(ch, backbone.kernel),
            ch,
            backbone.pool_flags(),
            np.ones_like(ch),
            genome.col_share[0],
            genome.adc_flash[0],
            genome.input_bits[0],
            2 ** genome.adc_bits[0],
        ],
        axis=1,
    )
    last = conv[-1]
    classifier = np.array(
        [1, 1, ch[-1], 1, 1, backbone.num_classes, 0, 1, last[8], last[9], last[10], last[11]]
    )
    return np.vstack([conv, classifier]).astype(np.int64)


def write_neurosim_csv(genome: Genomes, backbone: Backbone, path: str | Path) -> Path:
    """Write one genome's network CSV (no header, see module docstring) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(neurosim_rows(genome, backbone).tolist())
    return path

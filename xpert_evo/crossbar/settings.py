"""Precision settings drawn for measuring the crossbar's precision loss."""

from __future__ import annotations

import numpy as np


def random_precisions(n_layers: int, count: int, inputs: list[int], adcs: list[int],
                      rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` per-layer (input bits, ADC bits) settings, each (n_layers,) int64.

    A setting draws one input-bit and one ADC-bit level uniformly from the options, then moves
    each layer one step below or above it at random (or keeps it), clipped to the options'
    range: settings near a uniform precision with per-layer variation, as a search proposes.
    """
    out = []
    for _ in range(count):
        levels = []
        for options in (inputs, adcs):
            level = rng.choice(options)
            bits = np.clip(level + rng.integers(-1, 2, size=n_layers), min(options), max(options))
            levels.append(bits.astype(np.int64))
        out.append((levels[0], levels[1]))
    return out

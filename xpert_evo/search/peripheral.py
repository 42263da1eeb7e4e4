"""The best peripheral genes for a fixed channel list: lowest EDAP within the area budget.

Accuracy depends on the channels only, so for a published or hand-picked network the
co-design question left is its crossbar periphery. Per-layer coordinate descent: start from the
best uniform peripheral setting, then repeatedly give each layer, in turn, the peripheral option
(column sharing x ADC type x ADC bits x input bits) that minimises the chip's EDAP with the other
layers fixed, evaluating all of a layer's options in one vectorised cost-model batch. Infeasible
designs (area over budget, or a predicted crossbar precision loss over its bound) rank after
every feasible one.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.hardware import CostModel
from xpert_evo.space import SearchSpace
from xpert_evo.space.genome import Genomes

PERIPHERAL_GENES: tuple[str, ...] = ("col_share", "adc_flash", "adc_bits", "input_bits")


def _rank_key(
    genomes: Genomes,
    model: CostModel,
    area_mm2: float,
    penalty: PrecisionPenalty | None,
    precision_loss_pp: float | None,
) -> np.ndarray:
    rep = model.evaluate(genomes, breakdown=False)
    violation = np.maximum(np.asarray(rep.area_mm2, dtype=float) / area_mm2 - 1.0, 0.0)
    if penalty is not None and precision_loss_pp is not None:
        loss = penalty.predict(genomes)
        violation += np.maximum(loss / precision_loss_pp - 1.0, 0.0)
    edap = np.log10(np.asarray(rep.edap, dtype=float))
    return np.where(violation <= 0, edap, 100.0 + violation)


def best_peripherals(
    channels: np.ndarray,
    space: SearchSpace,
    model: CostModel,
    area_mm2: float,
    penalty: PrecisionPenalty | None = None,
    precision_loss_pp: float | None = None,
    sweeps: int = 3,
) -> Genomes:
    """One genome: ``channels`` (L,) with the lowest-EDAP peripheral genes of ``space`` found.

    Args:
        channels: output channels of every conv layer.
        space: the option sets the peripheral genes are drawn from.
        model: the cost model.
        area_mm2: chip area budget; designs above it are used only if none fits.
        penalty, precision_loss_pp: the precision penalty model and its bound in percentage
            points (the search's ``constraints.precision_loss_pp``); None = no bound.
        sweeps: coordinate-descent passes over the layers.
    """
    options = np.array(list(product(*(space.options[g] for g in PERIPHERAL_GENES))), np.int64)
    n_layers = len(channels)

    def batch(genes: np.ndarray) -> Genomes:
        return Genomes(
            channels=np.broadcast_to(np.asarray(channels, np.int64), genes.shape[:2]),
            **{g: genes[..., i] for i, g in enumerate(PERIPHERAL_GENES)},
        )

    limits = (model, area_mm2, penalty, precision_loss_pp)
    uniform = np.repeat(options[:, None, :], n_layers, axis=1)
    current = uniform[np.argmin(_rank_key(batch(uniform), *limits))].copy()
    for _ in range(sweeps):
        changed = False
        for layer in range(n_layers):
            trial = np.repeat(current[None], len(options), axis=0)
            trial[:, layer] = options
            best = options[np.argmin(_rank_key(batch(trial), *limits))]
            if not np.array_equal(best, current[layer]):
                current[layer] = best
                changed = True
        if not changed:
            break
    return batch(current[None])

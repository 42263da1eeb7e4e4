"""Crossbar accuracy of trained networks: one genome, or a sweep of uniform precisions."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.crossbar.simulate import CrossbarNetwork
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import Split
from xpert_evo.training.network import pick_device

log = logging.getLogger(__name__)


def spread(n_total: int, n: int | None) -> np.ndarray:
    """`n` indices evenly spaced over `range(n_total)` (all if None or n >= n_total)."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(np.int64))


@dataclass(frozen=True)
class NonIdealResult:
    """Crossbar accuracy of one genome.

    Attributes:
        accuracy_pct: top-1 accuracy on the crossbar at the genome's precisions, %.
        reference_accuracy_pct: the float network (BN folded, unquantised) on the same images, %.
        n_images: test images evaluated.
        wall_s: seconds spent (calibration and evaluation).
    """

    accuracy_pct: float
    reference_accuracy_pct: float
    n_images: int
    wall_s: float


def evaluation_data(
    spec: CrossbarSpec, test: Split, calib_source: Split
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(test images, test labels, calibration images) as normalised tensors per `spec`."""
    picks = spread(len(test), spec.test_images)
    calib = calib_source.normalised(spread(len(calib_source), spec.calib_images))
    return test.normalised(picks), torch.from_numpy(test.labels[picks]), calib


def evaluate_genome(
    model: nn.Sequential,
    genome: Genomes,
    spec: CrossbarSpec,
    test: Split,
    calib_source: Split,
    device: str = "auto",
) -> NonIdealResult:
    """Non-ideal accuracy of a trained network at one genome's per-layer precisions.

    Args:
        model: the trained network of the genome's channels (from `build_network`).
        genome: a batch of one; its `input_bits` and `adc_bits` (per conv layer) are used.
        spec: crossbar hardware and calibration settings.
        test: test split (`spec.test_images` of it are evaluated).
        calib_source: training split (`spec.calib_images` of it calibrate the ranges).
        device: "auto" (cuda if available, else cpu), "cpu", "cuda", ...
    """
    start = time.perf_counter()
    images, labels, calib = evaluation_data(spec, test, calib_source)
    net = CrossbarNetwork(model, spec, calib, pick_device(device))
    reference = net.accuracy_pct(images, labels, calib, 8, None, mode="float")
    acc = net.accuracy_pct(images, labels, calib, genome.input_bits[0], genome.adc_bits[0])
    return NonIdealResult(acc, reference, len(labels), time.perf_counter() - start)


def sweep_uniform(
    model: nn.Sequential,
    spec: CrossbarSpec,
    test: Split,
    calib_source: Split,
    input_bits: Sequence[int],
    adc_bits: Sequence[int | None],
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Crossbar accuracy over a grid of precisions, each uniform across layers.

    The network is mapped once (weights, input ranges); ADC ranges are recalibrated for every
    (input_bits, adc_bits) pair. Returns one dict per pair: input_bits, adc_bits,
    accuracy_pct, reference_accuracy_pct (float network, same images), n_images, wall_s.
    """
    images, labels, calib = evaluation_data(spec, test, calib_source)
    net = CrossbarNetwork(model, spec, calib, pick_device(device))
    reference = net.accuracy_pct(images, labels, calib, 8, None, mode="float")
    rows = []
    for p in input_bits:
        for b in adc_bits:
            start = time.perf_counter()
            acc = net.accuracy_pct(images, labels, calib, int(p), b)
            rows.append({"input_bits": int(p), "adc_bits": b, "accuracy_pct": acc,
                         "reference_accuracy_pct": reference, "n_images": len(labels),
                         "wall_s": time.perf_counter() - start})
            log.info("input %s bits, ADC %s bits: %.2f %% (float %.2f %%)", p, b, acc, reference)
    return rows


class PairedEvaluator:
    """One trained network mapped onto crossbars once and evaluated at many precision settings
    on the same test images: the crossbar's and the float network's per-image outcomes, the pairs
    a paired bootstrap resamples (`xpert_evo.crossbar.loss_table.paired_loss`).

    The float outcomes and the weight mapping are computed once; each setting recalibrates the ADC
    ranges at its input bits (cached per input-bits setting) as `evaluate_genome` does, so a
    setting's crossbar accuracy is `evaluate_genome`'s.

    Args:
        model: the trained network (from `build_network`).
        spec: crossbar hardware and calibration settings (`spec.test_images` are evaluated).
        test: test split; calib_source: training split (`spec.calib_images` calibrate the ranges).
        device: "auto" (cuda if available, else cpu), "cpu", "cuda", ...

    Attributes:
        float_correct: (n_images,) bool, the float network (BN folded, unquantised) per image.
        n_images: test images evaluated.
    """

    def __init__(self, model: nn.Sequential, spec: CrossbarSpec, test: Split, calib_source: Split,
                 device: str = "auto") -> None:
        self.images, self.labels, self.calib = evaluation_data(spec, test, calib_source)
        self.net = CrossbarNetwork(model, spec, self.calib, pick_device(device))
        self.float_correct = self.net.correct(self.images, self.labels, self.calib, 8, None,
                                              mode="float")
        self.n_images = len(self.labels)

    def crossbar_correct(self, input_bits: Sequence[int], adc_bits: Sequence[int]) -> np.ndarray:
        """Per-image outcomes (n_images,) bool on the crossbar at per-layer `input_bits` and
        `adc_bits` (one value per conv layer)."""
        return self.net.correct(self.images, self.labels, self.calib, input_bits, adc_bits)

"""The crossbar's number formats: its config, BatchNorm folding, weight quantisation, ranges.

`CrossbarSpec` is the ``crossbar:`` node (with xbar_rows, cell_bits and weight_bits from the
``hardware:`` node the cost model reads). See `xpert_evo.crossbar.simulate` for how the layers
are computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from xpert_evo.config import plain_config, typed

ENCODINGS: tuple[str, ...] = ("differential", "offset")
"""How signed weights are stored (see the module docstring)."""


HARDWARE_KEYS: tuple[str, ...] = ("xbar_rows", "cell_bits", "weight_bits", "weight_encoding")
"""CrossbarSpec fields that come from the `hardware:` config node."""


@dataclass(frozen=True)
class CrossbarSpec:
    """Fixed crossbar hardware and calibration settings.

    Attributes:
        xbar_rows: crossbar rows; the unfolded inputs are split into groups of this many.
        cell_bits: bits stored per RRAM cell (one weight slice).
        weight_bits: weight precision in bits, sign included.
        weight_encoding: "differential" or "offset" (see the module docstring).
        per_channel: quantise weights per output channel (True) or per layer (False).
        input_percentile: percentile (0..100) of a layer's float input activations taken as
            the top of its input range (100 - it as the bottom for the signed first layer).
        adc_percentile: percentile (0..100) of |partial sums| taken as the ADC range.
        calib_images: training images used to calibrate input and ADC ranges.
        test_images: test images evaluated on the crossbar (evenly spaced over the test split,
            so every class is represented); None = all.
        batch_size: images per forward pass in `accuracy_pct`.
        max_elements: largest intermediate tensor (elements) a layer may build at once; bigger
            batches are processed in chunks of images and row groups.
    """

    xbar_rows: int = 64
    cell_bits: int = 4
    weight_bits: int = 8
    weight_encoding: str = "offset"
    per_channel: bool = True
    input_percentile: float = 99.99
    adc_percentile: float = 99.9
    calib_images: int = 256
    test_images: int | None = 1000
    batch_size: int = 100
    max_elements: int = 1 << 24

    def __post_init__(self) -> None:
        if self.weight_encoding not in ENCODINGS:
            raise ValueError(
                f"crossbar.weight_encoding={self.weight_encoding!r} is not one of {ENCODINGS}"
            )
        if min(self.xbar_rows, self.cell_bits, self.weight_bits) < 1 or self.weight_bits < 2:
            raise ValueError("xbar_rows, cell_bits must be >= 1 and weight_bits >= 2")
        for key in ("input_percentile", "adc_percentile"):
            if not 50.0 < getattr(self, key) <= 100.0:
                raise ValueError(f"crossbar.{key}={getattr(self, key)} must be in (50, 100]")

    @property
    def n_slices(self) -> int:
        """Weight slices (cells) per weight: ceil(weight_bits / cell_bits)."""
        return math.ceil(self.weight_bits / self.cell_bits)

    @classmethod
    def from_config(
        cls, cfg: Mapping[str, Any] | None, hardware: Mapping[str, Any] | None = None
    ) -> CrossbarSpec:
        """From the `crossbar:` node, taking `HARDWARE_KEYS` (array size, cell and weight bits,
        weight encoding) from the `hardware:` node when given, so that the simulation computes with
        the hardware the cost model prices. OmegaConf checks the keys and types
        (`xpert_evo.config.typed`).

        Raises:
            ConfigError: an unknown or mistyped key (``crossbar.<key>`` named).
            ValueError: a crossbar node that sets a hardware key to another value than the hardware
                node, or a value out of range.
        """
        values = dict(plain_config(cfg) or {})
        hw = dict(plain_config(hardware) or {})
        from_hw = {k: hw[k] for k in HARDWARE_KEYS if k in hw}
        clash = sorted(k for k in from_hw if k in values and values[k] != from_hw[k])
        if clash:
            raise ValueError(
                f"crossbar.{clash[0]}={values[clash[0]]!r} disagrees with hardware.{clash[0]}="
                f"{from_hw[clash[0]]!r}; set hardware.{clash[0]} instead (the cost model prices it)"
            )
        return typed(cls, {**values, **from_hw}, "crossbar")


@dataclass
class QuantLayer:
    """One crossbar-mapped layer: a BN-folded conv (or the classifier) with quantised weights.

    Attributes:
        gene_layer: index of the genome layer whose input_bits / adc_bits apply (0-based).
        kernel, padding: conv geometry (1, 0 for the classifier).
        weight: (O, R) BN-folded float64 weights, R = Cin K K in `fn.unfold` order.
        q: (O, R) integer-valued quantised weights.
        w_scale: (O,) weight scale s_w (w = s_w q).
        bias: (O,) digital bias (folded BatchNorm, or the classifier's bias).
        in_lo, in_hi: calibrated float input range (in_lo < 0 only for the first layer).
        is_linear: True for the classifier.
    """

    gene_layer: int
    kernel: int
    padding: int
    weight: torch.Tensor
    q: torch.Tensor
    w_scale: torch.Tensor
    bias: torch.Tensor
    in_lo: float
    in_hi: float
    is_linear: bool

    def input_quant(self, bits: int) -> tuple[float, float]:
        """(scale s_x, zero point z) of the layer's input at `bits` bits: the calibrated range
        [in_lo, in_hi] over 2^bits - 1 steps, z the integer nearest to where 0 falls."""
        levels = 2**bits - 1
        scale = (self.in_hi - self.in_lo) / levels
        zero = float(min(max(round(-self.in_lo / scale), 0), levels))
        return scale, zero


def quantise_input(x: torch.Tensor, scale: float, zero: float, bits: int) -> torch.Tensor:
    """Inputs x (float) as unsigned `bits`-bit integers: clamp(round(x / scale) + zero)."""
    return torch.clamp(torch.round(x / scale) + zero, 0, 2**bits - 1)


def fold_batchnorm(
    conv: nn.Conv2d, bn: nn.BatchNorm2d | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 weights (O, Cin, K, K) and bias (O,) of conv followed by BN in eval mode."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(w[:, 0, 0, 0])
    if bn is None:
        return w, b
    w, b = fuse_conv_bn_weights(
        w, b, bn.running_mean.double(), bn.running_var.double(), bn.eps,
        bn.weight.detach().double(), bn.bias.detach().double(),
    )
    return w.detach(), b.detach()


def quantise_weights(w: torch.Tensor, spec: CrossbarSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(O, R) float64 weights -> integer-valued q (O, R) and scales s_w (O,), symmetric."""
    qmax = 2 ** (spec.weight_bits - 1) - 1
    peak = w.abs().amax(dim=1) if spec.per_channel else w.abs().amax().expand(w.shape[0])
    scale = torch.where(peak > 0, peak / qmax, torch.ones_like(peak))
    q = torch.clamp(torch.round(w / scale[:, None]), -qmax, qmax)
    return q, scale


def cell_slices(q: torch.Tensor, spec: CrossbarSpec) -> torch.Tensor:
    """Weight slices (S, O, R) of integer weights q (O, R) as stored in the cells (float64):
    slices of |q| signed by q's sign (differential), or of the unsigned q + 2^(wb-1) (offset)."""
    mask = 2**spec.cell_bits - 1
    if spec.weight_encoding == "differential":
        mag = q.abs().long()
    else:
        mag = (q + 2 ** (spec.weight_bits - 1)).long()
    slices = torch.stack([(mag >> (spec.cell_bits * k)) & mask for k in range(spec.n_slices)])
    slices = slices.double()
    if spec.weight_encoding == "differential":
        slices = slices * torch.sign(q)
    return slices


def adc_step(
    ranges: torch.Tensor | None, bits: int | None, spec: CrossbarSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """ADC step per weight slice as (levels, span), both (S,) float64: step = span / levels
    partial-sum LSBs; 1 / 1 when lossless (bits or ranges None).

    Signed sums (differential): step = range / 2^(b-1); unsigned sums (offset): step =
    range / (2^b - 1); never below 1, one LSB of the integer partial sum.
    """
    ones = torch.ones(spec.n_slices, dtype=torch.float64)
    if bits is None or ranges is None:
        return ones, ones
    levels = 2 ** (bits - 1) if spec.weight_encoding == "differential" else 2**bits - 1
    coarse = ranges.double() / levels >= 1.0
    return torch.where(coarse, levels * ones, ones), torch.where(coarse, ranges.double(), ones)


def adc_code_range(bits: int, spec: CrossbarSpec) -> tuple[int, int]:
    """Smallest and largest code of a b-bit ADC: [-2^(b-1), 2^(b-1) - 1] for signed
    (differential) sums, [0, 2^b - 1] for unsigned (offset) sums; its output is code x step."""
    if spec.weight_encoding == "differential":
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def percentile(values: list[torch.Tensor], pct: float) -> float:
    """Percentile (0..100) of the concatenated values, on a strided sub-sample of <= 4M."""
    flat = torch.cat([v.reshape(-1) for v in values]).double()
    stride = max(1, flat.numel() // (1 << 22))
    return float(np.percentile(flat[::stride].cpu().numpy(), pct))

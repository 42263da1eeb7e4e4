"""Hardware-aware evaluation: run a trained network the way the RRAM crossbar computes it.

Every conv layer and the classifier (a 1x1 "conv" on the pooled features) is computed as the
crossbar does, vectorised in torch:

1. **BatchNorm folding.** Each Conv2d's following BatchNorm2d is folded into the conv weights
   (per output channel) and a bias; the bias is added digitally after the shift-add.
2. **Weights.** Symmetric per-output-channel (or per-layer) quantisation to `weight_bits`:
   ``q = round(w / s_w)`` in ``[-(2^(wb-1) - 1), 2^(wb-1) - 1]``, then split into
   ``S = ceil(wb / cell_bits)`` slices of `cell_bits` bits, least significant first. The sign is
   handled by `weight_encoding`:

   * ``differential``: the magnitude ``|q|`` is sliced and every slice sits on a pair of
     columns (positive / negative weights); the pair's currents are subtracted before the ADC,
     so each conversion digitises a signed partial sum ``sum_r x_r sign(q_r) slice_k(|q_r|)``.
   * ``offset`` (default, NeuroSim's): the column stores the unsigned ``q + 2^(wb-1)``, sliced;
     the ADC digitises an unsigned partial sum and ``2^(wb-1) * sum_r x_r`` (exact, digital: a
     reference row sum) is subtracted after the shift-add.
3. **Inputs.** Activations are quantised per layer to the genome's `input_bits` p with a range
   calibrated on training images (the `input_percentile` of the float network's activations):
   ``u = clamp(round(x / s_x) + z, 0, 2^p - 1)``. Layers 2.. see post-ReLU inputs, so z = 0. The
   first layer sees the normalised (signed) image: it is quantised with an offset (asymmetric
   fixed point, zero point z); the zero padding of the image becomes padding with z, and
   ``z * sum_r q_r`` is subtracted digitally, so the crossbar only ever sees unsigned inputs.
   ``u`` is fed bit-serially: one bit-plane (bit j, weight 2^j) per read.
4. **Row groups.** The unfolded rows (Cin K K, channel-major (c, kh, kw), the `unfold` order)
   are split into groups of `xbar_rows` (64); every group is one crossbar and produces its own
   partial sum, an integer computed exactly (`xpert_evo.crossbar.partial_sums`).
5. **ADC.** Each partial sum (row group x input bit x weight slice x column) is quantised by a
   b-bit ADC (the genome's `adc_bits`) over a range calibrated per layer and weight slice: the
   `adc_percentile` of |partial sums| on the calibration images at the same input bits with
   lossless ADCs upstream (so one calibration serves every ADC resolution). Signed sums
   (differential): step = max(range / 2^(b-1), 1), codes in ``[-2^(b-1), 2^(b-1) - 1]``;
   unsigned sums (offset): step = max(range / (2^b - 1), 1), codes in ``[0, 2^b - 1]``. The
   code is ``round(ps / step)``, half to even, clipped. Partial sums are integers, so a step
   below one LSB gains nothing; ``adc_bits=None`` is a lossless ADC.
6. **Shift-add.** ``y_int = sum_groups sum_j 2^j sum_k 2^(cell_bits k) ADC(ps)``, minus the
   offset corrections; ``y = s_x s_w y_int + bias``, then ReLU / max-pool / average-pool digitally.

The classifier uses the last conv layer's genes, as the hardware cost model does. The integer
accumulator ``y_int`` does not depend on the input's dtype or on any summation order (exact
integers, shift-added in float64); input quantisation, rescaling and the digital layers follow
the input's dtype. In the lossless limit (``adc_bits=None``) ``y_int`` is the fake-quantised
network's (same weight and input quantisation, plain convolution: `mode="fake_quant"`), which
computes in the input's dtype: use float64 to compare the two exactly.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as fn

from xpert_evo.crossbar.partial_sums import (
    adc_accumulate,
    exact_products,
    group_weights,
    int8_matmul,
    sampled_partial_sums,
    unfold_rows,
)
from xpert_evo.crossbar.quantise import (
    CrossbarSpec,
    QuantLayer,
    adc_code_range,
    adc_step,
    cell_slices,
    fold_batchnorm,
    percentile,
    quantise_input,
    quantise_weights,
)

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("crossbar", "fake_quant", "float")
"""Evaluation modes: crossbar decomposition, plain conv on quantised values, BN-folded float."""


class CrossbarNetwork:
    """A trained `nn.Sequential` from `build_network`, mapped onto crossbars.

    Construction folds BatchNorm, quantises weights and calibrates every layer's input range on
    the float network (independent of the precisions evaluated later). `forward` then runs any
    per-layer (input_bits, adc_bits) in one of `MODES`; ADC ranges are calibrated per precision
    setting by `calibrate_adc` (`accuracy_pct` does it for you).

    Args:
        network: trained network (Conv2d [BatchNorm2d] ReLU [MaxPool2d] ... Linear).
        spec: crossbar hardware and calibration settings.
        calib: (B, 3, S, S) normalised training images for range calibration.
        device: where the arithmetic runs (inputs are moved there; logits come back on it).
    """

    def __init__(
        self,
        network: nn.Sequential,
        spec: CrossbarSpec,
        calib: torch.Tensor,
        device: torch.device | str = "cpu",
    ) -> None:
        self.spec = spec
        self.device = torch.device(device)
        self.steps: list[QuantLayer | nn.Module] = []
        modules = list(copy.deepcopy(network).eval().cpu())
        conv_index = -1
        i = 0
        while i < len(modules):
            m = modules[i]
            if isinstance(m, nn.Conv2d):
                bn = modules[i + 1] if i + 1 < len(modules) else None
                bn = bn if isinstance(bn, nn.BatchNorm2d) else None
                w, b = fold_batchnorm(m, bn)
                conv_index += 1
                w = w.reshape(w.shape[0], -1)
                q, scale = quantise_weights(w, spec)
                self.steps.append(QuantLayer(conv_index, m.kernel_size[0], m.padding[0], w, q,
                                             scale, b, 0.0, 0.0, False))
                i += 2 if bn is not None else 1
                continue
            if isinstance(m, nn.Linear):
                w = m.weight.detach().double()
                b = (m.bias.detach().double() if m.bias is not None
                     else torch.zeros(w.shape[0], dtype=torch.float64))
                q, scale = quantise_weights(w, spec)
                self.steps.append(QuantLayer(max(conv_index, 0), 1, 0, w, q, scale, b, 0.0, 0.0,
                                             True))
            elif isinstance(m, nn.BatchNorm2d):
                raise ValueError(f"module {i} is a BatchNorm2d that follows no Conv2d")
            else:
                self.steps.append(m)
            i += 1
        self.n_gene_layers = conv_index + 1
        self._rng = torch.Generator().manual_seed(0)
        self._group_cache: dict[tuple[int, str], torch.Tensor] = {}
        self._range_cache: dict[tuple[int | None, ...], list[torch.Tensor]] = {}
        self._calibrate_inputs(calib)

    @property
    def layers(self) -> list[QuantLayer]:
        """The crossbar-mapped layers in order (convs, then the classifier)."""
        return [s for s in self.steps if isinstance(s, QuantLayer)]

    @torch.no_grad()
    def _calibrate_inputs(self, calib: torch.Tensor) -> None:
        x = calib.to(self.device, torch.float64)
        pct = self.spec.input_percentile
        first = self.layers[0]
        for step in self.steps:
            if isinstance(step, QuantLayer):
                step.in_hi = max(percentile([x], pct), 1e-12)
                step.in_lo = min(percentile([x], 100.0 - pct), 0.0) if step is first else 0.0
                x = self._float_layer(step, x)
            else:
                x = step(x)

    # ------------------------------------------------------------------ per-layer arithmetic
    def _float_layer(self, layer: QuantLayer, x: torch.Tensor) -> torch.Tensor:
        w = layer.weight.to(x)
        if layer.is_linear:
            return x @ w.T + layer.bias.to(x)
        c_in = x.shape[1]
        weight = w.view(w.shape[0], c_in, layer.kernel, layer.kernel)
        return fn.conv2d(x, weight, layer.bias.to(x), padding=layer.padding)

    def _weights(self, layer: QuantLayer, device: torch.device) -> torch.Tensor:
        """Cell values per row group (G, X, S O) (`group_weights`), cached per layer and device.

        Rows are ordered channel-major (c, kh, kw); group g holds rows [g X, (g + 1) X).
        """
        key = (id(layer), str(device))
        if key not in self._group_cache:
            int8 = int8_matmul(device, 2**self.spec.cell_bits - 1)
            matrices = group_weights(cell_slices(layer.q, self.spec), self.spec.xbar_rows, int8)
            self._group_cache[key] = matrices.to(device)
        return self._group_cache[key]

    def _group_chunk(self, layer: QuantLayer, u: torch.Tensor, bits: int) -> int:
        """Row groups per calibration sample (of `_draw`) for padded inputs u (B, C, H', W').

        The sample's size and layout, and so the calibrated ranges, depend on this chunking: it
        is the one of the grouped convolution this simulator first computed with (a group as
        the Cg consecutive input channels it touches, its partial sums and input planes within
        `max_elements`), kept so that the calibrated ranges stay the same.
        """
        kk = layer.kernel * layer.kernel
        rows, xr = u.shape[1] * kk, self.spec.xbar_rows
        n_groups = math.ceil(rows / xr)
        first = torch.arange(n_groups) * xr
        last = torch.clamp(first + xr, max=rows) - 1
        c_g = int((last // kk - first // kk).max()) + 1
        hw = (u.shape[2] - layer.kernel + 1) * (u.shape[3] - layer.kernel + 1)
        per_group = bits * u.shape[0] * (self.spec.n_slices * layer.q.shape[0] * hw
                                         + c_g * u.shape[2] * u.shape[3])
        return max(1, min(n_groups, self.spec.max_elements // max(1, per_group)))

    def _draw(self, layer: QuantLayer, u: torch.Tensor, bits: int) -> list[list[torch.Tensor]]:
        """Partial sums of images u (B, C, H', W') to record, per chunk of row groups: n =
        min(2^16, all) picks [pixel row, input bit, group, output column], drawn uniformly over
        the chunk's (B bits G, O P) partial sums in the order (image, bit, group; column, pixel).
        """
        n_groups = self._weights(layer, u.device).shape[0]
        o = layer.q.shape[0]
        hw = (u.shape[2] - layer.kernel + 1) * (u.shape[3] - layer.kernel + 1)
        g_chunk = self._group_chunk(layer, u, bits)
        draws = []
        for g0 in range(0, n_groups, g_chunk):
            g_c = min(n_groups, g0 + g_chunk) - g0
            n = min(u.shape[0] * bits * g_c * o * hw, 1 << 16)
            pick = torch.randint(0, u.shape[0] * bits * g_c, (n,), generator=self._rng)
            column = torch.randint(0, o * hw, (n,), generator=self._rng)
            plane = pick // g_c
            picks = [(plane // bits) * hw + column % hw, plane % bits, g0 + pick % g_c,
                     column // hw]
            draws.append([t.to(u.device) for t in picks])
        return draws

    def _crossbar_int(
        self,
        layer: QuantLayer,
        u: torch.Tensor,
        bits: int,
        adc_bits: int | None,
        ranges: torch.Tensor | None,
        record: list[torch.Tensor] | None,
    ) -> torch.Tensor:
        """Signed integer accumulator (B, O, P), float64, for padded integer inputs (B, C, H', W').

        With a b-bit ADC, the exact partial sums (row group x input bit x weight slice x
        column, `adc_accumulate`) are converted to codes and shift-added with coefficients
        2^j 2^(cell_bits k) step_k; the offset encoding's ``2^(wb-1) sum_r u_r`` is subtracted.
        A lossless ADC (adc_bits=None, and the calibration pass) keeps every partial sum, so
        the accumulator is the exact integer convolution ``sum_r u_r q_r``. With `record`
        given, the |partial sums| `_draw` picks per `_image_chunk` images are appended, (S, n)
        each. Images are unfolded a few at a time, within `max_elements`.
        """
        spec = self.spec
        weights = self._weights(layer, u.device)
        width = weights.shape[0] * spec.xbar_rows
        o, k, s = layer.q.shape[0], layer.kernel, spec.n_slices
        hw = (u.shape[2] - k + 1) * (u.shape[3] - k + 1)
        quantise = record is None and adc_bits is not None
        sub = max(1, spec.max_elements // (hw * max(width, s * o)))
        chunk = sub if record is None else self._image_chunk(layer, hw, bits)
        if quantise:
            levels, span = adc_step(ranges, adc_bits, spec)
            coef = 2.0 ** (spec.cell_bits * torch.arange(s, dtype=torch.float64))
            coef = (coef * span / levels).to(u.device)
            codes = adc_code_range(adc_bits, spec)
        q = layer.q.to(u.device)
        ones = torch.ones(1, q.shape[1], dtype=q.dtype, device=u.device)  # row sums
        parts = []
        for i in range(0, u.shape[0], chunk):
            end = min(u.shape[0], i + chunk)
            draws = [] if record is None else self._draw(layer, u[i:end], bits)
            samples = [torch.empty(s, len(d[0]), dtype=torch.float64, device=u.device)
                       for d in draws]
            for s0 in range(i, end, sub):
                s1 = min(end, s0 + sub)
                rows = unfold_rows(u[s0:s1], k, width, bits)
                for (pixel, *pick), sample in zip(draws, samples, strict=True):
                    if (s0, s1) == (i, end):  # the whole chunk at once
                        sample[:] = sampled_partial_sums(rows, weights, s, pixel, *pick)
                        continue
                    idx = torch.nonzero((pixel >= (s0 - i) * hw) & (pixel < (s1 - i) * hw))[:, 0]
                    local = [pixel[idx] - (s0 - i) * hw, *(t[idx] for t in pick)]
                    sample[:, idx] = sampled_partial_sums(rows, weights, s, *local)
                if not quantise:
                    parts.append(exact_products(rows, q))
                    continue
                acc = adc_accumulate(rows, weights, bits, levels, span, codes).view(-1, s, o)
                y = acc[:, 0] * coef[:1]  # float64, summed slice by slice
                for slice_k in range(1, s):
                    y += acc[:, slice_k] * coef[slice_k : slice_k + 1]
                if spec.weight_encoding == "offset":
                    y -= 2 ** (spec.weight_bits - 1) * exact_products(rows, ones)
                parts.append(y)
            if record is not None:
                record.extend(sample.abs() for sample in samples)
        return torch.cat(parts).view(u.shape[0], hw, o).transpose(1, 2)

    def _image_chunk(self, layer: QuantLayer, hw: int, bits: int) -> int:
        """Images per calibration sample (of `_draw`), for a layer of hw output pixels."""
        spec = self.spec
        per_image = (spec.n_slices * layer.q.shape[0] + spec.xbar_rows) * bits * hw
        return max(1, spec.max_elements // max(1, per_image))

    def _quant_layer(
        self,
        layer: QuantLayer,
        x: torch.Tensor,
        bits: int,
        adc_bits: int | None,
        mode: str,
        ranges: torch.Tensor | None,
        record: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        scale, zero = layer.input_quant(bits)
        u = quantise_input(x, scale, zero, bits)
        if layer.is_linear:
            u = u[:, :, None, None]
        elif layer.padding:
            u = fn.pad(u, (layer.padding,) * 4, value=zero)
        o, k = layer.q.shape[0], layer.kernel
        if mode == "fake_quant":
            y_int = fn.conv2d(u - zero, layer.q.to(x).view(o, u.shape[1], k, k))
        else:
            y_int = self._crossbar_int(layer, u, bits, adc_bits, ranges, record)
            y_int = y_int - zero * layer.q.sum(dim=1).to(y_int).view(1, o, 1)
            y_int = y_int.to(x.dtype).view(x.shape[0], o, u.shape[2] - k + 1, u.shape[3] - k + 1)
        if layer.is_linear:
            y_int = y_int.flatten(1)
        shape = (1, o) if layer.is_linear else (1, o, 1, 1)
        w_scale = layer.w_scale.to(x).view(shape)
        return y_int * (scale * w_scale) + layer.bias.to(x).view(shape)

    # ------------------------------------------------------------------ public API
    def _bits(self, values: Sequence[int | None] | int | None, name: str) -> list[int | None]:
        if values is None or isinstance(values, int | np.integer):
            return [None if values is None else int(values)] * self.n_gene_layers
        out = [None if v is None else int(v) for v in np.asarray(values, dtype=object).reshape(-1)]
        if len(out) != self.n_gene_layers:
            raise ValueError(f"{name} has {len(out)} values for {self.n_gene_layers} conv layers")
        return out

    @torch.no_grad()
    def calibrate_adc(
        self, calib: torch.Tensor, input_bits: Sequence[int] | int
    ) -> list[torch.Tensor]:
        """ADC ranges (one (S,) tensor per crossbar layer) for these input precisions.

        Runs the calibration images through the crossbar at `input_bits` with lossless ADCs;
        each layer's range (per weight slice) is the `adc_percentile` of its |partial sums|.
        The ranges do not depend on the ADC bits, so one calibration serves every ADC
        resolution (cached per input-bits setting).
        """
        in_bits = self._bits(input_bits, "input_bits")
        key = tuple(in_bits)
        if key in self._range_cache:
            return self._range_cache[key]
        self._rng.manual_seed(0)
        ranges: list[torch.Tensor] = []
        x = calib.to(self.device, torch.float32)
        for step in self.steps:
            if not isinstance(step, QuantLayer):
                x = step(x)
                continue
            record: list[torch.Tensor] = []
            x = self._quant_layer(step, x, in_bits[step.gene_layer], None, "crossbar", None,
                                  record)
            per_slice = torch.cat(record, dim=1)
            ranges.append(torch.tensor(
                [max(percentile([row], self.spec.adc_percentile), 1.0) for row in per_slice],
                dtype=torch.float64,
            ))
        self._range_cache[key] = ranges
        return ranges

    @torch.no_grad()
    def forward(
        self,
        x: torch.Tensor,
        input_bits: Sequence[int] | int = 8,
        adc_bits: Sequence[int | None] | int | None = None,
        mode: str = "crossbar",
        adc_ranges: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits (B, classes) of normalised images x (B, 3, S, S), computed in x's dtype.

        Args:
            input_bits: per conv layer (or one value for all) input precision p.
            adc_bits: per conv layer (or one value) ADC bits; None = lossless ADC.
            mode: "crossbar", "fake_quant" (quantised weights and inputs, plain conv; ignores
                adc_bits) or "float" (BN-folded float weights, unquantised; reference).
            adc_ranges: from `calibrate_adc`; required in crossbar mode with finite adc_bits.
        """
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not one of {MODES}")
        in_bits = self._bits(input_bits, "input_bits")
        a_bits = self._bits(adc_bits, "adc_bits")
        if mode == "crossbar" and adc_ranges is None and any(b is not None for b in a_bits):
            raise ValueError("finite adc_bits need adc_ranges from calibrate_adc(...)")
        x = x.to(self.device)
        k = 0
        for step in self.steps:
            if not isinstance(step, QuantLayer):
                x = step(x)
                continue
            if mode == "float":
                x = self._float_layer(step, x)
            else:
                g = step.gene_layer
                r = adc_ranges[k] if adc_ranges is not None else None
                x = self._quant_layer(step, x, in_bits[g], a_bits[g], mode, r)
            k += 1
        return x

    __call__ = forward

    @torch.no_grad()
    def correct(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        calib: torch.Tensor,
        input_bits: Sequence[int] | int,
        adc_bits: Sequence[int | None] | int | None,
        mode: str = "crossbar",
    ) -> np.ndarray:
        """Whether each of the normalised `images` is classified as its label (bool (N,)) at
        these precisions: the per-image outcomes that paired comparisons bootstrap over.

        ADC ranges are calibrated on `calib` first (crossbar mode with finite ADC bits).
        """
        ranges = None
        if mode == "crossbar" and any(b is not None for b in self._bits(adc_bits, "adc_bits")):
            ranges = self.calibrate_adc(calib, input_bits)
        hits = []
        bs = self.spec.batch_size
        for start in range(0, len(images), bs):
            logits = self.forward(images[start : start + bs].float(), input_bits, adc_bits, mode,
                                  ranges)
            hits.append((logits.argmax(1).cpu() == labels[start : start + bs]).numpy())
        return np.concatenate(hits) if hits else np.zeros(0, dtype=bool)

    def accuracy_pct(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        calib: torch.Tensor,
        input_bits: Sequence[int] | int,
        adc_bits: Sequence[int | None] | int | None,
        mode: str = "crossbar",
    ) -> float:
        """Top-1 accuracy in % of normalised `images` with `labels` at these precisions (the
        mean of `correct`)."""
        hits = self.correct(images, labels, calib, input_bits, adc_bits, mode)
        return 100.0 * float(hits.sum()) / max(1, len(hits))

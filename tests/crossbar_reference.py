"""The crossbar simulation's first algorithm, kept to check the fast one against (not shipped).

`ReferenceCrossbar` computes a layer as xpert_evo/crossbar/simulate.py did before partial_sums.py:
all row groups of a chunk of images are one grouped float convolution over the input bit-planes
(a group as the Cg consecutive input channels its rows touch, a row of a boundary channel owned
by the neighbour group weighted zero), over chunks of images and of groups within
`max_elements`, sampling |partial sums| for the ADC calibration from the (B bits G, S, O P)
layout of each chunk. Only the arithmetic of a partial sum differs, by `prescaled`:

* False: cell values are integers and the convolution runs in float64, so every partial sum is
  an exact integer; its code is ``round(ps * levels / span)`` in float64, the definition the fast
  path implements (`adc_divisor`).
* True: the original arithmetic. Cell values are divided by the ADC step first and the
  convolution runs in the input's dtype, so a partial sum whose exact quotient is a tie
  (``x.5``) rounds the way that dtype's and the convolution's rounding errors fall.

Both shift-add the codes of a chunk per weight slice in float64 (``sum_g sum_j 2^j code``, exact)
and add the slices' contributions in order in float64, as the fast path does, so
`prescaled=False` must reproduce it bit for bit.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as fn

from xpert_evo.crossbar.quantise import QuantLayer, adc_code_range, adc_step, cell_slices
from xpert_evo.crossbar.simulate import CrossbarNetwork


class ReferenceCrossbar(CrossbarNetwork):
    """`CrossbarNetwork` whose crossbar layers are grouped convolutions over bit-planes.

    Args:
        *args: as `CrossbarNetwork`.
        prescaled: divide the cell values by the ADC step before the convolution, in the input's
            dtype (the original arithmetic), instead of dividing the exact partial sums.
    """

    def __init__(self, *args: object, prescaled: bool = False, **kwargs: object) -> None:
        self.prescaled = prescaled
        self._conv_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        super().__init__(*args, **kwargs)

    def _conv_weights(self, layer: QuantLayer, c_in: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Row groups as a grouped conv: weights (G S O, Cg, K, K) float64, channels (G Cg)."""
        if id(layer) in self._conv_cache:
            return self._conv_cache[id(layer)]
        kk = layer.kernel * layer.kernel
        rows, xr = c_in * kk, self.spec.xbar_rows
        n_groups = math.ceil(rows / xr)
        first = torch.arange(n_groups) * xr
        last = torch.clamp(first + xr, max=rows) - 1
        c0 = first // kk
        c_g = int((last // kk - c0).max()) + 1
        channel = c0[:, None] + torch.arange(c_g)[None, :]
        row = channel[:, :, None] * kk + torch.arange(kk)[None, None, :]
        owned = (row >= first[:, None, None]) & (row <= last[:, None, None])
        slices = cell_slices(layer.q, self.spec)
        w = slices[:, :, row.clamp(max=rows - 1)] * owned  # (S, O, G, Cg, KK)
        s, o = slices.shape[:2]
        w = w.permute(2, 0, 1, 3, 4).reshape(n_groups * s * o, c_g, layer.kernel, layer.kernel)
        self._conv_cache[id(layer)] = (w, channel.clamp(max=c_in - 1).reshape(-1))
        return self._conv_cache[id(layer)]

    def _chunk_codes(
        self,
        layer: QuantLayer,
        u: torch.Tensor,
        bits: int,
        adc_bits: int | None,
        ranges: torch.Tensor | None,
        record: list[torch.Tensor] | None,
    ) -> torch.Tensor:
        """Per-slice shift-added codes (B, S, O, P), float64, of one chunk of images."""
        spec = self.spec
        b, c_in = u.shape[:2]
        weight, channel = self._conv_weights(layer, c_in)
        s, o, k = spec.n_slices, layer.q.shape[0], layer.kernel
        c_g = weight.shape[1]
        n_groups = weight.shape[0] // (s * o)
        hw = (u.shape[2] - k + 1) * (u.shape[3] - k + 1)
        quantise = record is None and adc_bits is not None
        levels, span = adc_step(ranges, adc_bits if quantise else None, spec)
        lo, hi = adc_code_range(adc_bits, spec) if quantise else (None, None)
        dtype = u.dtype if self.prescaled else torch.float64
        w = weight.view(n_groups, s, -1)
        w = w / (span / levels).view(1, s, 1) if self.prescaled and quantise else w
        w = w.to(dtype).view_as(weight)
        ints = torch.uint8 if bits <= 8 else torch.int32
        shifts = torch.arange(bits, dtype=ints).view(1, bits, 1, 1, 1)
        planes = ((u.to(ints).unsqueeze(1) >> shifts) & 1).view(b * bits, c_in, *u.shape[2:])
        bit_w = (2.0 ** torch.arange(bits, dtype=torch.float64)).view(1, bits, 1, 1, 1, 1)
        acc = torch.zeros(b, s, o, hw, dtype=torch.float64)
        per_group = bits * b * (s * o * hw + c_g * u.shape[2] * u.shape[3])
        g_chunk = max(1, min(n_groups, spec.max_elements // max(1, per_group)))
        for g0 in range(0, n_groups, g_chunk):
            g1 = min(n_groups, g0 + g_chunk)
            inp = planes[:, channel[g0 * c_g : g1 * c_g]].to(dtype)
            ps = fn.conv2d(inp, w[g0 * s * o : g1 * s * o], groups=g1 - g0)
            if record is not None:
                flat = ps.view(-1, s, o * hw)
                n = min(flat.shape[0] * flat.shape[2], 1 << 16)
                rows = torch.randint(0, flat.shape[0], (n,), generator=self._rng)
                cols = torch.randint(0, flat.shape[2], (n,), generator=self._rng)
                record.append(flat[rows, :, cols].abs().T.double())
            ps = ps.view(b, bits, g1 - g0, s, o, hw)
            if quantise and self.prescaled:
                ps = ps.round().clamp(lo, hi)
            elif quantise:
                ps = torch.round(ps * levels.view(1, 1, 1, s, 1, 1) / span.view(1, 1, 1, s, 1, 1))
                ps = ps.clamp(lo, hi)
            acc += (ps.double() * bit_w).sum(dim=(1, 2))
        return acc

    def _crossbar_int(
        self,
        layer: QuantLayer,
        u: torch.Tensor,
        bits: int,
        adc_bits: int | None,
        ranges: torch.Tensor | None,
        record: list[torch.Tensor] | None,
    ) -> torch.Tensor:
        """Signed integer accumulator (B, O, P), float64, as `CrossbarNetwork._crossbar_int`."""
        spec = self.spec
        k = layer.kernel
        hw = (u.shape[2] - k + 1) * (u.shape[3] - k + 1)
        per_image = (spec.n_slices * layer.q.shape[0] + spec.xbar_rows) * bits * hw
        chunk = max(1, spec.max_elements // max(1, per_image))
        codes = torch.cat([self._chunk_codes(layer, u[i : i + chunk], bits, adc_bits, ranges,
                                             record) for i in range(0, u.shape[0], chunk)])
        quantise = record is None and adc_bits is not None
        levels, span = adc_step(ranges, adc_bits if quantise else None, spec)
        coef = 2.0 ** (spec.cell_bits * torch.arange(spec.n_slices, dtype=torch.float64))
        coef = coef * span / levels
        b, s, o = codes.shape[:3]
        y = codes[:, 0] * coef[0]
        for slice_k in range(1, s):
            y = y + codes[:, slice_k] * coef[slice_k]
        if spec.weight_encoding == "offset":
            ones = torch.ones((1, u.shape[1], k, k), dtype=torch.float64)
            y = y - 2 ** (spec.weight_bits - 1) * fn.conv2d(u.double(), ones).view(b, 1, hw)
        return y

    def tie_disagreements(
        self,
        images: torch.Tensor,
        input_bits: int,
        adc_bits: int,
        ranges: list[torch.Tensor],
    ) -> tuple[int, int, int]:
        """Over every partial sum of `images` (each layer fed the exact path's inputs): how many
        are exact ties (``ps * levels / span`` ends in .5, within the codes), how many codes the
        original arithmetic (`prescaled`, float32) gives differently from the exact one, and how
        many of those are ties."""
        inputs: list[tuple[QuantLayer, torch.Tensor, torch.Tensor]] = []
        crossbar_int = self._crossbar_int

        def capture(layer: QuantLayer, u: torch.Tensor, *args: object) -> torch.Tensor:
            inputs.append((layer, u, args[2]))
            return crossbar_int(layer, u, *args)

        self._crossbar_int = capture  # type: ignore[method-assign]
        try:
            self.forward(images, input_bits, adc_bits, adc_ranges=ranges)
        finally:
            del self._crossbar_int
        spec, counts = self.spec, [0, 0, 0]
        lo, hi = adc_code_range(adc_bits, spec)
        for layer, u, layer_ranges in inputs:
            weight, channel = self._conv_weights(layer, u.shape[1])
            s, n_groups = spec.n_slices, weight.shape[0] // (spec.n_slices * layer.q.shape[0])
            levels, span = adc_step(layer_ranges, adc_bits, spec)
            shifts = torch.arange(input_bits, dtype=torch.uint8).view(1, -1, 1, 1, 1)
            planes = ((u.to(torch.uint8).unsqueeze(1) >> shifts) & 1).flatten(0, 1)[:, channel]
            exact = fn.conv2d(planes.double(), weight, groups=n_groups)
            exact = exact.view(exact.shape[0], n_groups, s, -1)
            exact = exact * levels.view(1, 1, s, 1) / span.view(1, 1, s, 1)
            prescaled = (weight.view(n_groups, s, -1) / (span / levels).view(1, s, 1)).float()
            old = fn.conv2d(planes.float(), prescaled.view_as(weight), groups=n_groups)
            old = old.view_as(exact).double()
            tie = (exact - exact.floor() == 0.5) & (exact > lo - 0.5) & (exact < hi + 0.5)
            differ = exact.round().clamp(lo, hi) != old.round().clamp(lo, hi)
            counts = [counts[0] + int(tie.sum()), counts[1] + int(differ.sum()),
                      counts[2] + int((differ & tie).sum())]
        return counts[0], counts[1], counts[2]

"""Crossbar partial sums as exact integers, and the ADC applied to them.

`xpert_evo.crossbar.simulate` maps a layer onto crossbars; this module does its arithmetic.
A layer's unfolded inputs (``rows``: im2col, one row per image pixel, the R = Cin K K columns in
(c, kh, kw) order, zero-padded to G X columns) are split into G groups of X = `xbar_rows`
columns; group g is one crossbar. Its weights are the cell values of the same rows
(`group_weights`: (G, X, S O), zero past R). For input bit j and weight slice k, the partial
sum a crossbar column digitises is ``ps = sum_{r in group} bit_j(u_r) cell_k(r)``: at most X
products of a bit and a cell value, an integer with ``|ps| <= X (2^cell_bits - 1)``.

**Exact arithmetic.** Partial sums are computed as integers, in any summation order:

* On the CPU, as an int8 x int8 -> int32 matrix product (`torch._int_mm`): input bits (fed as
  0/1, or as ``u & 2^j``, at most 128 in magnitude) and cell values (differential
  -(2^cb - 1)..2^cb - 1, offset 0..2^cb - 1) fit int8 while ``cell_bits <= 7``, and an int32
  sum of X < 2^17 such products cannot overflow. With AVX512-VNNI it is several times faster
  than the float32 convolution it replaces (bench/timing/crossbar_speed.py,
  docs/results/crossbar_speed.md). `_int_mm` is a private torch API, so it is used only where
  it exists and works (`int8_matmul`).
* Elsewhere (CUDA, wider cells, a torch without `_int_mm`), as a float32 product: exact while
  ``|ps| < 2^24``, which `group_weights` checks.

The ADC's code is ``round(ps * levels / span)`` (step = span / levels, `adc_step`), rounded half
to even and clipped (`adc_accumulate`): computed in float64, or in float32 where that gives the
same code to every partial sum the layer can produce (`adc_divisor` checks them all). The codes
are summed with their bit weights 2^j, exactly (in float64 unless every sum stays below 2^24).
With a lossless ADC the crossbar computes the plain integer convolution, which
`exact_products` evaluates directly; `sampled_partial_sums` gives the ADC range calibration
single partial sums picked at random.
"""

from __future__ import annotations

import functools
import math

import torch

INT8_MAX = 127
"""Largest int8 value: bound on cell values and inputs of the int8 product."""

FLOAT32_EXACT = 2**24
"""float32 represents every integer of magnitude up to 2^24 exactly (24-bit significand)."""

TILE_ELEMENTS = 1 << 18
"""Partial sums converted per step of `adc_accumulate`: as int32, 1 MiB, a core's L2 cache on
the AMD EPYC this was tuned on, so the ADC's elementwise passes stay in cache (and temporaries
stay small enough for the allocator to reuse)."""

SAMPLE_ELEMENTS = 1 << 22
"""Partial sums computed per matrix product of `sampled_partial_sums` (every column of the
picks' rows, of which it keeps one per slice): 16 MiB as int32, few enough products that their
Python overhead is small, below glibc's largest mmap threshold (32 MiB) so the blocks are
reused rather than mapped afresh."""


@functools.cache
def _int_mm_works() -> bool:
    """Whether this torch has a CPU `torch._int_mm` that multiplies exactly (a private API)."""
    a = torch.arange(-64, 64, dtype=torch.int8).view(4, 32)
    b = torch.arange(32 * 3, dtype=torch.int64).remainder(7).sub(3).to(torch.int8).view(32, 3)
    try:
        product = torch._int_mm(a, b)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    return torch.equal(product.long(), a.long() @ b.long())


def int8_matmul(device: torch.device, bound: int) -> bool:
    """Whether partial sums are computed by the int8 product (`torch._int_mm`) on `device`.

    Only on the CPU, where it works: `_int_mm` is a private torch API whose CUDA kernel has
    shape constraints (more than 16 rows, dimensions multiples of 8) that the float path does
    not need, and a GPU is fast enough in float32. `bound` is the largest |cell value|; it
    must fit int8.
    """
    return device.type == "cpu" and bound <= INT8_MAX and _int_mm_works()


def unfold_rows(u: torch.Tensor, kernel: int, width: int, bits: int) -> torch.Tensor:
    """im2col of `bits`-bit integer-valued inputs (B, C, H', W'): (B H W, width), uint8 (int32
    above 8 bits).

    Row b H W + h W + w holds the K x K window at (h, w), columns in (c, kh, kw) order (the
    `fn.unfold` order), then zeros up to `width` (a whole number of row groups). One strided
    copy per kernel tap: several times faster than one copy of the 6-d window view, whose
    innermost run is only K long.
    """
    b, c, hp, wp = u.shape
    h, w = hp - kernel + 1, wp - kernel + 1
    ints = u.to(torch.uint8 if bits <= 8 else torch.int32)
    r = c * kernel * kernel
    rows = (torch.empty if width == r else torch.zeros)(b * h * w, width, dtype=ints.dtype,
                                                        device=u.device)
    taps = rows[:, :r].view(b, h, w, c, kernel, kernel)
    for kh in range(kernel):
        for kw in range(kernel):
            taps[..., kh, kw].copy_(ints[:, :, kh : kh + h, kw : kw + w].permute(0, 2, 3, 1))
    return rows


def group_weights(slices: torch.Tensor, xbar_rows: int, int8: bool) -> torch.Tensor:
    """Cell values (S, O, R) as one matrix per row group: (G, X, S O), zero past row R.

    Column k O + o of group g holds slice k of output o on the group's X rows: int8 for the
    int8 product, float32 otherwise (the partial sums must then stay below 2^24).
    """
    s, o, r = slices.shape
    n_groups = math.ceil(r / xbar_rows)
    if xbar_rows * float(slices.abs().max()) >= FLOAT32_EXACT:
        raise ValueError(f"partial sums of {xbar_rows} rows can reach 2^24: not exact in float32")
    padded = torch.zeros(s, o, n_groups * xbar_rows, dtype=torch.float64)
    padded[:, :, :r] = slices
    matrices = padded.view(s * o, n_groups, xbar_rows).permute(1, 2, 0)
    return matrices.to(torch.int8 if int8 else torch.float32).contiguous()


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact integer product of integer matrices: int32 from int8 operands, else float."""
    return torch._int_mm(a, b) if a.dtype == torch.int8 else a @ b


def _bits(rows: torch.Tensor, shifts: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Bit `shifts` of integer `rows` (broadcast), 0 or 1, as `dtype` (int8 or float)."""
    bits = (rows >> shifts.to(rows.dtype)) & 1
    if dtype == torch.int8 and bits.dtype == torch.uint8:
        return bits.view(torch.int8)  # 0/1: the same bytes
    return bits.to(dtype)


def adc_divisor(
    levels: torch.Tensor, span: torch.Tensor, bound: int, signed: bool, wide: bool
) -> tuple[torch.Tensor | None, torch.Tensor, torch.dtype]:
    """How `adc_codes` divides partial sums by the step span / levels: (multiplier or None,
    divisor, dtype), the cheapest form that gives every partial sum in range the code of the
    float64 ``round(ps * levels / span)``.

    That reference is exact wherever the span is an integer (as calibrated ranges, percentiles
    of integers, often are): a partial sum exactly on a decision boundary then rounds half to
    even, not the way the rounding of the step happens to fall. Tried in turn, each checked on
    all 2 bound + 1 (signed) or bound + 1 partial sums: one float32 division by the step, a
    float32 product and division, float64 (the reference itself). `wide` (sums of codes that
    float32 cannot hold exactly) goes straight to float64.
    """
    values = torch.arange(-bound if signed else 0, bound + 1, dtype=torch.float64)[None, :]
    reference = torch.round(values * levels[:, None] / span[:, None])
    forms = [] if wide else [(None, (span / levels).float()), (levels.float(), span.float())]
    for mult, div in forms:
        fast = values.float() if mult is None else values.float() * mult[:, None]
        if torch.equal(torch.round(fast / div[:, None]).double(), reference):
            return mult, div, torch.float32
    return levels, span, torch.float64


def adc_codes(
    ps: torch.Tensor,
    mult: torch.Tensor | None,
    div: torch.Tensor,
    codes: tuple[int, int],
    out: torch.Tensor,
) -> torch.Tensor:
    """ADC codes of integer partial sums into `out` (same shape, float32 or float64):
    ``clip(round(ps * mult / div), *codes)``, rounded half to even (`mult` None for 1; `mult`
    and `div` broadcast)."""
    if mult is None:
        torch.div(ps, div, out=out)
    else:
        torch.mul(ps, mult, out=out).div_(div)
    return out.round_().clamp_(*codes)


def adc_accumulate(
    rows: torch.Tensor,
    weights: torch.Tensor,
    bits: int,
    levels: torch.Tensor,
    span: torch.Tensor,
    codes: tuple[int, int],
) -> torch.Tensor:
    """Shift-added ADC codes (T, S O): ``sum_g sum_j 2^j code(ps[g, j, k, o])``.

    Args:
        rows: (T, G X) unfolded integer inputs (`unfold_rows`).
        weights: (G, X, S O) cell values (`group_weights`).
        bits: input bits, fed one bit-plane at a time.
        levels, span: (S,) float64: the ADC step of slice k is span_k / levels_k partial-sum
            LSBs (`adc_divisor`).
        codes: smallest and largest ADC code.

    The partial sums of a few rows at a time (`TILE_ELEMENTS`) are computed exactly, converted
    to codes and summed with their bit weights, exactly in float32 or float64. Bit-plane j is
    fed as ``u & 2^j`` (one pass, not a shift and a mask): its partial sums are 2^j times the
    bits', and so is its divisor, which leaves every quotient as it was (scaling by a power of
    two is exact); as int8, ``u & 128`` reads -128, so that plane's divisor is negated.
    """
    n_groups, xbar_rows, n = weights.shape
    lo, hi = codes
    wide = n_groups * (2**bits - 1) * max(-lo, hi) >= FLOAT32_EXACT
    bound = xbar_rows * int(weights.abs().max())
    mult, div, dtype = adc_divisor(levels, span, bound, lo < 0, wide)
    device = rows.device
    per_column = n // levels.numel()
    int8 = weights.dtype == torch.int8 and rows.dtype == torch.uint8
    weights = weights if int8 or weights.dtype != torch.int8 else weights.float()
    plane_scale = 2.0 ** torch.arange(bits, dtype=torch.float64)
    if int8:
        plane_scale[7:] = -plane_scale[7:]  # bit 7 of a uint8 read as int8
    div = div.double().repeat_interleave(per_column)[None, None, :] * plane_scale[:, None, None]
    div = div.to(device, dtype)
    if mult is not None:
        mult = mult.repeat_interleave(per_column).to(device)
    masks = (2 ** torch.arange(bits, device=device)).to(rows.dtype).view(bits, 1, 1)
    coef = (2.0 ** torch.arange(bits, dtype=torch.float64)).view(1, bits).to(device, dtype)
    out = torch.empty(rows.shape[0], n, dtype=dtype, device=device)
    tile = max(1, TILE_ELEMENTS // (bits * n))
    buffer = torch.empty(bits, min(tile, rows.shape[0]), n, dtype=dtype, device=device)
    for t0 in range(0, rows.shape[0], tile):
        t1 = min(rows.shape[0], t0 + tile)
        planes = rows[t0:t1].unsqueeze(0) & masks
        planes = planes.view(torch.int8) if int8 else planes.to(weights.dtype)
        planes = planes.view(bits * (t1 - t0), -1)
        acc = out[t0:t1].view(1, -1)
        scratch = buffer.view(-1)[: bits * (t1 - t0) * n].view(bits, t1 - t0, n)
        for g in range(n_groups):
            ps = _product(planes[:, g * xbar_rows : (g + 1) * xbar_rows], weights[g])
            adc = adc_codes(ps.view(bits, t1 - t0, n), mult, div, codes, scratch).view(bits, -1)
            if g:
                acc.addmm_(coef, adc)
            else:
                torch.mm(coef, adc, out=acc)
    return out


def exact_products(rows: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Exact ``rows @ q.T`` (T, O) in float64 for unfolded inputs (T, width) and integer weights
    (O, R), R <= width (the lossless crossbar: every partial sum kept).

    Inputs up to 255 and weights within int8 use the int8 product on the CPU: ``u - 128``
    fits int8 (``u XOR 128``, read as int8), and ``128 sum_r q_r`` is added back; int32 holds
    the sums while ``128 * 127 * width < 2^31``. Otherwise float64, exact below 2^53.
    """
    o, r = q.shape
    padded = torch.zeros(rows.shape[1], o, dtype=torch.float64)
    padded[:r] = q.T
    fits = (rows.dtype == torch.uint8 and float(q.abs().max()) <= INT8_MAX
            and 128 * INT8_MAX * rows.shape[1] < 2**31)
    if fits and int8_matmul(rows.device, INT8_MAX):
        centred = (rows ^ 128).view(torch.int8)
        out = torch._int_mm(centred, padded.to(torch.int8)).double()
        return out + 128 * padded.sum(dim=0)
    return rows.double() @ padded.to(rows.device)


def sampled_partial_sums(
    rows: torch.Tensor,
    weights: torch.Tensor,
    n_slices: int,
    pixel: torch.Tensor,
    bit: torch.Tensor,
    group: torch.Tensor,
    column: torch.Tensor,
) -> torch.Tensor:
    """Exact partial sums (S, n) at n picked (row of `rows`, input bit, group, output column).

    The picks of one group gather their X inputs and share matrix products with the group's
    cell values, a block at a time (`SAMPLE_ELEMENTS`).
    """
    n_groups, xbar_rows, n = weights.shape
    o = n // n_slices
    by_group = rows.view(-1, xbar_rows)
    ints = torch.int8 if weights.dtype == torch.int8 else weights.dtype
    slices = torch.arange(n_slices, device=rows.device)[None, :] * o
    out = torch.empty(len(pixel), n_slices, dtype=torch.float64, device=rows.device)
    block = max(1, SAMPLE_ELEMENTS // n)
    first, last = (int(group.min()), int(group.max())) if len(group) else (0, -1)
    for g in range(first, last + 1):
        picks = torch.nonzero(group == g).view(-1)
        for i in range(0, len(picks), block):
            idx = picks[i : i + block]
            inputs = by_group.index_select(0, pixel[idx] * n_groups + g)
            planes = _bits(inputs, bit[idx][:, None], ints)
            ps = _product(planes, weights[g])
            out[idx] = ps.gather(1, slices + column[idx][:, None]).double()
    return out.T

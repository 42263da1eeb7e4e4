"""The crossbar simulation's integer arithmetic: exact, and the same results as the grouped
convolution it replaced (tests/crossbar_reference.py), bit for bit, on a trained network."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch
from crossbar_reference import ReferenceCrossbar
from torch import nn
from torch.nn import functional as fn

from xpert_evo.crossbar import partial_sums, simulate
from xpert_evo.crossbar.evaluate import spread
from xpert_evo.crossbar.partial_sums import (
    adc_accumulate,
    adc_codes,
    adc_divisor,
    exact_products,
    group_weights,
    sampled_partial_sums,
    unfold_rows,
)
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.crossbar.simulate import CrossbarNetwork
from xpert_evo.space import VGG16_CHANNELS
from xpert_evo.training.data import DataSpec
from xpert_evo.training.train import TrainSpec, budget_splits, train_network

MIXED_INPUT = [8, 4, 6, 5, 2, 7, 6, 4, 8, 5, 3, 6, 5]
MIXED_ADC = [6, 3, 5, 8, 4, 7, 3, 6, 5, 4, 3, 8, 6]
SETTINGS = [(8, 6), (4, 3), (MIXED_INPUT, MIXED_ADC), (6, None)]
"""(input bits, ADC bits): the reference design's 8 / 6, a coarse one, a different precision
per layer, and a lossless ADC."""


@pytest.fixture(scope="module")
def trained(
    cifar10_zip: Path, data_cache: Path
) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor, torch.Tensor]:
    """VGG16 at 1/16 width (4..32 channels) trained for 5 epochs on 200 CIFAR-10 images per
    class (about 34 % accurate, 3x chance), with 50 test images and 40 calibration images."""
    data = DataSpec(root=str(cifar10_zip.parent), allow_data_free=False)
    spec = TrainSpec(epochs=5, train_per_class=200, test_per_class=5, width_mult=0.0625,
                     batch_size=64, lr=0.05, num_threads=1)
    model = train_network(VGG16_CHANNELS, data, spec, seed=0, cache_dir=data_cache).model
    splits = budget_splits(data, spec, data_cache)
    calib = splits.train.normalised(spread(len(splits.train), 40))
    return model, splits.test.normalised(), torch.from_numpy(splits.test.labels), calib


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in %."""
    return 100.0 * float((logits.argmax(1) == labels).double().mean())


@pytest.mark.parametrize("encoding", ["differential", "offset"])
def test_trained_network_gives_the_reference_results_bit_for_bit(trained, encoding) -> None:
    """Same calibrated ADC ranges, logits and accuracy as the grouped convolution, at four
    precision settings; the accuracies are those of a network far from chance."""
    model, images, labels, calib = trained
    spec = CrossbarSpec(weight_encoding=encoding)
    fast, reference = (cls(model, spec, calib) for cls in (CrossbarNetwork, ReferenceCrossbar))
    accuracies = []
    for input_bits, adc_bits in SETTINGS:
        ranges = fast.calibrate_adc(calib, input_bits)
        expected_ranges = reference.calibrate_adc(calib, input_bits)
        assert all(torch.equal(a, b) for a, b in zip(ranges, expected_ranges, strict=True))
        logits = fast(images, input_bits, adc_bits, adc_ranges=ranges)
        expected = reference(images, input_bits, adc_bits, adc_ranges=expected_ranges)
        assert torch.equal(logits, expected), (input_bits, adc_bits)
        accuracies.append(_accuracy(logits, labels))
    float_accuracy = _accuracy(fast(images, mode="float"), labels)
    assert float_accuracy > 25.0 and accuracies[0] > 20.0, (float_accuracy, accuracies)


def test_old_float32_arithmetic_differs_from_the_exact_codes_only_at_ties(trained) -> None:
    """What the exact path changes: with offset cells (range / (2^b - 1) steps) some partial sums
    lie exactly on an ADC decision boundary; the original arithmetic (cell values divided by the
    step in float32) rounds some of those the other way, and no other partial sum."""
    model, images, _, calib = trained
    reference = ReferenceCrossbar(model, CrossbarSpec(weight_encoding="offset"), calib)
    ranges = reference.calibrate_adc(calib, 5)
    ties, differing, at_ties = reference.tie_disagreements(images[:20], 5, 4, ranges)
    assert ties > 0 and differing == at_ties, (ties, differing, at_ties)


@pytest.fixture(scope="module")
def seeded() -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """Three conv layers (3 -> 16 -> 64 -> 4 channels: a wide input to a narrow output) and a
    classifier, BatchNorm statistics from real passes; images and calibration images."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for c_in, c_out in ((3, 16), (16, 64), (64, 4)):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU()]
    net = nn.Sequential(*layers, nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 10))
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 3, 8, 8))
    gen = torch.Generator().manual_seed(1)
    return net.eval(), torch.randn(12, 3, 8, 8, generator=gen), torch.randn(20, 3, 8, 8,
                                                                           generator=gen)


@pytest.mark.parametrize("encoding", ["differential", "offset"])
@pytest.mark.parametrize(
    "hardware",
    [{"xbar_rows": 20}, {"xbar_rows": 128, "cell_bits": 2}, {"cell_bits": 8},
     {"max_elements": 30_000}],
    ids=["rows20", "2bit-cells", "8bit-cells-float", "tiny-budget"],
)
def test_other_hardware_gives_the_reference_results(seeded, encoding, hardware) -> None:
    """Row groups that split a channel's taps, four weight slices, cells too wide for int8 (the
    float product, as on a GPU) and a small memory budget (2-bit inputs of the 64-channel layer:
    its calibration sample spans 3 images, unfolded one at a time): bit for bit."""
    net, images, calib = seeded
    spec = CrossbarSpec(weight_encoding=encoding, **hardware)
    fast, reference = (cls(net, spec, calib) for cls in (CrossbarNetwork, ReferenceCrossbar))
    for input_bits, adc_bits in (([6, 2, 2], [5, 3, 4]), (8, 7)):
        ranges = fast.calibrate_adc(calib, input_bits)
        expected_ranges = reference.calibrate_adc(calib, input_bits)
        assert all(torch.equal(a, b) for a, b in zip(ranges, expected_ranges, strict=True))
        logits = fast(images, input_bits, adc_bits, adc_ranges=ranges)
        expected = reference(images, input_bits, adc_bits, adc_ranges=expected_ranges)
        assert torch.equal(logits, expected)


def test_float_product_gives_the_int8_results(seeded, monkeypatch) -> None:
    """Without the int8 product (a GPU, or a torch without `_int_mm`) nothing changes."""
    net, images, calib = seeded
    spec = CrossbarSpec(weight_encoding="offset")
    results = []
    for int8 in (True, False):
        if not int8:
            monkeypatch.setattr(partial_sums, "int8_matmul", lambda device, bound: False)
            monkeypatch.setattr(simulate, "int8_matmul", lambda device, bound: False)
        xbar = CrossbarNetwork(net, spec, calib)
        ranges = xbar.calibrate_adc(calib, [7, 3, 5])
        results.append((ranges, xbar(images, [7, 3, 5], [4, 6, 3], adc_ranges=ranges)))
        assert (xbar._weights(xbar.layers[0], torch.device("cpu")).dtype == torch.int8) == int8
    assert all(torch.equal(a, b) for a, b in zip(results[0][0], results[1][0], strict=True))
    assert torch.equal(results[0][1], results[1][1])


@pytest.mark.parametrize("int8", [True, False])
@pytest.mark.parametrize("bits", [5, 10])
def test_partial_sums_equal_a_float64_computation(int8, bits) -> None:
    """Every partial sum, the ADC-coded shift-add and the lossless products, against float64
    on the unfolded inputs; 10-bit inputs take the int32 rows (no int8 products)."""
    gen = torch.Generator().manual_seed(2)
    xbar_rows, n_slices, o, c = 16, 2, 5, 11
    r = c * 9
    u = torch.randint(0, 2**bits, (3, c, 6, 6), generator=gen).float()
    slices = torch.randint(-15, 16, (n_slices, o, r), generator=gen).double()
    q = torch.randint(-127, 128, (o, r), generator=gen).double()
    weights = group_weights(slices, xbar_rows, int8)
    n_groups = weights.shape[0]
    rows = unfold_rows(u, 3, n_groups * xbar_rows, bits)
    unfolded = fn.unfold(u.double(), 3).transpose(1, 2).reshape(-1, r)
    assert torch.equal(rows[:, :r].double(), unfolded) and not rows[:, r:].any()
    assert torch.equal(exact_products(rows, q), unfolded @ q.T)

    # ps[j, t, g, k, o] in float64
    planes = torch.stack([torch.floor(unfolded / 2**j) % 2 for j in range(bits)])
    padded = fn.pad(planes, (0, n_groups * xbar_rows - r)).view(bits, -1, n_groups, xbar_rows)
    cells = fn.pad(slices, (0, n_groups * xbar_rows - r)).view(n_slices, o, n_groups, xbar_rows)
    ps = torch.einsum("jtgx,kogx->jtgko", padded, cells)
    j, t, g, col = (i.reshape(-1) for i in torch.meshgrid(
        *(torch.arange(n) for n in ps.shape[:3]), torch.arange(o), indexing="ij"))
    sampled = sampled_partial_sums(rows, weights, n_slices, t, j, g, col)
    assert torch.equal(sampled, ps.permute(3, 0, 1, 2, 4).reshape(n_slices, -1))

    levels = torch.tensor([7.0, 4.0], dtype=torch.float64)  # 30 / 7: partial sum 15 is a tie
    span = torch.tensor([30.0, 26.0], dtype=torch.float64)
    codes = (-8, 7)
    expected_codes = torch.round(ps * levels.view(1, 1, 1, -1, 1) / span.view(1, 1, 1, -1, 1))
    weights_2 = (2.0 ** torch.arange(bits, dtype=torch.float64)).view(-1, 1, 1, 1, 1)
    expected = (expected_codes.clamp(*codes) * weights_2).sum(dim=(0, 2)).reshape(-1, n_slices * o)
    assert torch.equal(adc_accumulate(rows, weights, bits, levels, span, codes).double(), expected)


@pytest.mark.parametrize(
    ("levels", "span", "ties"),
    [(7, 30, True), (7, 258, True), (4, 48, True), (31, 100, True), (4, 100.5, False),
     (1, 1, False), (127, 1001, False)],
)
def test_adc_codes_round_the_exact_quotient_half_to_even(levels, span, ties) -> None:
    """Codes are ``round(ps * levels / span)`` of the exact rational quotient, ties to even,
    whichever form `adc_divisor` picks; with an integer span, ties such as 15 * 7 / 30 = 3.5
    occur (a float32 step 30 / 7 would round some of them the other way)."""
    bound = 960
    ps = torch.arange(-bound, bound + 1, dtype=torch.int32)[:, None]
    quotients = [Fraction(v * levels) / Fraction(span) for v in range(-bound, bound + 1)]
    assert any(x.denominator == 2 for x in quotients) == ties
    for wide in (False, True):
        mult, div, dtype = adc_divisor(torch.tensor([float(levels)], dtype=torch.float64),
                                       torch.tensor([float(span)], dtype=torch.float64),
                                       bound, signed=True, wide=wide)
        out = torch.empty(ps.shape, dtype=dtype)
        codes = adc_codes(ps, mult, div, (-bound, bound), out)[:, 0].long().tolist()
        assert codes == [round(x) for x in quotients]

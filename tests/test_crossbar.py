"""Crossbar evaluation: exact in the lossless limit, monotone in ADC bits, readable errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xpert_evo.config import ConfigError
from xpert_evo.crossbar.evaluate import spread
from xpert_evo.crossbar.partial_sums import adc_codes, adc_divisor
from xpert_evo.crossbar.quantise import CrossbarSpec, adc_code_range, adc_step
from xpert_evo.crossbar.simulate import CrossbarNetwork
from xpert_evo.training.network import build_network

MIXED_BITS = [8, 3, 5, 8, 2, 7, 6, 4, 8, 5, 3, 6, 8]
"""Per-layer input bits that differ between layers (the classifier uses the last value)."""


@pytest.fixture(scope="module")
def network() -> nn.Sequential:
    """A small network (8 channels per layer) whose BatchNorm statistics come from real passes."""
    torch.manual_seed(0)
    net = build_network([64] * 13, width_mult=0.125)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the passes below
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(32, 3, 32, 32))
    return net.eval()


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """(evaluation images, calibration images), Gaussian like normalised pixels."""
    gen = torch.Generator().manual_seed(1)
    return torch.randn(32, 3, 32, 32, generator=gen), torch.randn(32, 3, 32, 32, generator=gen)


def test_float_mode_reproduces_the_trained_network(network, images) -> None:
    x, calib = images
    xbar = CrossbarNetwork(network, CrossbarSpec(), calib)
    with torch.no_grad():
        expected = network(x.double().float()).double()
    assert torch.allclose(xbar(x.double(), mode="float"), expected, atol=1e-4)
    assert len(xbar.layers) == 14 and xbar.layers[-1].is_linear


@pytest.mark.parametrize("encoding", ["differential", "offset"])
@pytest.mark.parametrize("rows", [64, 20])
def test_lossless_crossbar_equals_fake_quantised_convolution(network, images, encoding, rows):
    """Bit-serial inputs, weight slices, row groups and shift-add change nothing when the ADC is
    lossless: the outputs equal a plain convolution on the same quantised values (float64)."""
    x, calib = images
    x = x[:8]  # exactness needs few images
    spec = CrossbarSpec(weight_encoding=encoding, xbar_rows=rows)
    xbar = CrossbarNetwork(network, spec, calib)
    for bits in (8, MIXED_BITS):
        fake = xbar(x.double(), bits, None, mode="fake_quant")
        crossbar = xbar(x.double(), bits, None, mode="crossbar")
        assert torch.allclose(crossbar, fake, rtol=1e-12, atol=1e-9)
        # a 24-bit ADC (step 1, codes far beyond any partial sum) goes through every partial sum
        # of the row groups, bit-planes and slices, and loses nothing either
        fine = xbar(x.double(), bits, 24, adc_ranges=xbar.calibrate_adc(calib, bits))
        assert torch.allclose(fine, fake, rtol=1e-12, atol=1e-9)
    # 8-bit fake quantisation stays close to the float network, 2-bit does not
    ref = xbar(x.double(), mode="float")
    err8 = (xbar(x.double(), 8, None, mode="fake_quant") - ref).pow(2).mean()
    err2 = (xbar(x.double(), 2, None, mode="fake_quant") - ref).pow(2).mean()
    assert err8 < 0.05 * ref.pow(2).mean() and err2 > 10 * err8


def test_first_layer_input_is_signed_with_a_zero_point(network, images) -> None:
    _, calib = images
    xbar = CrossbarNetwork(network, CrossbarSpec(), calib)
    first, second = xbar.layers[:2]
    assert first.in_lo < 0 < first.in_hi and second.in_lo == 0 < second.in_hi
    scale, zero = first.input_quant(8)
    assert 0 < zero < 255 and scale == pytest.approx((first.in_hi - first.in_lo) / 255)


@pytest.mark.parametrize(("encoding", "saturated"), [("differential", 0), ("offset", 2)])
def test_adc_error_shrinks_as_adc_bits_grow(network, images, encoding, saturated) -> None:
    """Mean squared logit error vs the lossless crossbar falls strictly from 3 to 8 ADC bits.

    Offset-encoded partial sums carry a large constant, so at 3-4 bits the output is already
    noise (error saturated, not ordered); from 5 bits on the error falls strictly there too.
    """
    x, calib = images
    xbar = CrossbarNetwork(network, CrossbarSpec(weight_encoding=encoding), calib)
    lossless = xbar(x, 8, None)
    errors = []
    for bits in range(3, 9):
        ranges = xbar.calibrate_adc(calib, 8)
        errors.append(float((xbar(x, 8, bits, adc_ranges=ranges) - lossless).pow(2).mean()))
    ordered = errors[saturated:]
    assert all(a > b for a, b in zip(ordered, ordered[1:], strict=False)), errors
    assert min(errors[:saturated + 1]) >= ordered[0] and errors[-1] < 0.05 * errors[0]


def test_adc_quantiser_steps_and_clips() -> None:
    """3-bit signed ADC over a range of 100: step 25, codes -4..3; never finer than 1 LSB."""
    spec = CrossbarSpec(weight_encoding="differential")
    levels, span = adc_step(torch.tensor([100.0, 2.0], dtype=torch.float64), 3, spec)
    assert (span / levels).tolist() == [25.0, 1.0]
    ps = torch.tensor([[-300, -20, 0, 12, 13, 300], [-9, -1, 0, 1, 2, 9]], dtype=torch.int32).T
    mult, div, dtype = adc_divisor(levels, span, 300, signed=True, wide=False)
    codes = adc_codes(ps, mult, div, adc_code_range(3, spec), torch.empty(ps.shape, dtype=dtype))
    assert codes[:, 0].tolist() == [-4, -1, 0, 0, 1, 3]
    assert codes[:, 1].tolist() == [-4, -1, 0, 1, 2, 3]
    assert (torch.stack(adc_step(torch.tensor([100.0]), None, spec)) == 1).all()
    assert adc_code_range(3, CrossbarSpec(weight_encoding="offset")) == (0, 7)


def test_bad_precisions_and_missing_ranges_are_readable_errors(network, images) -> None:
    x, calib = images
    xbar = CrossbarNetwork(network, CrossbarSpec(), calib)
    with pytest.raises(ValueError, match="input_bits has 3 values for 13 conv layers"):
        xbar(x, [8, 8, 8], None)
    with pytest.raises(ValueError, match="calibrate_adc"):
        xbar(x, 8, 6)
    with pytest.raises(ValueError, match="weight_encoding"):
        CrossbarSpec(weight_encoding="twos")
    with pytest.raises(ConfigError, match=r"unknown config key crossbar\.adc_bit; allowed"):
        CrossbarSpec.from_config({"adc_bit": 4})


def test_spec_takes_hardware_constants_and_spread_is_balanced() -> None:
    spec = CrossbarSpec.from_config({"calib_images": 8}, {"xbar_rows": 128, "cell_bits": 2,
                                                          "weight_bits": 8, "name": "x"})
    assert (spec.xbar_rows, spec.cell_bits, spec.n_slices, spec.calib_images) == (128, 2, 4, 8)
    offset = CrossbarSpec.from_config({}, {"weight_encoding": "offset"})
    assert offset.weight_encoding == "offset"
    with pytest.raises(ValueError, match="set hardware.weight_encoding instead"):
        CrossbarSpec.from_config({"weight_encoding": "differential"}, {"weight_encoding": "offset"})
    picks = spread(10_000, 1000)
    assert len(picks) == 1000 and picks[0] == 0 and picks[-1] == 9999
    assert (torch.bincount(torch.from_numpy(picks // 1000)) == 100).all()

"""Network builder and zero-cost proxies: shapes, determinism, reference range, degenerate nets."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from xpert_evo.accuracy.batch import noise_batch, proxy_batch
from xpert_evo.accuracy.proxies import (
    PROXIES,
    Proxy,
    naswot,
    param_count,
    score_architecture,
    synflow,
)
from xpert_evo.accuracy.surrogate import channel_features
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone
from xpert_evo.training.network import build_network

NARROW = [64] * 13


def test_network_follows_the_backbone() -> None:
    net = build_network(VGG16_CHANNELS)
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == list(VGG16_CHANNELS)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net) == 13
    pools = [i for i, m in enumerate(net) if isinstance(m, nn.MaxPool2d)]
    assert [sum(isinstance(m, nn.Conv2d) for m in net[:p]) for p in pools] == [2, 4, 7, 10]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    tiny = build_network(NARROW, Backbone(input_size=64, num_classes=200), width_mult=0.25)
    assert tiny(torch.zeros(1, 3, 64, 64)).shape == (1, 200)
    assert all(m.out_channels == 16 for m in tiny if isinstance(m, nn.Conv2d))
    with pytest.raises(ValueError, match="13 conv layers"):
        build_network([64] * 12)


def test_naswot_is_deterministic_for_a_seed() -> None:
    batch = noise_batch(16, 32, seed=0).images
    a = score_architecture("naswot", NARROW, batch, seed=7)
    b = score_architecture("naswot", NARROW, batch, seed=7)
    c = score_architecture("naswot", NARROW, batch, seed=8)
    assert a == b and a != c and math.isfinite(a)


def test_naswot_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    score_architecture("naswot", NARROW, noise_batch(4, 32).images, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_naswot_matches_xpert_reference_on_real_cifar10(
    cifar10_zip: Path, data_cache: Path
) -> None:
    batch = proxy_batch({"root": str(cifar10_zip.parent)}, 128, 0, data_cache).images
    vgg16 = score_architecture("naswot", VGG16_CHANNELS, batch, seed=0)
    narrow = score_architecture("naswot", NARROW, batch, seed=0)
    assert vgg16 == pytest.approx(1490.6, rel=0.02)
    assert narrow == pytest.approx(1430.0, rel=0.02)
    assert narrow < vgg16


def test_singular_kernel_gives_worst_score_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    net = build_network(NARROW)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()
    batch = noise_batch(8, 32).images
    assert naswot(net, batch) == -math.inf
    nan_proxy = Proxy("nan", lambda _n, _b: float("nan"), False, -5.0, 1, "test")
    with caplog.at_level(logging.WARNING):
        score = score_architecture(nan_proxy, NARROW, batch)
    assert score == -5.0
    assert "degenerate" in caplog.text
    assert all(math.isfinite(p.worst) for p in PROXIES.values())


def test_params_matches_the_analytic_count() -> None:
    backbone = Backbone()
    for channels in (NARROW, VGG16_CHANNELS):
        counted = param_count(build_network(channels, backbone), torch.empty(0))
        analytic = 10 ** channel_features(np.array([channels]), backbone)[0, 13]
        assert counted == pytest.approx(analytic, rel=1e-9)


def test_synflow_is_data_free_and_grows_with_width() -> None:
    on_noise = score_architecture("synflow", NARROW, torch.randn(4, 3, 32, 32), seed=2)
    on_zeros = score_architecture("synflow", NARROW, torch.zeros(1, 3, 32, 32), seed=2)
    wide = synflow(build_network([128] * 13), torch.zeros(1, 3, 32, 32))
    assert on_noise == on_zeros and math.isfinite(on_noise)
    assert wide > on_noise
    assert not PROXIES["synflow"].uses_data and PROXIES["naswot"].uses_data

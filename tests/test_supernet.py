"""The weight-sharing supernet: channel slicing, BatchNorm recalibration, sandwich training that
resumes where it was killed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support import extract_subnet

from xpert_evo.space.backbone import Backbone
from xpert_evo.training import supernet
from xpert_evo.training.data import DataSpec, Split
from xpert_evo.training.network import build_network
from xpert_evo.training.supernet import (
    build_supernet,
    recalibrate,
    sample_widths,
    set_subnet,
    subnet_accuracy_pct,
    train_supernet,
)
from xpert_evo.training.train import TrainSpec, budget_splits

OPTIONS = (64, 128, 256, 512)
MIXED = [64, 512, 128, 256, 64, 512, 128, 256, 64, 512, 128, 256, 128]


def random_split(n: int = 40, size: int = 32, seed: int = 0) -> Split:
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, size, size, 3), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=gen)
    return Split(pixels.numpy(), labels.numpy(), "cifar10", 10)


def scrambled_supernet(width_mult: float = 0.125) -> torch.nn.Sequential:
    """A supernet whose BatchNorm parameters and statistics are random (not the identity)."""
    torch.manual_seed(0)
    model = build_supernet(OPTIONS, Backbone(), width_mult)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            for t in (m.weight.data, m.bias.data, m.running_mean):
                t.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_a_subnet_computes_what_its_extracted_stand_alone_network_computes() -> None:
    model = scrambled_supernet()
    net = extract_subnet(model, MIXED, Backbone(), 0.125)
    reference = build_network(MIXED, Backbone(), 0.125)
    assert [p.shape for p in net.parameters()] == [p.shape for p in reference.parameters()]
    x = random_split(8).normalised()
    with torch.no_grad():
        assert torch.allclose(model(x), net(x), atol=1e-5)
        set_subnet(model, [512] * 13, 0.125)
        assert not torch.allclose(model(x), net(x), atol=1e-3)


def test_set_subnet_names_the_layers_it_cannot_run() -> None:
    model = build_supernet((64, 128), Backbone(), 0.25)
    with pytest.raises(ValueError, match=r"layers \[1\] ask for more channels"):
        set_subnet(model, [64, 256] + [64] * 11, 0.25)
    with pytest.raises(ValueError, match="got 12 channel genes for 13 conv layers"):
        set_subnet(model, [64] * 12, 0.25)


def test_recalibration_sets_the_active_channels_statistics_from_the_images() -> None:
    model = scrambled_supernet()
    set_subnet(model, MIXED, 0.125)
    first_bn = model[1]
    images = random_split(40)
    recalibrate(model, images, n_images=40, batch_size=10)
    with torch.no_grad():
        conv_out = model[0](images.normalised())
    assert torch.allclose(first_bn.running_mean[:8], conv_out.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(first_bn.running_var[:8], conv_out.var((0, 2, 3)), rtol=1e-3)
    assert first_bn.momentum == 0.1 and not model.training


def test_a_sandwich_is_the_largest_the_smallest_and_random_subnets() -> None:
    gen = torch.Generator().manual_seed(0)
    widths = sample_widths(OPTIONS, 13, 3, gen)
    assert widths[0] == [512] * 13 and widths[1] == [64] * 13 and len(widths) == 5
    assert {w for row in widths[2:] for w in row} <= set(OPTIONS)
    assert len({tuple(row) for row in widths[2:]}) == 3


def test_a_killed_training_resumes_after_its_last_epoch_with_the_same_result(
    cifar10_zip: Path, data_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DataSpec(dataset="cifar10", root=str(cifar10_zip.parent), input_size=32,
                    num_classes=10)
    spec = TrainSpec(epochs=2, train_per_class=8, val_per_class=4, test_per_class=2,
                     width_mult=0.0625, batch_size=16, num_threads=1, lr=0.05)
    whole = train_supernet(OPTIONS, data, spec, cache_dir=data_cache)

    real_write = supernet.atomic_write

    def write_then_die(path, write):
        real_write(path, write)
        raise KeyboardInterrupt

    checkpoint = tmp_path / "supernet.pt"
    monkeypatch.setattr(supernet, "atomic_write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(OPTIONS, data, spec, checkpoint=checkpoint, cache_dir=data_cache)
    monkeypatch.setattr(supernet, "atomic_write", real_write)
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 1
    resumed = train_supernet(OPTIONS, data, spec, checkpoint=checkpoint, cache_dir=data_cache)
    assert resumed.history == whole.history and len(whole.history) == 2
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    splits = budget_splits(data, spec, data_cache)
    accuracy = subnet_accuracy_pct(resumed.model, MIXED, spec.width_mult, splits.train,
                                   splits.val, n_calibration=40)
    assert 0.0 <= accuracy <= 100.0 and (accuracy * len(splits.val) / 100).is_integer()

"""Training: decoded-split cache, batch augmentation, a short real CIFAR-10 run beating chance."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xpert_evo.config import ConfigError
from xpert_evo.training.data import DataSpec, decoded_split, load_split, split_indices
from xpert_evo.training.network import build_network, pick_device, scaled_channels
from xpert_evo.training.train import TrainSpec, budget_splits, lr_schedule, train_network
from xpert_evo.training.transforms import augment


def test_augment_is_a_padded_crop_or_its_mirror() -> None:
    """Every output image is a window of the zero-padded input, possibly mirrored."""
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(1, 256, (64, 3, 8, 8), dtype=torch.uint8, generator=gen)
    out = augment(pixels, gen, pad=2)
    assert out.shape == pixels.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(pixels, (2, 2, 2, 2))
    flips = 0
    for i in range(len(pixels)):
        windows = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        plain = any(torch.equal(out[i], w) for w in windows)
        mirrored = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 16 < flips < 48  # about half are flipped
    shifted = [not torch.equal(out[i], pixels[i]) for i in range(len(pixels))]
    assert sum(shifted) > 48


def test_train_spec_validates_its_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key train\.epoch; allowed keys there "
                                          r"are \['epochs'"):
        TrainSpec.from_config({"epoch": 3})
    with pytest.raises(ConfigError, match="train.batch_size: Value 'many'"):
        TrainSpec.from_config({"batch_size": "many"})
    assert TrainSpec.from_config({"epochs": "3"}).epochs == 3  # converted to the field's type
    with pytest.raises(ValueError, match="train_per_class"):
        TrainSpec(train_per_class=0)
    assert TrainSpec(epochs=5, train_per_class=500, width_mult=0.25, batch_size=64).fidelity() == (
        "e5-pc500-w0.25-b64"
    )
    assert pick_device("auto").type in ("cpu", "cuda") and pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="train.resolution=8 must be >= 16"):
        TrainSpec(resolution=8)


def test_compute_dtype_sets_autocast_and_the_fidelity_label() -> None:
    """bfloat16 runs convolutions in bfloat16 and labels the budget "-bf16"; float32 changes
    neither; other values are refused with the allowed ones named."""
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    cpu = torch.device("cpu")
    half = TrainSpec(epochs=5, train_per_class=80, resolution=32, compute_dtype="bfloat16")
    with half.autocast(cpu):
        assert conv(x).dtype == torch.bfloat16
    with TrainSpec().autocast(cpu):
        assert conv(x).dtype == torch.float32
    assert half.fidelity() == "e5-pc80-w1-b128-r32-bf16"
    assert TrainSpec(compute_dtype="bfloat16").fidelity() == "e30-pcall-w1-b128-bf16"
    with pytest.raises(ValueError, match=r"compute_dtype='bf16' is not one of \['bfloat16'"):
        TrainSpec(compute_dtype="bf16")


def test_min_channels_floors_the_scaled_width_and_labels_the_budget() -> None:
    """A floor keeps XPertNet_50's 64-channel layers at 64 channels at width 0.25 (not 16),
    never widens a layer beyond its searched width, and names the budget "-min64"."""
    xpertnet_50 = [64, 128, 64, 512, 512, 128, 128, 64, 512, 128, 64, 64, 64]
    assert scaled_channels(xpertnet_50, 0.25, 64) == [
        64, 64, 64, 128, 128, 64, 64, 64, 128, 64, 64, 64, 64]
    assert scaled_channels([32, 256], 0.25, 64) == [32, 64]
    assert scaled_channels([32, 256], 2.0, 64) == [64, 512]
    assert scaled_channels(xpertnet_50, 0.25) == [c // 4 for c in xpertnet_50]
    model = build_network(xpertnet_50, width_mult=0.25, min_channels=64)
    assert [m.out_channels for m in model if isinstance(m, torch.nn.Conv2d)][:3] == [64, 64, 64]
    spec = TrainSpec(epochs=5, train_per_class=500, width_mult=0.25, batch_size=64,
                     min_channels=64, compute_dtype="bfloat16")
    assert spec.fidelity() == "e5-pc500-w0.25-b64-min64-bf16"
    with pytest.raises(ValueError, match="train.min_channels=0 must be >= 1"):
        TrainSpec(min_channels=0)


def test_a_budget_at_a_lower_resolution_trains_and_labels_at_it(
    tiny_zip: Path, data_cache: Path
) -> None:
    """Tiny ImageNet (64x64 searched) trained at 32x32: the splits, the network's input and the
    fidelity label all follow `train.resolution`; without it they follow `data.input_size`."""
    data = DataSpec(dataset="tinyimagenet", root=str(tiny_zip.parent), input_size=64,
                    num_classes=200, allow_data_free=False)
    spec = TrainSpec(epochs=1, train_per_class=2, test_per_class=1, val_per_class=1,
                     width_mult=0.25, batch_size=64, resolution=32)
    assert spec.fidelity() == "e1-pc2-w0.25-b64-r32"
    assert TrainSpec(epochs=1, train_per_class=2).fidelity() == "e1-pc2-w1-b128"
    splits = budget_splits(data, spec, data_cache)
    assert splits.train.images.shape == (400, 32, 32, 3)
    assert splits.val.images.shape == (200, 32, 32, 3)
    assert splits.test.images.shape == (200, 32, 32, 3)
    native = budget_splits(data, TrainSpec(train_per_class=2, test_per_class=1, val_per_class=1),
                           data_cache)
    assert native.train.images.shape == (400, 64, 64, 3)
    result = train_network([64] * 13, data, spec, seed=0, cache_dir=data_cache)
    assert result.n_train == 400 and result.n_val == 200
    assert result.model(torch.zeros(2, 3, 32, 32)).shape == (2, 200)


def test_decoded_split_subset_is_cached_and_matches_the_images(
    cifar10_zip: Path, data_cache: Path
) -> None:
    data = {"root": str(cifar10_zip.parent)}
    split = decoded_split(data, "test", per_class=3, cache_dir=data_cache)
    assert split.images.shape == (30, 32, 32, 3) and split.images.dtype == np.uint8
    assert np.bincount(split.labels).tolist() == [3] * 10
    cached = list((data_cache / "decoded").glob("cifar10-test-*-pc3.npz"))
    assert len(cached) == 1
    images = load_split(data, "test", data_cache)
    first_of_class_2 = int(np.flatnonzero(images.targets == 2)[0])
    assert np.array_equal(split.images[6], images.image(first_of_class_2))
    again = decoded_split(data, "test", per_class=3, cache_dir=data_cache)
    assert np.array_equal(again.images, split.images)
    batch = split.normalised(slice(0, 4))
    assert batch.shape == (4, 3, 32, 32) and abs(float(split.normalised().mean())) < 1.0


@pytest.mark.parametrize("compute_dtype", ["float32", "bfloat16"])
def test_short_training_on_real_cifar10_beats_chance(
    cifar10_zip: Path, data_cache: Path, compute_dtype: str
) -> None:
    """Width 0.25, 100 images per class, 2 epochs: well above the 10 % of a random guess, in
    float32 and in bfloat16 autocast."""
    spec = TrainSpec(epochs=2, train_per_class=100, test_per_class=50, width_mult=0.25,
                     batch_size=32, lr=0.05, warmup_epochs=0.5, val_per_class=20,
                     compute_dtype=compute_dtype)
    result = train_network([64] * 13, {"root": str(cifar10_zip.parent)}, spec, seed=0,
                           cache_dir=data_cache)
    assert result.n_train == 1000 and result.n_test == 500 and result.n_val == 200
    assert result.val_accuracy_pct > 15.0, result.val_accuracy_pct
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.clean_accuracy_pct > 15.0, result.clean_accuracy_pct
    assert not result.model.training and result.device.startswith("cpu")


def test_lr_schedule_warms_up_linearly_then_decays_to_zero() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    schedule = lr_schedule(opt, warmup=4, total=20)
    lrs = []
    for _ in range(20):
        lrs.append(schedule.get_last_lr()[0])
        opt.step()
        schedule.step()
    assert lrs[:5] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])
    assert lrs[-1] == pytest.approx(0.05 * (1 + np.cos(np.pi * 15 / 16)))


def test_validation_split_is_held_out_of_the_training_images(
    cifar10_zip: Path, data_cache: Path
) -> None:
    data = {"root": str(cifar10_zip.parent)}
    spec = TrainSpec(train_per_class=4, val_per_class=2, epochs=1)
    splits = budget_splits(DataSpec.from_config(data), spec, data_cache)
    assert np.bincount(splits.train.labels).tolist() == [4] * 10
    assert np.bincount(splits.val.labels).tolist() == [2] * 10
    images = load_split(data, "train", data_cache)
    last_of_class_0 = int(np.flatnonzero(images.targets == 0)[-1])
    assert np.array_equal(splits.val.images[1], images.image(last_of_class_0))
    train_rows = {splits.train.images[i].tobytes() for i in range(len(splits.train))}
    assert not train_rows & {splits.val.images[i].tobytes() for i in range(len(splits.val))}
    with pytest.raises(ValueError, match="train.train_per_class=4990 \\+ train.val_per_class=20"):
        split_indices(images.targets, "train", 4990, 20)


RETAIN_PROBE = """
import resource, sys
import numpy as np
from xpert_evo.training.network import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else None
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        held = [np.ones(n << 17) for n in (1, 2, 4, 8, 16, 8, 4, 2, 1)]  # 1-16 MiB buffers
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults()
print(applied, faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_retain_freed_memory_stops_refaulting_freed_buffers() -> None:
    """Allocating and freeing the same mix of 1-16 MiB buffers ten times: with glibc's defaults
    the pages are returned and faulted back in every time; once retained, hardly any fault."""
    runs = {}
    for mode in ("default", "retain"):
        out = subprocess.run([sys.executable, "-c", RETAIN_PROBE, mode], capture_output=True,
                             text=True, check=True).stdout.split()
        runs[mode] = (out[0], int(out[1]))
    pages = 10 * 46 * (1 << 20) // resource.getpagesize()
    assert runs["retain"][0] == "True"
    assert runs["retain"][1] < 0.01 * pages < runs["default"][1], runs

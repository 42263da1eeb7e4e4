"""Data loaders: real archives, other layouts, the missing / corrupt data errors, proxy batches."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from xpert_evo.accuracy.batch import noise_batch, proxy_batch
from xpert_evo.training.data import DataError, load_split, unpack_archive
from xpert_evo.training.layouts import CIFAR10_CLASSES

TINY = {"dataset": "tinyimagenet", "input_size": 64, "num_classes": 200}


def test_cifar10_archive_train_and_test_splits(cifar10_zip: Path, data_cache: Path) -> None:
    train = load_split({"root": str(cifar10_zip.parent)}, "train", data_cache)
    test = load_split({"root": str(cifar10_zip.parent)}, "test", data_cache)
    assert train.classes == list(CIFAR10_CLASSES)
    assert np.bincount(train.targets).tolist() == [5000] * 10
    assert np.bincount(test.targets).tolist() == [1000] * 10
    assert train.image(0).shape == (32, 32, 3) and train.image(0).dtype == np.uint8
    assert train.paths[-1].parent.name == "truck" and train.targets[-1] == 9
    assert test.image(1234).shape == (32, 32, 3)
    assert test.paths[1234].parent.name == CIFAR10_CLASSES[int(test.targets[1234])]
    assert train.location.is_relative_to(data_cache)


def test_tiny_imagenet_archive_uses_wnids_order_and_val_annotations(
    tiny_zip: Path, data_cache: Path
) -> None:
    train = load_split({**TINY, "root": str(tiny_zip.parent)}, "train", data_cache)
    val = load_split({**TINY, "root": str(tiny_zip.parent)}, "test", data_cache)
    root = train.location
    wnids = (root / "wnids.txt").read_text().split()
    assert train.classes == wnids and len(wnids) == 200
    assert np.bincount(train.targets).tolist() == [100] * 200
    assert train.paths[0].parent.parent.name == wnids[train.targets[0]]
    assert np.bincount(val.targets, minlength=200).tolist() == [50] * 200
    lines = (root / "val" / "val_annotations.txt").read_text().splitlines()
    for line in (lines[0], lines[4321], lines[-1]):
        name, wnid = line.split("\t")[:2]
        i = [p.name for p in val.paths].index(name)
        assert val.classes[val.targets[i]] == wnid
    assert val.image(0).shape == (64, 64, 3)


def test_env_var_overrides_root_and_root_may_be_the_zip(
    cifar10_zip: Path, data_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XPERT_EVO_DATA", str(cifar10_zip))
    images = load_split({"root": "/no/such/place"}, "test", data_cache)
    assert len(images) == 10_000


def test_unpack_is_done_once(cifar10_zip: Path, data_cache: Path) -> None:
    first = unpack_archive(cifar10_zip, data_cache)
    marker = first / "marker"
    marker.write_text("kept")
    assert unpack_archive(cifar10_zip, data_cache) == first
    assert marker.read_text() == "kept"
    marker.unlink()
    assert not list(first.parent.glob(".cifar10-*")), "temporary unpack directory left behind"


def test_missing_data_names_every_path_and_how_to_get_it(tmp_path: Path) -> None:
    root = tmp_path / "nothing here"
    with pytest.raises(DataError) as info:
        load_split({"root": str(root)}, "train", tmp_path / "cache")
    text = str(info.value)
    for tried in (root, root / "cifar10", root / "cifar-10-batches-py", root / "cifar10.zip"):
        assert str(tried) in text
    assert "data.download=true" in text and "XPERT_EVO_DATA" in text


def test_a_warm_cache_does_not_change_what_is_found(
    cifar10_zip: Path, data_cache: Path, tmp_path: Path
) -> None:
    unpacked = unpack_archive(cifar10_zip, data_cache)  # an earlier run left CIFAR-10 here
    with pytest.raises(DataError) as info:  # same command, no data under data.root: not found
        load_split({"root": str(tmp_path / "empty")}, "train", data_cache)
    assert str(unpacked) not in str(info.value)
    found = load_split({"root": str(cifar10_zip.parent)}, "train", data_cache)
    assert found.location.is_relative_to(unpacked)  # the archive under the root reuses the copy


def test_corrupt_archive_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "cifar10.zip").write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match="cannot unpack"):
        load_split({"root": str(tmp_path)}, "train", tmp_path / "cache")
    assert not (tmp_path / "cache" / "data" / "cifar10").exists()


def test_incomplete_imagefolder_is_a_data_error(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
    with pytest.raises(DataError, match="incomplete or corrupt"):
        load_split({"root": str(tmp_path)}, "train", tmp_path / "cache")


def test_unreadable_image_is_a_data_error(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for name in CIFAR10_CLASSES:
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / "0000.jpg").write_bytes(b"not a jpeg")
    images = load_split({"root": str(tmp_path)}, "train", tmp_path / "cache")
    with pytest.raises(DataError, match="cannot decode"):
        images.image(0)


def test_torchvision_pickle_layout(tmp_path: Path) -> None:
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(10, 3072), dtype=np.uint8)
        with open(batches / name, "wb") as f:
            pickle.dump({"data": data, "labels": list(range(10))}, f)
    train = load_split({"root": str(tmp_path)}, "train", tmp_path / "cache")
    assert train.fmt == "torchvision-pickle" and len(train) == 50
    assert np.bincount(train.targets).tolist() == [5] * 10
    with open(batches / "data_batch_1", "rb") as f:
        first = pickle.load(f)["data"][3]
    assert np.array_equal(train.image(3), first.reshape(3, 32, 32).transpose(1, 2, 0))


def test_proxy_batch_is_deterministic_per_seed(cifar10_zip: Path, data_cache: Path) -> None:
    spec = {"root": str(cifar10_zip.parent)}
    a = proxy_batch(spec, batch_size=16, seed=3, cache_dir=data_cache)
    b = proxy_batch(spec, batch_size=16, seed=3, cache_dir=data_cache)
    c = proxy_batch(spec, batch_size=16, seed=4, cache_dir=data_cache)
    assert a.images.shape == (16, 3, 32, 32) and a.images.dtype == torch.float32
    assert torch.equal(a.images, b.images) and a.identity == b.identity
    assert not torch.equal(a.images, c.images) and a.identity != c.identity
    assert not a.data_free and "real data" in a.source
    assert -1.0 < float(a.images.mean()) < 1.0 and 0.5 < float(a.images.std()) < 1.5


def test_tiny_proxy_batch_is_64px(tiny_zip: Path, data_cache: Path) -> None:
    batch = proxy_batch({**TINY, "root": str(tiny_zip.parent)}, 8, 0, data_cache)
    assert batch.images.shape == (8, 3, 64, 64)
    assert batch.identity.startswith("tinyimagenet/")


def test_noise_batch_is_labelled_data_free() -> None:
    a, b = noise_batch(8, 32, seed=1), noise_batch(8, 32, seed=1)
    assert torch.equal(a.images, b.images) and a.data_free
    assert "data-free" in a.source and a.identity.startswith("gaussian/")
    assert a.basis == "Gaussian noise"
    why = noise_batch(8, 32, seed=1, why="no cifar10 found at /x")
    assert why.basis == "Gaussian noise (no cifar10 found at /x)" and "/x" in why.source
    assert why.identity == a.identity and torch.equal(why.images, a.images)

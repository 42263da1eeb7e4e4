"""Real image data for the accuracy proxies: CIFAR-10 and Tiny ImageNet loaders and one proxy batch.

The loader finds a data set under a root directory given by the config (`data.root`, overridden by
the environment variable `XPERT_EVO_DATA`). It accepts the layouts people actually have on disk:

* CIFAR-10 as written by `torchvision.datasets.CIFAR10(download=True)` (`cifar-10-batches-py/`),
  or as an ImageFolder tree `train/<class>/*`, `test/<class>/*` (optionally under `cifar10/`);
* Tiny ImageNet in its standard `tiny-imagenet-200/` layout (class order = `wnids.txt`, validation
  labels from `val/val_annotations.txt`);
* either of the ZIP archives `cifar10.zip` / `tiny-imagenet-200-subset.zip` (the root itself or a
  file in it), unpacked once, atomically, into a cache directory (`XPERT_EVO_CACHE` or
  `~/.cache/xpert_evo`, sub-folder `data/`).

Whatever is missing or unreadable raises `DataError` naming every path that was tried and how to
get the data. `proxy_batch` returns one augmented training batch cheaply (it decodes only the
sampled images); `noise_batch` is the explicit data-free stand-in.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from xpert_evo.config import plain_config

log = logging.getLogger(__name__)

DATA_ENV = "XPERT_EVO_DATA"
"""Environment variable that overrides `data.root`."""

CACHE_ENV = "XPERT_EVO_CACHE"
"""Environment variable that overrides the cache directory (default `~/.cache/xpert_evo`)."""

DATASETS: tuple[str, ...] = ("cifar10", "tinyimagenet")
"""Data sets the loader knows; `none` in the config means data-free on purpose."""

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
"""Official CIFAR-10 class order."""

NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "tinyimagenet": ((0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821)),
}
"""Per-channel (mean, std) of the training images, on the 0..1 pixel scale."""

ARCHIVES: dict[str, tuple[str, ...]] = {
    "cifar10": ("cifar10.zip",),
    "tinyimagenet": ("tiny-imagenet-200-subset.zip", "tiny-imagenet-200.zip"),
}
"""ZIP archive names the loader recognises and unpacks, per data set."""

_HOW_TO_GET = {
    "cifar10": (
        "Get CIFAR-10 by setting data.download=true (uses torchvision, needs internet), or point "
        f"data.root (or ${DATA_ENV}) at a folder holding cifar10.zip, cifar-10-batches-py/, or an "
        "ImageFolder tree train/<class>/*, test/<class>/*."
    ),
    "tinyimagenet": (
        "Get Tiny ImageNet from http://cs231n.stanford.edu/tiny-imagenet-200.zip (or set "
        "data.download=true), then point data.root (or "
        f"${DATA_ENV}) at the folder holding tiny-imagenet-200/ or the ZIP archive."
    ),
}
_TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class DataError(Exception):
    """A data set is missing, incomplete or unreadable; the message says where we looked."""


@dataclass(frozen=True)
class DataSpec:
    """The `data:` config node, typed.

    Attributes:
        dataset: "cifar10", "tinyimagenet" or "none" (data-free on purpose).
        root: directory (or ZIP archive) to look in; `XPERT_EVO_DATA` overrides it.
        input_size: image side in pixels fed to the network (images are resized if different).
        num_classes: classes of the data set (checked against what is found on disk).
        allow_data_free: fall back to a Gaussian-noise proxy batch when no data can be had.
        download: allow downloading through torchvision / the official URL.
    """

    dataset: str = "cifar10"
    root: str = "data"
    input_size: int = 32
    num_classes: int = 10
    allow_data_free: bool = True
    download: bool = False

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> DataSpec:
        """Build from a dict or DictConfig; unknown keys are an error, missing keys default."""
        values = dict(plain_config(cfg) or {})
        unknown = set(values) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown data config keys {sorted(unknown)}")
        spec = cls(**values)
        if spec.dataset not in (*DATASETS, "none"):
            raise ValueError(f"data.dataset={spec.dataset!r} is not one of {[*DATASETS, 'none']}")
        return spec


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: `cache_dir`, else `$XPERT_EVO_CACHE`, else `~/.cache/xpert_evo`."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xpert_evo"


def data_roots(root: str | os.PathLike | None) -> list[Path]:
    """Candidate root directories, most specific first.

    `$XPERT_EVO_DATA` replaces `root` when set. A relative root is tried against the current
    directory and, under Hydra (which may change directory), against the original directory.
    """
    env = os.environ.get(DATA_ENV)
    chosen = Path(env if env else (root if root is not None else "data")).expanduser()
    roots = [chosen]
    if not chosen.is_absolute():
        roots = [Path.cwd() / chosen]
        try:
            from hydra.core.hydra_config import HydraConfig
            from hydra.utils import get_original_cwd

            if HydraConfig.initialized():
                roots.append(Path(get_original_cwd()) / chosen)
        except (ImportError, ValueError):
            pass
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique


def unpack_archive(archive: Path, cache_dir: str | os.PathLike | None = None) -> Path:
    """Unpack a ZIP archive once into `<cache>/data/<archive stem>/` and return that directory.

    Unpacking goes to a temporary sibling directory that is renamed into place, so a directory
    that exists is always complete, and concurrent runs never see a half-written tree.
    Raises `DataError` if the archive is not a readable ZIP file.
    """
    target = cache_root(cache_dir) / "data" / archive.name.removesuffix(".zip")
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("unpacking %s into %s (once)", archive, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():  # a concurrent run won the race only if target now exists
                raise
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"cannot unpack {archive} into {target}: {e}") from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


class ImageSet(torch.utils.data.Dataset):
    """One split of an image classification data set, decoded lazily.

    Images are held either as file paths (decoded on demand) or as one in-memory uint8 array
    (torchvision's pickled CIFAR-10). Indexing returns (image, label) with `transform` applied to
    a PIL image when given, else a (3, H, W) float tensor in 0..1, so it plugs into a DataLoader.

    Attributes:
        dataset: "cifar10" or "tinyimagenet".
        split: "train" or "test" ("val" for Tiny ImageNet).
        fmt: storage format, e.g. "imagefolder-jpeg" or "torchvision-pickle"; part of the batch
            identity because re-encoded pixels differ slightly.
        classes: class names in label order.
        targets: (n,) int64 labels.
        location: directory the split was read from.
    """

    def __init__(
        self,
        dataset: str,
        split: str,
        fmt: str,
        classes: list[str],
        targets: np.ndarray,
        location: Path,
        paths: list[Path] | None = None,
        arrays: np.ndarray | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
    ) -> None:
        if (paths is None) == (arrays is None):
            raise ValueError("give exactly one of paths or arrays")
        self.dataset, self.split, self.fmt = dataset, split, fmt
        self.classes = classes
        self.targets = np.asarray(targets, dtype=np.int64)
        self.location = location
        self.paths, self.arrays = paths, arrays
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def image(self, index: int) -> np.ndarray:
        """Decoded RGB image `index` as a (H, W, 3) uint8 array; `DataError` if unreadable."""
        if self.arrays is not None:
            return self.arrays[index]
        path = self.paths[index]
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as e:
            raise DataError(f"cannot decode image {path}: {e}") from e

    def __getitem__(self, index: int) -> tuple[Any, int]:
        array = self.image(int(index))
        if self.transform is not None:
            return self.transform(Image.fromarray(array)), int(self.targets[index])
        return torch.tensor(array).permute(2, 0, 1).float() / 255.0, int(self.targets[index])


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)


def _imagefolder(split_dir: Path, dataset: str, split: str) -> ImageSet:
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    paths: list[Path] = []
    targets: list[int] = []
    for label, name in enumerate(classes):
        files = _list_images(split_dir / name)
        paths += files
        targets += [label] * len(files)
    if dataset == "cifar10" and set(classes) == set(CIFAR10_CLASSES):
        order = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
        targets = [order[classes[t]] for t in targets]
        classes = list(CIFAR10_CLASSES)
    return ImageSet(dataset, split, "imagefolder", classes, np.array(targets), split_dir, paths)


def _cifar_pickle(batches: Path, split: str) -> ImageSet:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    data, labels = [], []
    for name in names:
        with open(batches / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels += list(entry["labels"])
    arrays = np.ascontiguousarray(np.concatenate(data).transpose(0, 2, 3, 1))
    return ImageSet(
        "cifar10", split, "torchvision-pickle", list(CIFAR10_CLASSES), np.array(labels), batches,
        arrays=arrays,
    )


def _tiny(root: Path, split: str) -> ImageSet:
    classes = (root / "wnids.txt").read_text().split()
    index = {w: i for i, w in enumerate(classes)}
    paths: list[Path] = []
    targets: list[int] = []
    if split == "train":
        for wnid in classes:
            files = _list_images(root / "train" / wnid / "images")
            paths += files
            targets += [index[wnid]] * len(files)
    else:
        for line in (root / "val" / "val_annotations.txt").read_text().splitlines():
            parts = line.split("\t")
            if len(parts) < 2:
                continue
            paths.append(root / "val" / "images" / parts[0])
            targets.append(index[parts[1]])
    return ImageSet("tinyimagenet", split, "tiny-imagenet-200", classes, np.array(targets), root,
                    paths)


def _candidates(dataset: str, root: Path) -> list[tuple[Path, str]]:
    """(path, layout) pairs worth checking under one root, in order of preference."""
    if dataset == "cifar10":
        return [
            (root, "imagefolder"),
            (root / "cifar10", "imagefolder"),
            (root, "pickle"),
            (root / "cifar-10-batches-py", "pickle"),
        ]
    return [(root, "tiny"), (root / "tiny-imagenet-200", "tiny")]


def _layout_present(path: Path, layout: str) -> bool:
    if layout == "imagefolder":
        return (path / "train").is_dir() and (path / "test").is_dir()
    if layout == "pickle":
        return (path / "data_batch_1").is_file() or (path / "batches.meta").is_file()
    return (path / "wnids.txt").is_file()


def _open(dataset: str, path: Path, layout: str, split: str) -> ImageSet:
    split_name = {"test": "val"}.get(split, split) if dataset == "tinyimagenet" else split
    if layout == "imagefolder":
        images = _imagefolder(path / ("train" if split == "train" else "test"), dataset, split)
    elif layout == "pickle":
        images = _cifar_pickle(path, split)
    else:
        images = _tiny(path, split_name)
    return images


def _check(images: ImageSet, expected_classes: int) -> None:
    counts = np.bincount(images.targets, minlength=len(images.classes))
    if len(images) == 0 or len(images.classes) != expected_classes or (counts == 0).any():
        raise DataError(
            f"{images.dataset} {images.split} split at {images.location} looks incomplete or "
            f"corrupt: {len(images.classes)} classes (expected {expected_classes}), "
            f"{len(images)} images, {int((counts == 0).sum())} classes without images"
        )
    missing = [p for p in (images.paths or [])[:: max(1, len(images) // 50)] if not p.is_file()]
    if missing:
        raise DataError(f"{images.dataset}: listed images are missing, e.g. {missing[0]}")


def _download(dataset: str, cache_dir: str | os.PathLike | None) -> Path:
    target = cache_root(cache_dir) / "data" / "download"
    target.mkdir(parents=True, exist_ok=True)
    try:
        if dataset == "cifar10":
            from torchvision.datasets import CIFAR10

            CIFAR10(str(target), train=True, download=True)
            return target / "cifar-10-batches-py"
        from torchvision.datasets.utils import download_and_extract_archive

        if not (target / "tiny-imagenet-200" / "wnids.txt").is_file():
            download_and_extract_archive(_TINY_URL, str(target))
        return target / "tiny-imagenet-200"
    except Exception as e:  # network and checksum errors come in many types
        raise DataError(f"downloading {dataset} into {target} failed: {e}") from e


def load_split(
    spec: DataSpec | Mapping[str, Any],
    split: str = "train",
    cache_dir: str | os.PathLike | None = None,
) -> ImageSet:
    """Find and open one split ("train" or "test"; "test" is Tiny ImageNet's "val" split).

    Looks in every candidate root for a known layout, then for a known ZIP archive there
    (unpacked into the cache once, reused after), then, only if `spec.download`, in the download
    folder of the cache, downloading when it is empty. What is found depends on `data.root`
    (and `$XPERT_EVO_DATA`) and `data.download` alone: a copy an earlier run left in the cache
    is used only when its archive is under the root, so the same command finds the same data on
    a fresh machine and on one with a warm cache. Raises `DataError` listing every path tried.
    """
    spec = spec if isinstance(spec, DataSpec) else DataSpec.from_config(spec)
    dataset = spec.dataset
    if dataset not in DATASETS:
        raise DataError(f"data.dataset={dataset!r}: no data set to load (data-free)")
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} is not 'train' or 'test'")
    tried: list[str] = []
    roots = data_roots(spec.root)
    for place in (r for r in roots if r.suffix != ".zip"):
        found = _find_layout(dataset, place, tried)
        if found is not None:
            return _opened(dataset, *found, split, spec.num_classes)
    for root in roots:
        archives = [root] if root.suffix == ".zip" else [root / a for a in ARCHIVES[dataset]]
        for archive in archives:
            tried.append(f"{archive} (zip archive)")
            if archive.is_file() and archive.name in ARCHIVES[dataset]:
                found = _find_layout(dataset, unpack_archive(archive, cache_dir), tried)
                if found is not None:
                    return _opened(dataset, *found, split, spec.num_classes)
    if spec.download:
        found = _find_layout(dataset, cache_root(cache_dir) / "data" / "download", tried)
        path, layout = found or (
            _download(dataset, cache_dir), "pickle" if dataset == "cifar10" else "tiny"
        )
        return _opened(dataset, path, layout, split, spec.num_classes)
    unique = list(dict.fromkeys(tried))
    raise DataError(
        f"{dataset} not found. Looked in:\n  " + "\n  ".join(unique) + f"\n{_HOW_TO_GET[dataset]}"
    )


def _find_layout(dataset: str, place: Path, tried: list[str]) -> tuple[Path, str] | None:
    """The first known layout under `place`, recording every path checked in `tried`."""
    for path, layout in _candidates(dataset, place):
        tried.append(f"{path} ({layout})")
        if _layout_present(path, layout):
            return path, layout
    return None


def _opened(dataset: str, path: Path, layout: str, split: str, num_classes: int) -> ImageSet:
    try:
        images = _open(dataset, path, layout, split)
    except (OSError, KeyError, ValueError, pickle.UnpicklingError, EOFError) as e:
        raise DataError(f"{dataset} at {path} ({layout}) is unreadable: {e}") from e
    _check(images, num_classes)
    return images

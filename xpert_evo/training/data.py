"""The data sets: where they are found, and their splits decoded once into cached pixel arrays.

The loader finds a data set under a root directory given by the config (`data.root`, overridden by
the environment variable `XPERT_EVO_DATA`), in any layout of `xpert_evo.training.layouts`, or in
either of the ZIP archives `cifar10.zip` / `tiny-imagenet-200-subset.zip` (the root itself or a
file in it), unpacked once, atomically, into a cache directory (`XPERT_EVO_CACHE` or
`~/.cache/xpert_evo`, sub-folder `data/`). Whatever is missing or unreadable raises `DataError`
naming every path that was tried and how to get the data.

Training and crossbar evaluation read a split as one uint8 array (`decoded_split`, a `Split`):
decoded once, cached on disk (`<cache>/decoded/`), so CPU training never decodes an image in its
loop.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from xpert_evo.config import typed
from xpert_evo.files import atomic_write
from xpert_evo.training.layouts import DataError, ImageSet, download, find_layout, open_split
from xpert_evo.training.transforms import normalise

log = logging.getLogger(__name__)

DATA_ENV = "XPERT_EVO_DATA"
"""Environment variable that overrides `data.root`."""

CACHE_ENV = "XPERT_EVO_CACHE"
"""Environment variable that overrides the cache directory (default `~/.cache/xpert_evo`)."""

DATASETS: tuple[str, ...] = ("cifar10", "tinyimagenet")
"""Data sets the loader knows; `none` in the config means data-free on purpose."""

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
        """Build from a dict or DictConfig, checked by OmegaConf against the fields
        (`xpert_evo.config.typed`); missing keys default.

        Raises:
            ConfigError: an unknown or mistyped key (``data.<key>`` named).
            ValueError: a data set the loader does not know.
        """
        spec = typed(cls, cfg, "data")
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
        found = find_layout(dataset, place, tried)
        if found is not None:
            return open_split(dataset, *found, split, spec.num_classes)
    for root in roots:
        archives = [root] if root.suffix == ".zip" else [root / a for a in ARCHIVES[dataset]]
        for archive in archives:
            tried.append(f"{archive} (zip archive)")
            if archive.is_file() and archive.name in ARCHIVES[dataset]:
                found = find_layout(dataset, unpack_archive(archive, cache_dir), tried)
                if found is not None:
                    return open_split(dataset, *found, split, spec.num_classes)
    if spec.download:
        folder = cache_root(cache_dir) / "data" / "download"
        found = find_layout(dataset, folder, tried)
        path, layout = found or (
            download(dataset, folder), "pickle" if dataset == "cifar10" else "tiny"
        )
        return open_split(dataset, path, layout, split, spec.num_classes)
    unique = list(dict.fromkeys(tried))
    raise DataError(
        f"{dataset} not found. Looked in:\n  " + "\n  ".join(unique) + f"\n{_HOW_TO_GET[dataset]}"
    )


@dataclass
class Split:
    """One decoded split held in memory.

    Attributes:
        images: (N, H, W, 3) uint8 pixels.
        labels: (N,) int64 class indices.
        dataset: "cifar10" or "tinyimagenet" (selects the normalisation).
        num_classes: classes of the data set.
    """

    images: np.ndarray
    labels: np.ndarray
    dataset: str
    num_classes: int

    def __len__(self) -> int:
        return len(self.labels)

    def normalised(self, index: slice | np.ndarray | None = None) -> torch.Tensor:
        """Images `index` (all if None), normalised (B, 3, H, W) float32, not augmented."""
        pixels = torch.from_numpy(self.images if index is None else self.images[index])
        return normalise(pixels.permute(0, 3, 1, 2), self.dataset)


def split_indices(
    labels: np.ndarray, split: str, per_class: int | None, val_per_class: int = 0
) -> np.ndarray:
    """Indices into a split's files (labels in file order) of the images a split uses.

    "test": the first `per_class` images of every class (all if None). "train": the first
    `per_class` of every class among those not held out for validation (all of them if None).
    "val": the last `val_per_class` images of every class of the training split.

    Raises:
        ValueError: a class has fewer images than training and validation together need.
    """
    held = val_per_class if split in ("train", "val") else 0
    picks = []
    for c in np.unique(labels):
        mine = np.flatnonzero(labels == c)
        if per_class is not None and split == "train" and per_class + held > len(mine):
            raise ValueError(
                f"train.train_per_class={per_class} + train.val_per_class={held} exceeds the "
                f"{len(mine)} training images of class {c}; lower one of them"
            )
        if split == "val":
            picks.append(mine[len(mine) - held:])
        else:
            kept = mine[: len(mine) - held]
            picks.append(kept if per_class is None else kept[:per_class])
    return np.sort(np.concatenate(picks))


def _decode(images: ImageSet, indices: np.ndarray, size: int) -> np.ndarray:
    """Decode images `indices` into one (n, size, size, 3) uint8 array (resized if needed)."""

    def one(i: int) -> np.ndarray:
        array = images.image(int(i))
        if array.shape[0] != size or array.shape[1] != size:
            array = np.asarray(Image.fromarray(array).resize((size, size), Image.BILINEAR))
        return array

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(one, indices, chunksize=256)))


def decoded_split(
    data: DataSpec | Mapping[str, Any],
    split: str,
    per_class: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    val_per_class: int = 0,
) -> Split:
    """One split as uint8 pixels, decoded once and cached in `<cache>/decoded/` as `.npz`.

    Args:
        data: the `data:` node (data set, root, input size, classes).
        split: "train", "val" (held out of the training images) or "test".
        per_class: images per class (None = all); see `split_indices`. A subset is cut from the
            full-split cache when that exists, else decoded and cached on its own.
        cache_dir: cache directory (default `$XPERT_EVO_CACHE` or `~/.cache/xpert_evo`).
        val_per_class: training images per class held out for validation (the last ones).

    Raises:
        DataError: the data set is missing or unreadable (the message says where we looked).
        ValueError: `split` is unknown, or the classes are too small for the split.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split={split!r} is not one of ['train', 'val', 'test']")
    data = data if isinstance(data, DataSpec) else DataSpec.from_config(data)
    files = "test" if split == "test" else "train"
    images = load_split(data, files, cache_dir)
    folder = cache_root(cache_dir) / "decoded"
    stem = f"{data.dataset}-{files}-{images.fmt}-n{len(images)}-s{data.input_size}"
    full = folder / f"{stem}.npz"
    indices = split_indices(images.targets, split, per_class, val_per_class)
    if full.is_file():
        pixels, labels = _read_npz(full)
        return Split(pixels[indices], labels[indices], data.dataset, data.num_classes)
    whole = len(indices) == len(images)
    tag = f"{split}-pc{per_class}" + (f"-v{val_per_class}" if val_per_class else "")
    path = full if whole else folder / f"{stem}-{tag}.npz"
    if path.is_file():
        pixels, labels = _read_npz(path)
    else:
        start = time.perf_counter()
        pixels, labels = _decode(images, indices, data.input_size), images.targets[indices]
        atomic_write(path, lambda fh: np.savez(fh, images=pixels, labels=labels))
        log.info("decoded %d %s %s images in %.1f s -> %s", len(labels), data.dataset, split,
                 time.perf_counter() - start, path)
    return Split(pixels, labels, data.dataset, data.num_classes)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path) as z:
            return z["images"], z["labels"]
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"decoded cache {path} is unreadable ({e}); delete it to re-decode") from e

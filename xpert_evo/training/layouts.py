"""The data sets on disk: the layouts the loader recognises and how each is read.

* CIFAR-10 as written by `torchvision.datasets.CIFAR10(download=True)` (`cifar-10-batches-py/`),
  or as an ImageFolder tree `train/<class>/*`, `test/<class>/*` (optionally under `cifar10/`);
* Tiny ImageNet in its standard `tiny-imagenet-200/` layout (class order = `wnids.txt`, validation
  labels from `val/val_annotations.txt`).

`find_layout` looks for a layout in one place, `open_split` opens a split there as an `ImageSet`
and checks it is complete, `download` fetches a data set. Where to look (roots, archives, the
cache) is `xpert_evo.training.data.load_split`'s business.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
"""Official CIFAR-10 class order."""

_TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class DataError(Exception):
    """A data set is missing, incomplete or unreadable; the message says where we looked."""


class ImageSet:
    """One split of an image classification data set, decoded lazily (`image`).

    Images are held either as file paths (decoded on demand) or as one in-memory uint8 array
    (torchvision's pickled CIFAR-10).

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
    ) -> None:
        if (paths is None) == (arrays is None):
            raise ValueError("give exactly one of paths or arrays")
        self.dataset, self.split, self.fmt = dataset, split, fmt
        self.classes = classes
        self.targets = np.asarray(targets, dtype=np.int64)
        self.location = location
        self.paths, self.arrays = paths, arrays

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


def download(dataset: str, target: Path) -> Path:
    """Download `dataset` into the folder `target` (torchvision for CIFAR-10, the official ZIP
    for Tiny ImageNet, skipped when already there) and return the folder of its layout.

    Raises:
        DataError: the download failed (network, checksum, disk).
    """
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


def find_layout(dataset: str, place: Path, tried: list[str]) -> tuple[Path, str] | None:
    """The first known layout under `place`, recording every path checked in `tried`."""
    for path, layout in _candidates(dataset, place):
        tried.append(f"{path} ({layout})")
        if _layout_present(path, layout):
            return path, layout
    return None


def open_split(dataset: str, path: Path, layout: str, split: str, num_classes: int) -> ImageSet:
    """Open one split of the layout at `path` and check it is complete (`num_classes` classes,
    every class with images, listed files present).

    Raises:
        DataError: the files are unreadable or incomplete (the path and what is wrong named).
    """
    try:
        images = _open(dataset, path, layout, split)
    except (OSError, KeyError, ValueError, pickle.UnpicklingError, EOFError) as e:
        raise DataError(f"{dataset} at {path} ({layout}) is unreadable: {e}") from e
    _check(images, num_classes)
    return images

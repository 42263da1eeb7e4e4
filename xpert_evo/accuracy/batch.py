"""The batch of images a zero-cost proxy scores networks on: real training images or noise."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from xpert_evo.training.data import DataError, DataSpec, load_split
from xpert_evo.training.transforms import augment, normalise


@dataclass(frozen=True)
class ProxyBatch:
    """One batch the accuracy proxies see.

    Attributes:
        images: (B, 3, S, S) float32 tensor, normalised.
        identity: stable string naming the batch (data set, format, split size, size, seed,
            augmentation); part of every proxy cache key.
        source: human-readable origin, e.g. "cifar10 train batch (real data)".
        data_free: True when the images are Gaussian noise rather than data.
        basis: what the images are, in a few words for a summary line or an axis label:
            "real CIFAR-10 images", "Gaussian noise (no cifar10 found at /data)".
    """

    images: torch.Tensor
    identity: str
    source: str
    data_free: bool
    basis: str


def proxy_batch(
    spec: DataSpec | Mapping[str, Any],
    batch_size: int = 128,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> ProxyBatch:
    """One training batch (random crop 4 + flip, normalised), the same for the same seed.

    Samples `batch_size` indices first and decodes only those images, so it costs a directory
    listing and `batch_size` JPEG decodes, not a pass over the data set.
    Raises `DataError` when the data set cannot be found or read.
    """
    spec = spec if isinstance(spec, DataSpec) else DataSpec.from_config(spec)
    images = load_split(spec, "train", cache_dir)
    if batch_size > len(images):
        raise DataError(f"batch_size={batch_size} exceeds the {len(images)} training images")
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(len(images), size=batch_size, replace=False))
    size = spec.input_size
    raw = np.stack([
        np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR))
        if im.shape[:2] != (size, size) else im
        for im in (images.image(int(i)) for i in picks)
    ])
    pixels = torch.from_numpy(raw).permute(0, 3, 1, 2)
    x = normalise(augment(pixels, torch.Generator().manual_seed(seed)), spec.dataset)
    identity = (
        f"{spec.dataset}/{images.fmt}/train{len(images)}/b{batch_size}/s{spec.input_size}"
        f"/seed{seed}/crop4flip-torch"
    )
    source = f"{spec.dataset} train batch of {batch_size} from {images.location} (real data)"
    basis = f"real {DATASET_NAMES.get(spec.dataset, spec.dataset)} images"
    return ProxyBatch(x.contiguous(), identity, source, False, basis)


DATASET_NAMES: dict[str, str] = {"cifar10": "CIFAR-10", "tinyimagenet": "Tiny ImageNet"}
"""Readable data set names for summaries and axis labels."""


def noise_batch(
    batch_size: int = 128, input_size: int = 32, seed: int = 0, why: str = ""
) -> ProxyBatch:
    """The data-free stand-in: i.i.d. standard Gaussian images of shape (B, 3, S, S).

    Its scores differ from real images in scale, and no script of this project measures how
    well it ranks architectures: use real data where there is any.

    Args:
        batch_size, input_size, seed: the batch's shape and noise.
        why: why noise is used, e.g. "no cifar10 found at /data"; goes into `source` and
            `basis` (not into `identity`: the same noise scores the same).
    """
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, input_size, input_size, generator=gen)
    identity = f"gaussian/b{batch_size}/s{input_size}/seed{seed}"
    reason = f": {why}" if why else ""
    source = f"gaussian noise batch of {batch_size} (data-free{reason})"
    basis = f"Gaussian noise ({why})" if why else "Gaussian noise"
    return ProxyBatch(images, identity, source, True, basis)

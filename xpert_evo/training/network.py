"""Turn a genome's channel genes into the PyTorch network they describe.

The network follows `Backbone` exactly: 13 3x3 conv layers (stride 1, padding 1, no bias), each
followed by BatchNorm and ReLU, a 2x2 max-pool after the layers in `Backbone.pool_after`, then
global average pooling and one linear classifier. It is a plain `nn.Sequential`, so proxies,
training and crossbar evaluation can all walk its modules in order.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from xpert_evo.space.backbone import Backbone


def scaled_channels(channels: Sequence[int], width_mult: float = 1.0,
                    min_channels: int = 1) -> list[int]:
    """Channels multiplied by `width_mult`, rounded to the nearest integer, at least 1; a layer
    is never made narrower than `min_channels` by the scaling (a layer searched narrower than
    that keeps its searched width)."""
    return [max(1, int(round(int(c) * width_mult)), min(int(c), min_channels))
            for c in channels]


LAYERS: tuple[type[nn.Conv2d], type[nn.BatchNorm2d], type[nn.Linear]] = (
    nn.Conv2d, nn.BatchNorm2d, nn.Linear)
"""The conv, BatchNorm and classifier classes of a plain network."""


def build_network(
    channels: Sequence[int] | np.ndarray,
    backbone: Backbone | None = None,
    width_mult: float = 1.0,
    layers: tuple[type[nn.Conv2d], type[nn.BatchNorm2d], type[nn.Linear]] = LAYERS,
    min_channels: int = 1,
) -> nn.Sequential:
    """The VGG-style network with the given output channels per conv layer.

    Args:
        channels: output channels of each of the backbone's conv layers (length `n_conv`).
        backbone: geometry (input channels, kernel, pools, classes); the XPert default if None.
        width_mult: multiplies every layer's channels (e.g. 0.25 for a quick smoke test).
        layers: the conv, BatchNorm and classifier classes (those of `LAYERS` or subclasses,
            e.g. the supernet's elastic layers), built with the same arguments.
        min_channels: the narrowest a layer is scaled to (see `scaled_channels`).

    Returns:
        `nn.Sequential` of [Conv2d, BatchNorm2d, ReLU, (MaxPool2d)] x n_conv, AdaptiveAvgPool2d,
        Flatten, Linear, mapping (B, in_channels, S, S) images to (B, num_classes) logits.
    """
    backbone = backbone or Backbone()
    widths = scaled_channels(np.asarray(channels).reshape(-1).tolist(), width_mult,
                             min_channels)
    if len(widths) != backbone.n_conv:
        raise ValueError(f"got {len(widths)} channel genes for {backbone.n_conv} conv layers")
    conv, norm, linear = layers
    modules: list[nn.Module] = []
    c_in = backbone.in_channels
    for i, c_out in enumerate(widths, start=1):
        modules += [
            conv(c_in, c_out, backbone.kernel, padding=backbone.kernel // 2, bias=False),
            norm(c_out),
            nn.ReLU(),
        ]
        if i in backbone.pool_after:
            modules.append(nn.MaxPool2d(2))
        c_in = c_out
    modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear(c_in, backbone.num_classes)]
    return nn.Sequential(*modules)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """Run the block with `n` intra-op threads (all usable cores if None), then restore."""
    previous = torch.get_num_threads()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    wanted = max(1, int(n) if n else usable)
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(previous)


def pick_device(name: str = "auto") -> torch.device:
    """`cuda` when available and `name` is "auto", else the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name!r} but CUDA is not available; use device=auto")
    return device


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
"""glibc `mallopt` parameters (malloc.h)."""

TRIM_THRESHOLD_BYTES = 1 << 30
"""Free heap memory kept instead of returned to the OS, bytes."""


@functools.cache
def retain_freed_memory() -> bool:
    """Keep freed memory in the process instead of returning it to the OS (glibc only); the
    setting is process-wide, so it is applied once and later calls return the first answer.

    With glibc's defaults, CPU training frees its activation buffers every step and page-faults
    them back in the next (bench/timing/training_step.py, docs/results/training_step.md). Here every
    block comes from the heap (no mmap; glibc caps the mmap threshold at 32 MiB, below the
    largest activations of wide networks) and up to `TRIM_THRESHOLD_BYTES` of freed heap is kept.
    The arithmetic is unchanged; the process keeps its peak memory. This is what the usual advice
    (jemalloc or tcmalloc through LD_PRELOAD) achieves, without a library or an environment
    variable to set before Python starts.

    Returns:
        True when both settings were applied (glibc), False elsewhere (e.g. macOS, musl).
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))

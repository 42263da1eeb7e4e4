"""The VGG-style backbone XPert searched over: 13 3x3 conv layers, four 2x2 max-pools, a classifier.

Both the hardware cost model and the accuracy model builder read the layer geometry from here,
so the two can never disagree about feature-map sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VGG16_CHANNELS: tuple[int, ...] = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)

GEOMETRY: dict[str, tuple[int, int]] = {"cifar10": (32, 10), "tinyimagenet": (64, 200)}
"""Input side (pixels) and classes of each data set the search knows: its backbone's
`input_size` and `num_classes`."""


@dataclass(frozen=True)
class Backbone:
    """Geometry of the searched network.

    Attributes:
        input_size: height = width of the input image in pixels (32 for CIFAR-10, 64 for Tiny
            ImageNet).
        num_classes: outputs of the linear classifier.
        in_channels: channels of the input image.
        kernel: conv kernel size (square, stride 1, padding kernel // 2).
        n_conv: number of conv layers.
        pool_after: 1-indexed conv layers followed by a 2x2 max-pool.
    """

    input_size: int = 32
    num_classes: int = 10
    in_channels: int = 3
    kernel: int = 3
    n_conv: int = 13
    pool_after: tuple[int, ...] = (2, 4, 7, 10)

    def __post_init__(self) -> None:
        if self.input_size % (2 ** len(self.pool_after)) != 0:
            raise ValueError(
                f"input_size={self.input_size} must be divisible by 2**{len(self.pool_after)} "
                f"(one halving per pool after conv layers {list(self.pool_after)})"
            )
        bad = [p for p in self.pool_after if not 1 <= p <= self.n_conv]
        if bad:
            raise ValueError(
                f"pool_after={list(self.pool_after)}: layers {bad} are outside 1..{self.n_conv}"
            )

    def feature_sizes(self) -> np.ndarray:
        """Spatial size (pixels per side) of each conv layer's input and output, shape (n_conv,)."""
        sizes = np.empty(self.n_conv, dtype=np.int64)
        size = self.input_size
        for i in range(self.n_conv):
            sizes[i] = size
            if i + 1 in self.pool_after:
                size //= 2
        return sizes

    def pool_flags(self) -> np.ndarray:
        """1 where a conv layer is followed by a 2x2 max-pool, else 0; shape (n_conv,)."""
        flags = np.zeros(self.n_conv, dtype=np.int64)
        flags[[p - 1 for p in self.pool_after]] = 1
        return flags

    def in_channels_of(self, channels: np.ndarray) -> np.ndarray:
        """Input channels of every conv layer given output channels of shape (..., n_conv)."""
        channels = np.asarray(channels)
        first = np.full(channels.shape[:-1] + (1,), self.in_channels, dtype=channels.dtype)
        return np.concatenate([first, channels[..., :-1]], axis=-1)

    def macs(self, channels: np.ndarray) -> np.ndarray:
        """Multiply-accumulates for one image (conv layers + classifier) of channel
        configurations (..., n_conv), float64 of shape (...)."""
        c = np.asarray(channels, dtype=np.float64)
        pixels = self.feature_sizes().astype(np.float64) ** 2
        conv = (self.in_channels_of(c) * c * self.kernel**2 * pixels).sum(axis=-1)
        return conv + c[..., -1] * self.num_classes

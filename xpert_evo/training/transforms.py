"""What every training (and proxy) batch goes through: random crop + flip, then normalisation."""

from __future__ import annotations

import torch
from torch.nn import functional as fn

NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "tinyimagenet": ((0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821)),
}
"""Per-channel (mean, std) of the training images, on the 0..1 pixel scale."""


def normalise(pixels: torch.Tensor, dataset: str) -> torch.Tensor:
    """(B, 3, H, W) uint8 pixels -> float32 normalised with the data set's mean and std."""
    mean, std = NORMALISATION[dataset]
    mean_t = torch.tensor(mean, device=pixels.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=pixels.device).view(1, 3, 1, 1)
    return (pixels.float() / 255.0 - mean_t) / std_t


def augment(pixels: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding `pad`) and random horizontal flip of a uint8 batch, one gather.

    Kept over torchvision ``transforms.v2`` (about the same speed on CPU; the timing is in
    docs/ground_truth.md, "Training recipe"): v2 draws from torch's global RNG, this from the
    caller's generator, on the batch's device.

    Args:
        pixels: (B, 3, H, W) uint8 (any device).
        generator: random source on the same device as `pixels`.
    Returns:
        (B, 3, H, W) uint8, each image shifted by up to `pad` pixels and flipped with p = 0.5.
    """
    b, _, h, w = pixels.shape
    dev = pixels.device
    padded = fn.pad(pixels, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator, device=dev)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator, device=dev)
    flip = torch.rand((b, 1), generator=generator, device=dev) < 0.5
    cols = torch.arange(w, device=dev).expand(b, w)
    cols = torch.where(flip, w - 1 - cols, cols) + dx
    rows = torch.arange(h, device=dev).expand(b, h) + dy
    batch = torch.arange(b, device=dev).view(b, 1, 1)
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)

"""Train a genome's network on real data with a standard recipe and report its clean accuracy.

Recipe: SGD with Nesterov momentum 0.9, weight decay 5e-4, a linear warm-up then a cosine
learning-rate schedule stepped every batch, random crop (zero padding 4) and horizontal flip,
optional label smoothing. The budget (epochs, training images per class, width multiplier,
batch size) comes from the config, so the same code runs a 2-minute CPU smoke test and a
full-fidelity GPU training; the device is picked automatically (`cuda` if available, else `cpu`).

To make CPU training feasible, every split is decoded once into a uint8 numpy array cached on
disk (`xpert_evo.training.data.decoded_split`), kept in memory (on the training device) as one
tensor, and augmented per batch with tensor ops (one gather for crop + flip, no per-image PIL in
the loop).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

from xpert_evo.config import typed
from xpert_evo.space.backbone import Backbone
from xpert_evo.training.data import DataSpec, Split, decoded_split
from xpert_evo.training.network import (
    build_network,
    pick_device,
    retain_freed_memory,
    torch_threads,
)
from xpert_evo.training.transforms import augment, normalise

log = logging.getLogger(__name__)


COMPUTE_DTYPES: dict[str, tuple[torch.dtype, str]] = {
    "float32": (torch.float32, ""),
    "bfloat16": (torch.bfloat16, "-bf16"),
}
"""`train.compute_dtype` values: the autocast dtype and the suffix it adds to the fidelity label.
bfloat16 about halves a CPU training step where the CPU has bfloat16 instructions
(bench/timing/training_step.py, docs/results/training_step.md). Not used for the measured sources:
at the 12-epoch Tiny ImageNet budget its seed noise was about four times float32's
(bench/studies/fidelity_noise.py, docs/results/fidelity_noise_tinyimagenet.md)."""


@dataclass(frozen=True)
class TrainSpec:
    """The `train:` config node, typed: budget and recipe of one training run.

    Attributes:
        epochs: passes over the (sub-sampled) training set.
        train_per_class: training images per class (the first ones of each class in file
            order, so the subset is the same for every seed); None = the whole split.
        test_per_class: test images per class used for the clean accuracy; None = all.
        val_per_class: validation images per class: the last ones of each class of the
            training split, never trained on; models select on the validation accuracy and the
            test accuracy is only reported. 0 = no validation split.
        width_mult: multiplies every layer's channels (1.0 = the genome as searched).
        min_channels: no layer is trained narrower than this, whatever `width_mult` (a layer
            searched narrower keeps its searched width); 1 = plain scaling. A cheap budget's
            floor: at width 0.25 a 64-channel layer would train with 16 channels, a bottleneck
            its full-width training does not have (docs/results/fidelity_ladder_cifar10.md).
        batch_size: images per SGD step.
        lr: peak learning rate (reached after the warm-up), scaled for `batch_size` as given.
        momentum: SGD momentum (Nesterov).
        weight_decay: L2 weight decay applied to every parameter.
        warmup_epochs: linear warm-up length in epochs (may be fractional; 0 = none).
        label_smoothing: cross-entropy label smoothing in 0..1.
        device: "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:1", ...
        num_threads: torch intra-op CPU threads; None = `os.cpu_count()`.
        eval_batch_size: images per forward pass when measuring accuracy.
        resolution: image side in pixels the network is trained and evaluated at (images are
            resized); None = the data set's `data.input_size`. A lower resolution is a cheaper
            fidelity (Tiny ImageNet at 32 instead of 64 pixels costs a quarter per image).
        compute_dtype: dtype of convolutions and matrix products in training and evaluation:
            "float32", or "bfloat16" (torch autocast: weights, optimiser and BatchNorm
            statistics stay float32). See `COMPUTE_DTYPES`.
    """

    epochs: int = 30
    train_per_class: int | None = None
    test_per_class: int | None = None
    val_per_class: int = 0
    width_mult: float = 1.0
    min_channels: int = 1
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    device: str = "auto"
    num_threads: int | None = None
    eval_batch_size: int = 500
    resolution: int | None = None
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(
                f"train.epochs={self.epochs}, train.batch_size={self.batch_size} and "
                f"train.eval_batch_size={self.eval_batch_size} must be >= 1"
            )
        for key in ("train_per_class", "test_per_class"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ValueError(f"train.{key}={value} must be >= 1 or null (the whole split)")
        if self.val_per_class < 0:
            raise ValueError(f"train.val_per_class={self.val_per_class} must be >= 0")
        if self.width_mult <= 0 or self.lr <= 0:
            raise ValueError(
                f"train.width_mult={self.width_mult} and train.lr={self.lr} must be > 0"
            )
        if self.min_channels < 1:
            raise ValueError(f"train.min_channels={self.min_channels} must be >= 1")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"train.label_smoothing={self.label_smoothing} must be in [0, 1)")
        if self.resolution is not None and self.resolution < 16:
            raise ValueError(f"train.resolution={self.resolution} must be >= 16 (four 2x2 "
                             "max-pools) or null (the data set's input_size)")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"train.compute_dtype={self.compute_dtype!r} is not one of "
                             f"{sorted(COMPUTE_DTYPES)}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> TrainSpec:
        """Build from a dict or DictConfig, checked by OmegaConf against the fields
        (`xpert_evo.config.typed`); missing keys default.

        Raises:
            ConfigError: an unknown or mistyped key (``train.<key>`` named).
            ValueError: a value out of range.
        """
        return typed(cls, cfg, "train")

    def fidelity(self) -> str:
        """Short readable label of the budget, e.g. "e5-pc500-w0.25-b128" (with "-min64" when
        layers are kept at 64 channels or more, "-r32" when trained at a resolution of its own,
        "-bf16" when computed in bfloat16)."""
        per_class = "all" if self.train_per_class is None else str(self.train_per_class)
        label = f"e{self.epochs}-pc{per_class}-w{self.width_mult:g}-b{self.batch_size}"
        if self.min_channels > 1:
            label += f"-min{self.min_channels}"
        if self.resolution is not None:
            label += f"-r{self.resolution}"
        return label + COMPUTE_DTYPES[self.compute_dtype][1]

    def autocast(self, device: torch.device) -> torch.autocast:
        """The autocast context of this budget's compute dtype on `device` (disabled for
        float32)."""
        dtype = COMPUTE_DTYPES[self.compute_dtype][0]
        return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    def trained_data(self, data: DataSpec) -> DataSpec:
        """`data` at the resolution this budget trains at (`data` itself without one)."""
        return data if self.resolution is None else replace(data, input_size=self.resolution)


MEMORY_FORMAT = torch.channels_last
"""Layout of activations and conv weights in training and evaluation: NHWC, faster on CPU than
NCHW (oneDNN's NHWC convolution kernels; the timing is in docs/ground_truth.md, "Training
recipe"); the arithmetic is the same, only the rounding order differs."""


@dataclass
class Splits:
    """The three splits of one training budget: train, validation (None if none) and test."""

    train: Split
    val: Split | None
    test: Split


def budget_splits(
    data: DataSpec, spec: TrainSpec, cache_dir: str | os.PathLike | None = None
) -> Splits:
    """The train / validation / test splits `spec` asks for (decoded and cached once), at the
    budget's resolution."""
    data = spec.trained_data(data)
    val = (decoded_split(data, "val", None, cache_dir, spec.val_per_class)
           if spec.val_per_class else None)
    return Splits(
        decoded_split(data, "train", spec.train_per_class, cache_dir, spec.val_per_class),
        val,
        decoded_split(data, "test", spec.test_per_class, cache_dir),
    )


@dataclass
class TrainResult:
    """Outcome of one training run.

    Attributes:
        model: the trained network, in eval mode, on the CPU.
        clean_accuracy_pct: top-1 accuracy on the test images in %, full-precision float.
        history: per epoch {"epoch", "loss", "train_accuracy_pct", "lr"}.
        wall_s: wall-clock seconds of data loading, training and evaluation.
        device: device trained on, e.g. "cpu" or "cuda:0 (NVIDIA H100)".
        n_train: training images used; n_test: test images evaluated.
        spec: the budget and recipe.
        val_accuracy_pct: top-1 accuracy on the validation images in % (None without them).
        n_val: validation images evaluated (0 without them).
    """

    model: nn.Sequential
    clean_accuracy_pct: float
    history: list[dict[str, float]]
    wall_s: float
    device: str
    n_train: int
    n_test: int
    spec: TrainSpec = field(repr=False)
    val_accuracy_pct: float | None = None
    n_val: int = 0

    def measured(self) -> dict[str, Any]:
        """The run's measurements as ground-truth table columns."""
        return {"accuracy_pct": self.clean_accuracy_pct, "test_images": self.n_test,
                "val_accuracy_pct": self.val_accuracy_pct, "val_images": self.n_val,
                "device": self.device}


@dataclass
class TrainingImages:
    """A training split held on the training device, served one epoch at a time as augmented,
    normalised batches.

    Attributes:
        pixels: (N, 3, H, W) uint8.
        labels: (N,) int64 class indices.
        dataset: selects the normalisation.
        batch_size: images per step; an epoch is `steps_per_epoch` full batches.
    """

    pixels: torch.Tensor
    labels: torch.Tensor
    dataset: str
    batch_size: int

    @classmethod
    def of(cls, split: Split, batch_size: int, device: torch.device) -> TrainingImages:
        """`split` moved to `device` once."""
        pixels = torch.from_numpy(split.images).permute(0, 3, 1, 2).contiguous().to(device)
        return cls(pixels, torch.from_numpy(split.labels).to(device), split.dataset, batch_size)

    @property
    def steps_per_epoch(self) -> int:
        """Full batches per epoch (at least 1)."""
        return max(1, len(self.labels) // self.batch_size)

    def epoch(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) batches of one epoch in a random order, randomly cropped and flipped,
        all drawn from `generator`."""
        order = torch.randperm(len(self.labels), generator=generator, device=self.labels.device)
        for i in range(self.steps_per_epoch):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = normalise(augment(self.pixels[idx], generator), self.dataset)
            yield x.contiguous(memory_format=MEMORY_FORMAT), self.labels[idx]


def lr_schedule(optimiser: torch.optim.Optimizer, warmup: int, total: int) -> LRScheduler:
    """Per-step learning rate: linear warm-up over ``warmup`` steps (peak (s + 1) / warmup at
    step s), then cosine decay from the optimiser's peak lr to 0 at step ``total``."""
    cosine = CosineAnnealingLR(optimiser, T_max=max(1, total - warmup))
    if warmup <= 0:
        return cosine
    linear = LinearLR(optimiser, start_factor=1.0 / warmup, total_iters=max(1, warmup - 1))
    return SequentialLR(optimiser, [linear, cosine], milestones=[warmup])


def recipe(model: nn.Module, spec: TrainSpec,
           steps_per_epoch: int) -> tuple[torch.optim.Optimizer, LRScheduler]:
    """The recipe's optimiser (SGD, Nesterov momentum, weight decay) over `model` and its
    per-step schedule (`lr_schedule`: `spec.warmup_epochs` of warm-up, cosine to `spec.epochs`)."""
    optimiser = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum,
                                nesterov=True, weight_decay=spec.weight_decay)
    warmup = int(round(spec.warmup_epochs * steps_per_epoch))
    return optimiser, lr_schedule(optimiser, warmup, steps_per_epoch * spec.epochs)


@torch.no_grad()
def accuracy_pct(
    model: nn.Module, split: Split, batch_size: int = 500, device: torch.device | None = None
) -> float:
    """Top-1 accuracy of `model` (eval mode) on every image of `split`, in %."""
    device = device or next(model.parameters()).device
    model.eval()
    correct = 0
    for start in range(0, len(split), batch_size):
        index = slice(start, start + batch_size)
        x = split.normalised(index).to(device).contiguous(memory_format=MEMORY_FORMAT)
        labels = torch.from_numpy(split.labels[index]).to(device)
        correct += int((model(x).argmax(1) == labels).sum())
    return 100.0 * correct / max(1, len(split))


def train_network(
    channels: Sequence[int] | np.ndarray,
    data: DataSpec | Mapping[str, Any],
    spec: TrainSpec | Mapping[str, Any] | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    train_split: Split | None = None,
    test_split: Split | None = None,
    val_split: Split | None = None,
) -> TrainResult:
    """Train the network of `channels` from scratch; measure its validation and test accuracy.

    Args:
        channels: output channels per conv layer as searched (before `spec.width_mult`).
        data: the `data:` node; its input size and classes define the backbone.
        spec: budget and recipe (`TrainSpec` or the `train:` node).
        seed: seeds weights, batch order and augmentation.
        cache_dir: where decoded splits are cached.
        train_split, test_split, val_split: already decoded splits (skip loading; e.g. in a
            benchmark that trains many networks on the same data). Without `train_split` the
            splits come from `budget_splits`; `val_split` None then means none is measured
            unless `spec.val_per_class` asks for one.

    Raises:
        DataError: the data set is missing (the message names the paths tried and the fix).
    """
    start = time.perf_counter()
    retain_freed_memory()
    data = data if isinstance(data, DataSpec) else DataSpec.from_config(data)
    spec = spec if isinstance(spec, TrainSpec) else TrainSpec.from_config(spec)
    data = spec.trained_data(data)
    with torch_threads(spec.num_threads):
        device = pick_device(spec.device)
        if train_split is None:
            splits = budget_splits(data, spec, cache_dir)
            train_split, val_split = splits.train, splits.val
            test_split = test_split or splits.test
        train = train_split
        test = test_split or decoded_split(data, "test", spec.test_per_class, cache_dir)
        backbone = Backbone(input_size=data.input_size, num_classes=data.num_classes)
        torch.manual_seed(seed)
        model = build_network(channels, backbone, spec.width_mult,
                              min_channels=spec.min_channels).to(
            device, memory_format=MEMORY_FORMAT)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=spec.label_smoothing)
        images = TrainingImages.of(train, spec.batch_size, device)
        optimiser, scheduler = recipe(model, spec, images.steps_per_epoch)
        gen = torch.Generator(device=device).manual_seed(seed)
        history: list[dict[str, float]] = []
        for epoch in range(1, spec.epochs + 1):
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            for x, y in images.epoch(gen):
                lr = scheduler.get_last_lr()[0]
                with spec.autocast(device):
                    logits = model(x)
                    loss = loss_fn(logits, y)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                scheduler.step()
                loss_sum += float(loss.detach()) * len(y)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
            if not math.isfinite(loss_sum):
                raise FloatingPointError(
                    f"training diverged in epoch {epoch} (loss {loss_sum}); "
                    f"lower train.lr={spec.lr}"
                )
            history.append({"epoch": epoch, "loss": loss_sum / seen,
                            "train_accuracy_pct": 100.0 * correct / seen, "lr": lr})
            log.info("epoch %d/%d: loss %.3f, train accuracy %.1f %%", epoch, spec.epochs,
                     loss_sum / seen, 100.0 * correct / seen)
        with spec.autocast(device):
            clean = accuracy_pct(model, test, spec.eval_batch_size, device)
            val = None if val_split is None else accuracy_pct(model, val_split,
                                                              spec.eval_batch_size, device)
        name = str(device)
        if device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(device)})"
        model = model.cpu().eval()
        return TrainResult(model, clean, history, time.perf_counter() - start, name, len(train),
                           len(test), spec, val, 0 if val_split is None else len(val_split))

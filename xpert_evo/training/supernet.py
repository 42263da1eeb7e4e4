"""A weight-sharing supernet of the channel space: the other way to measure accuracy cheaply.

Once-for-All's elastic width, applied to the VGG backbone: every conv layer holds the filters of
its widest channel option, and a subnet with ``c`` output channels runs the first ``c`` of them
over the first channels of its input (channel slicing); BatchNorm and the classifier slice the
same way. Training follows the sandwich rule: every step trains the largest subnet on the labels,
then the smallest and `n_random` random ones (each layer's width drawn uniformly from the
options) on the largest one's soft predictions (in-place distillation), and takes one SGD step on
the summed gradients. Because every subnet shares BatchNorm statistics during training, a subnet
is measured only after BatchNorm recalibration: its statistics are recomputed on training images.

The budget, recipe, data and splits are those of stand-alone training (`TrainSpec`), so a
supernet trained at a source's fidelity ranks the same networks the source measured
(bench/studies/supernet_fidelity.py). Training checkpoints after every epoch and resumes from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as fn

from xpert_evo.files import atomic_write
from xpert_evo.space.backbone import Backbone
from xpert_evo.training.data import DataSpec, Split
from xpert_evo.training.network import (
    build_network,
    pick_device,
    retain_freed_memory,
    scaled_channels,
    torch_threads,
)
from xpert_evo.training.train import (
    MEMORY_FORMAT,
    TrainingImages,
    TrainSpec,
    accuracy_pct,
    budget_splits,
    recipe,
)

log = logging.getLogger(__name__)


class ElasticConv2d(nn.Conv2d):
    """A conv holding its widest filters; runs the first `active_out` of them over however many
    input channels it is given (stride, padding and no bias as built by `build_network`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.active_out = self.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight[: self.active_out, : x.shape[1]]
        return fn.conv2d(x, weight, None, self.stride, self.padding)


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first channels of its widest size, as many as the input has.

    Running statistics update the same slice (`momentum` None = cumulative average, as in
    `nn.BatchNorm2d`).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        factor = 0.0
        if self.training:
            self.num_batches_tracked.add_(1)
            factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                      else self.momentum)
        return fn.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c],
                             self.bias[:c], self.training, factor, self.eps)


class ElasticLinear(nn.Linear):
    """The classifier over the first input features, as many as the subnet's last layer has."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fn.linear(x, self.weight[:, : x.shape[1]], self.bias)


def build_supernet(
    options: Sequence[int], backbone: Backbone | None = None, width_mult: float = 1.0
) -> nn.Sequential:
    """The supernet of every network whose conv layers take channel counts from `options`.

    Args:
        options: the searched channel options (e.g. 64, 128, 256, 512), before `width_mult`.
        backbone: geometry (input channels, kernel, pools, classes); the XPert default if None.
        width_mult: multiplies every channel count, as in stand-alone training.

    Returns:
        `nn.Sequential` laid out like `build_network`'s, with elastic conv, BatchNorm and linear
        layers at the widest option; it starts as the largest subnet (see `set_subnet`).
    """
    backbone = backbone or Backbone()
    return build_network([max(options)] * backbone.n_conv, backbone, width_mult,
                         layers=(ElasticConv2d, ElasticBatchNorm2d, ElasticLinear))


def elastic_convs(model: nn.Module) -> list[ElasticConv2d]:
    """The supernet's conv layers in order."""
    return [m for m in model.modules() if isinstance(m, ElasticConv2d)]


def set_subnet(model: nn.Module, channels: Sequence[int] | np.ndarray,
               width_mult: float = 1.0, min_channels: int = 1) -> list[int]:
    """Make the supernet run the network of `channels` (as searched, before `width_mult` and
    `min_channels`, see `scaled_channels`).

    Returns:
        The active output channels per conv layer.

    Raises:
        ValueError: wrong number of layers, or a layer wider than the supernet holds.
    """
    convs = elastic_convs(model)
    widths = scaled_channels(np.asarray(channels).reshape(-1).tolist(), width_mult,
                             min_channels)
    if len(widths) != len(convs):
        raise ValueError(f"got {len(widths)} channel genes for {len(convs)} conv layers")
    too_wide = [i for i, (w, conv) in enumerate(zip(widths, convs, strict=True))
                if w > conv.out_channels]
    if too_wide:
        raise ValueError(f"layers {too_wide} ask for more channels than the supernet's "
                         f"{convs[0].out_channels} (after width_mult={width_mult})")
    for conv, width in zip(convs, widths, strict=True):
        conv.active_out = width
    return widths


@torch.no_grad()
def recalibrate(model: nn.Module, split: Split, n_images: int = 2000, batch_size: int = 250,
                device: torch.device | None = None) -> None:
    """Recompute the active subnet's BatchNorm statistics on the first `n_images` of `split`
    (cumulative average over batches, no augmentation); the inactive channels' statistics are
    reset. Leaves the model in eval mode."""
    device = device or next(model.parameters()).device
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for start in range(0, min(n_images, len(split)), batch_size):
        index = slice(start, min(start + batch_size, n_images))
        model(split.normalised(index).to(device).contiguous(memory_format=MEMORY_FORMAT))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def sample_widths(options: Sequence[int], n_layers: int, n: int,
                  generator: torch.Generator) -> list[list[int]]:
    """The sandwich of one step: the largest, the smallest and `n` random channel lists."""
    values = torch.tensor(sorted(options))
    picks = torch.randint(0, len(values), (n, n_layers), generator=generator)
    return ([[int(values[-1])] * n_layers, [int(values[0])] * n_layers]
            + values[picks].tolist())


@dataclass
class SupernetResult:
    """A trained supernet.

    Attributes:
        model: the supernet, on the CPU.
        history: per epoch {"epoch", "loss", "train_accuracy_pct", "lr"}, of the largest subnet.
        wall_s: wall-clock seconds of training, summed over resumed runs.
        device: device trained on.
    """

    model: nn.Sequential
    history: list[dict[str, float]]
    wall_s: float
    device: str


def train_supernet(
    options: Sequence[int],
    data: DataSpec,
    spec: TrainSpec,
    seed: int = 0,
    n_random: int = 2,
    distill: bool = True,
    checkpoint: Path | None = None,
    cache_dir: str | Path | None = None,
) -> SupernetResult:
    """Train the supernet of `options` with the sandwich rule at the budget `spec`.

    Args:
        options: searched channel options (before `spec.width_mult`).
        data: the `data:` node; `spec.resolution` applies as in stand-alone training.
        spec: budget and recipe (epochs, images per class, width, batch, lr, ...).
        seed: seeds weights, batch order, augmentation and subnet sampling.
        n_random: random subnets per step besides the largest and the smallest.
        distill: train the smaller subnets on the largest one's soft predictions (True) or on
            the labels (False).
        checkpoint: file written after every epoch and resumed from when it exists.
        cache_dir: where decoded splits are cached.
    """
    retain_freed_memory()
    data = spec.trained_data(data)
    backbone = Backbone(input_size=data.input_size, num_classes=data.num_classes)
    with torch_threads(spec.num_threads):
        device = pick_device(spec.device)
        images = TrainingImages.of(budget_splits(data, spec, cache_dir).train, spec.batch_size,
                                   device)
        torch.manual_seed(seed)
        model = build_supernet(options, backbone, spec.width_mult).to(
            device, memory_format=MEMORY_FORMAT)
        optimiser, scheduler = recipe(model, spec, images.steps_per_epoch)
        gen = torch.Generator(device=device).manual_seed(seed)
        sampler = torch.Generator().manual_seed(seed)
        state = {"epoch": 0, "history": [], "wall_s": 0.0}
        if checkpoint is not None and checkpoint.is_file():
            state = torch.load(checkpoint, map_location=device, weights_only=False)
            model.load_state_dict(state.pop("model"))
            optimiser.load_state_dict(state.pop("optimiser"))
            scheduler.load_state_dict(state.pop("scheduler"))
            gen.set_state(state.pop("generator"))
            sampler.set_state(state.pop("sampler"))
            log.info("supernet: resumed after epoch %d from %s", state["epoch"], checkpoint)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=spec.label_smoothing)
        for epoch in range(state["epoch"] + 1, spec.epochs + 1):
            start = time.perf_counter()
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            for x, y in images.epoch(gen):
                lr = scheduler.get_last_lr()[0]
                optimiser.zero_grad(set_to_none=True)
                teacher = None
                for k, widths in enumerate(sample_widths(options, backbone.n_conv, n_random,
                                                         sampler)):
                    set_subnet(model, widths, spec.width_mult, spec.min_channels)
                    with spec.autocast(device):
                        logits = model(x)
                        if k == 0 or not distill:
                            loss = loss_fn(logits, y)
                        else:
                            loss = fn.kl_div(fn.log_softmax(logits, 1), teacher,
                                             reduction="batchmean")
                    loss.backward()
                    if k == 0:
                        teacher = fn.softmax(logits.detach().float(), 1)
                        loss_sum += float(loss.detach()) * len(y)
                        correct += int((logits.argmax(1) == y).sum())
                        seen += len(y)
                optimiser.step()
                scheduler.step()
            if not np.isfinite(loss_sum):
                raise FloatingPointError(f"supernet training diverged in epoch {epoch}; "
                                         f"lower train.lr={spec.lr}")
            state["history"].append({"epoch": epoch, "loss": loss_sum / seen,
                                     "train_accuracy_pct": 100.0 * correct / seen, "lr": lr})
            state["wall_s"] += time.perf_counter() - start
            state["epoch"] = epoch
            log.info("supernet epoch %d/%d: largest subnet loss %.3f, train accuracy %.1f %% "
                     "(%.0f s)", epoch, spec.epochs, loss_sum / seen, 100.0 * correct / seen,
                     time.perf_counter() - start)
            if checkpoint is not None:
                saved = {**state, "model": model.state_dict(),
                         "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
                         "generator": gen.get_state(), "sampler": sampler.get_state()}
                atomic_write(checkpoint, lambda fh, saved=saved: torch.save(saved, fh))
        set_subnet(model, [max(options)] * backbone.n_conv, spec.width_mult)
        return SupernetResult(model.cpu().eval(), state["history"], state["wall_s"], str(device))


def subnet_accuracy_pct(
    model: nn.Module,
    channels: Sequence[int] | np.ndarray,
    width_mult: float,
    calibration: Split,
    evaluation: Split,
    n_calibration: int = 2000,
    batch_size: int = 500,
    min_channels: int = 1,
) -> float:
    """Top-1 accuracy in % of the subnet `channels` on `evaluation`, after recalibrating its
    BatchNorm statistics on the first `n_calibration` images of `calibration`."""
    set_subnet(model, channels, width_mult, min_channels)
    recalibrate(model, calibration, n_calibration)
    return accuracy_pct(model, evaluation, batch_size)

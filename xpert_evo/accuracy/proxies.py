"""Zero-cost accuracy proxies: score an untrained network from one batch, without training.

Each proxy is a function (network, batch) -> float, higher = predicted more accurate:

* `naswot` (Mellor et al. 2021, XPert's "hook_logdet"): binary ReLU activation codes of a batch
  in a freshly initialised network, kernel K = sum over ReLUs of c c^T + (1 - c)(1 - c)^T,
  score = log|det K| (natural log, dimensionless).
* `synflow` (Tanaka et al. 2020): natural log of sum |theta * dR/dtheta| over conv and linear
  weights, R = sum of the outputs of the network with |weights| on an all-ones input; data-free.
* `params`: the number of trainable parameters, the baseline every proxy must beat.

`score_architecture` builds the network for one channel vector under a fixed seed, so a score
depends only on (proxy, channels, backbone, batch, seed), never on peripheral genes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xpert_evo.space.backbone import Backbone
from xpert_evo.training.network import build_network

log = logging.getLogger(__name__)


def naswot(network: nn.Module, batch: torch.Tensor) -> float:
    """log|det K| of the NASWOT activation-code kernel; -inf when K is singular.

    Runs one forward pass in train mode (BatchNorm uses batch statistics) without gradients.
    For every `nn.ReLU`, the code c = (input > 0) of each sample adds c c^T + (1-c)(1-c)^T to the
    (B, B) kernel, computed as 2 c c^T - r 1^T - 1 r^T + D (r = row sums, D = units) with one
    matrix product; each layer's integer counts are exact in float32 and summed in float64.
    """
    n = batch.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        codes = (inputs[0].reshape(n, -1) > 0).float()
        gram = codes @ codes.T
        rows = codes.sum(dim=1, keepdim=True)
        layer = 2.0 * gram - rows - rows.T + codes.shape[1]
        kernel.add_(layer.double())

    handles = [m.register_forward_hook(hook) for m in network.modules() if isinstance(m, nn.ReLU)]
    try:
        network.train()
        with torch.no_grad():
            network(batch)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) != 0.0 else -math.inf


def synflow(network: nn.Module, batch: torch.Tensor) -> float:
    """Natural log of the SynFlow saliency sum; data-free (uses only the batch's image shape).

    Replaces every parameter by its absolute value (in place: pass a fresh network), puts
    BatchNorm in eval mode, and back-propagates the sum of the outputs for one all-ones image in
    float64. The sum can exceed 1e100 on wide networks, hence the log.
    """
    network.double().eval()
    with torch.no_grad():
        for p in network.parameters():
            p.abs_()
    network.zero_grad()
    ones = torch.ones((1, *batch.shape[1:]), dtype=torch.float64)
    network(ones).sum().backward()
    with torch.no_grad():
        total = sum(
            float((m.weight * m.weight.grad).abs().sum())
            for m in network.modules()
            if isinstance(m, nn.Conv2d | nn.Linear) and m.weight.grad is not None
        )
    return math.log(total) if total > 0 else -math.inf


def param_count(network: nn.Module, batch: torch.Tensor) -> float:
    """Number of trainable parameters (the batch is ignored)."""
    return float(sum(p.numel() for p in network.parameters() if p.requires_grad))


@dataclass(frozen=True)
class Proxy:
    """A registered proxy.

    Attributes:
        name: config name (`accuracy.proxy`).
        fn: the scoring function (network, batch) -> float.
        uses_data: False when the score ignores the images (then the cache key ignores them too).
        worst: finite score given to a degenerate network (NaN or infinite raw score); below
            anything a real network on this backbone scores.
        version: bumped whenever the computation changes, so cached scores go stale.
        unit: what the number means, for labels.
    """

    name: str
    fn: Callable[[nn.Module, torch.Tensor], float]
    uses_data: bool
    worst: float
    version: int
    unit: str


PROXIES: dict[str, Proxy] = {
    "naswot": Proxy("naswot", naswot, True, 0.0, 1, "log|det K|"),
    "synflow": Proxy("synflow", synflow, False, 0.0, 1, "log synflow"),
    "params": Proxy("params", param_count, False, 0.0, 1, "parameters"),
}
"""Every proxy by config name."""


def get_proxy(name: str) -> Proxy:
    """The registered proxy called `name`; ValueError listing the choices otherwise."""
    if name not in PROXIES:
        raise ValueError(f"accuracy.proxy={name!r} is not one of {sorted(PROXIES)}")
    return PROXIES[name]


def score_architecture(
    proxy: Proxy | str,
    channels: Sequence[int] | np.ndarray,
    batch: torch.Tensor,
    backbone: Backbone | None = None,
    seed: int = 0,
    width_mult: float = 1.0,
) -> float:
    """The proxy score of a freshly initialised network (weights seeded by `seed`).

    The global torch RNG is left untouched. A NaN or infinite raw score (e.g. a singular NASWOT
    kernel) is replaced by `proxy.worst` with a warning.
    """
    proxy = get_proxy(proxy) if isinstance(proxy, str) else proxy
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build_network(channels, backbone, width_mult)
    raw = proxy.fn(network, batch)
    if not math.isfinite(raw):
        log.warning(
            "%s score of channels %s is %s (degenerate network); using the worst score %s",
            proxy.name, list(np.asarray(channels).reshape(-1)), raw, proxy.worst,
        )
        return proxy.worst
    return raw

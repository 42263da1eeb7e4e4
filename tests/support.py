"""Helpers only the tests use: building genomes from a gene array, and the stand-alone network a
supernet's subnet computes (the oracle its slicing is checked against)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import GENE_NAMES, Genomes
from xpert_evo.training.network import build_network
from xpert_evo.training.supernet import set_subnet


def genomes_from_stack(genes: np.ndarray) -> Genomes:
    """The genomes of an (N, L, 5) gene array in `GENE_NAMES` order (inverse of
    `Genomes.stack`)."""
    genes = np.asarray(genes)
    return Genomes(**{name: genes[..., i] for i, name in enumerate(GENE_NAMES)})


def extract_subnet(model: nn.Sequential, channels: Sequence[int] | np.ndarray,
                   backbone: Backbone | None = None, width_mult: float = 1.0) -> nn.Sequential:
    """The stand-alone network of `channels` (`build_network`) carrying the supernet's sliced
    weights and BatchNorm statistics, in eval mode."""
    set_subnet(model, channels, width_mult)
    net = build_network(channels, backbone, width_mult)
    with torch.no_grad():
        c_in = None
        for big, small in zip(model, net, strict=True):
            if isinstance(small, nn.Conv2d):
                small.weight.copy_(big.weight[: small.out_channels, : small.in_channels])
                c_in = small.out_channels
            elif isinstance(small, nn.BatchNorm2d):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(small, name).copy_(getattr(big, name)[: small.num_features])
            elif isinstance(small, nn.Linear):
                small.weight.copy_(big.weight[:, :c_in])
                small.bias.copy_(big.bias)
    return net.eval()

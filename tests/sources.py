"""A synthetic measured-accuracy source for tests: known accuracies of channel configurations,
written in the source's file layout (`xpert_evo.training.source`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xpert_evo.accuracy.predictor import capacity_features
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.groundtruth import append_rows, fidelity_columns, genome_columns
from xpert_evo.training.source import SourcePlan
from xpert_evo.training.train import TrainSpec

OPTIONS = np.array([64, 128, 256, 512])


def synthetic_accuracy(channels: np.ndarray) -> np.ndarray:
    """A known capacity -> accuracy law (wider middle stages help most), in %."""
    x = capacity_features(channels, Backbone())
    return 40.0 + 2.0 * x[:, 2] + 1.5 * x[:, 3] + 0.5 * x[:, 0]


def write_source(root: Path, channels: np.ndarray, fidelity: str = "e5-pc500-w0.25-b64",
                 dataset: str = "cifar10") -> Path:
    """A source folder with one row per network, accuracies from `synthetic_accuracy`."""
    folder = root / f"{dataset}-{fidelity}"
    acc = synthetic_accuracy(channels)
    spec = TrainSpec(epochs=5, train_per_class=500, width_mult=0.25, batch_size=64)
    rows = [{**genome_columns(Genomes.uniform(c.tolist(), 8, "flash", 6, 8)),
             **fidelity_columns(spec), "dataset": dataset, "kind": "train", "seed": 0,
             "accuracy_pct": a + 0.3, "val_accuracy_pct": a, "net_id": i,
             "role": SourcePlan.role(i)}
            for i, (c, a) in enumerate(zip(channels, acc, strict=True))]
    append_rows(rows, folder / "shard-0-of-1.csv")
    return folder

"""The one question the search asks: how accurate is this channel configuration?

`AccuracyModel` is that interface. `ProxyEstimator` (zero-cost proxy + surrogate) implements it,
and so does the tests' stand-in. Accuracy depends on the channel genes only.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class AccuracyModel(Protocol):
    """What the search needs from an accuracy source.

    Scores come in the source's raw units (a proxy's scale, or % once calibrated): `true_score`
    measures channel configurations (N, L), `fit` learns from measured ones, `predict` returns
    the (mean, std) score of any, each (N,). `to_accuracy` maps scores to the objective's units;
    `label` names those units and `is_percent` says whether they are %. The raw scale stays in
    the interface because the search caches true scores and the measured-accuracy model reads
    them unmapped.

    Attributes:
        label: column / axis label of `to_accuracy` values.
        is_percent: True when `to_accuracy` returns accuracy in %.
        source: where the scores come from, in words.
        n_true_calls: true scores actually computed so far.
        score_kind: what a true score is, for the run tables' `accuracy_from` column: "proxy"
            (a zero-cost proxy) or "predicted" (the measured-source predictor).
        basis: the data the scores rest on, in a few words for summary.md's first line and the
            plot's axis label: "proxy batch: real CIFAR-10 images", "proxy batch: Gaussian
            noise (no cifar10 found at ...)", "predicted from 19 trained networks (...)".
    """

    label: str
    is_percent: bool
    source: str
    n_true_calls: int
    score_kind: str
    basis: str

    def true_score(self, channels: np.ndarray) -> np.ndarray:
        """True scores (N,) of channel configurations (N, L)."""

    def fit(self, channels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
        """Learn from measured (channels, scores); returns fit statistics."""

    def predict(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted score mean and std, each (N,), in the raw score units."""

    def to_accuracy(self, scores: np.ndarray) -> np.ndarray:
        """Scores (N,) -> the objective's units (see `label`)."""

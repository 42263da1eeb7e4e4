"""Accuracy of channel configurations for the search: cached true proxy scores + a surrogate.

The accuracy estimator (`xpert_evo.accuracy.build_accuracy`) scores channel configurations with a
(costly) true proxy and predicts them with a (cheap) surrogate. `AccuracyOracle` keeps every true
score it ever asked for, never asks twice for the same channels, and answers a batch with the true
score where one is known and the surrogate prediction elsewhere. Accuracy depends on the channel
genes only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from xpert_evo.search.archive import row_keys


class AccuracyEstimator(Protocol):
    """What the search needs from an accuracy estimator (see `xpert_evo.accuracy`)."""

    label: str
    is_percent: bool
    source: str
    n_true_calls: int

    def true_score(self, channels: np.ndarray) -> np.ndarray: ...

    def fit(self, channels: np.ndarray, scores: np.ndarray) -> dict[str, Any]: ...

    def predict(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def to_accuracy(self, scores: np.ndarray) -> np.ndarray: ...


@dataclass
class AccuracyOracle:
    """Batched accuracy answers with a cache of true scores.

    Attributes:
        estimator: the accuracy estimator.
        use_surrogate: predict unmeasured channels with the surrogate (True) or measure every
            new channel configuration with the true proxy (False).
        channels: measured channel configurations (M, L).
        scores: their true scores (M,), in the estimator's raw score units.
        fits: the surrogate's fit statistics after each refit (kendall_tau, spearman_rho, n).
    """

    estimator: AccuracyEstimator
    use_surrogate: bool
    channels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fits: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._keys = row_keys(self.channels) if len(self.channels) else np.zeros(0, np.uint64)

    @property
    def n_measured(self) -> int:
        """Number of distinct channel configurations scored with the true proxy."""
        return len(self.scores)

    def lookup(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(known mask (N,), true score where known else nan (N,)) for channels (N, L)."""
        channels = np.asarray(channels, dtype=np.int64)
        known = np.zeros(len(channels), dtype=bool)
        score = np.full(len(channels), np.nan)
        if self.n_measured == 0 or len(channels) == 0:
            return known, score
        order = np.argsort(self._keys)
        sorted_keys = self._keys[order]
        k = row_keys(channels)
        pos = np.minimum(np.searchsorted(sorted_keys, k), len(sorted_keys) - 1)
        hit = order[pos]
        known = (sorted_keys[pos] == k) & np.all(self.channels[hit] == channels, axis=1)
        score[known] = self.scores[hit[known]]
        return known, score

    def measure(self, channels: np.ndarray) -> np.ndarray:
        """True scores (N,) of channels (N, L); only configurations not yet measured cost a call."""
        channels = np.asarray(channels, dtype=np.int64)
        known, score = self.lookup(channels)
        if not known.all():
            new = np.unique(channels[~known], axis=0)
            new_scores = np.asarray(self.estimator.true_score(new), dtype=float)
            self.channels = new if self.n_measured == 0 else np.concatenate([self.channels, new])
            self.scores = np.concatenate([self.scores, new_scores])
            self._keys = row_keys(self.channels)
            known, score = self.lookup(channels)
        return score

    def refit(self) -> dict[str, Any]:
        """Fit the surrogate on every true score so far; returns and records its fit statistics."""
        stats = dict(self.estimator.fit(self.channels, self.scores))
        self.fits.append(stats)
        return stats

    def accuracy(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Accuracy of channels (N, L) in `estimator.to_accuracy` units.

        Returns:
            (accuracy (N,), std (N,) in the same units, 0 where measured, measured mask (N,)).
        """
        channels = np.asarray(channels, dtype=np.int64)
        if not self.use_surrogate:
            score = self.measure(channels)
            return self._to_acc(score), np.zeros(len(score)), np.ones(len(score), dtype=bool)
        known, true = self.lookup(channels)
        mean, std = (np.asarray(a, dtype=float) for a in self.estimator.predict(channels))
        score = np.where(known, true, mean)
        acc = self._to_acc(score)
        acc_std = np.abs(self._to_acc(mean + std) - self._to_acc(mean))
        return acc, np.where(known, 0.0, acc_std), known

    def _to_acc(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.to_accuracy(np.asarray(scores, dtype=float)), dtype=float)

    def state(self) -> dict[str, Any]:
        """Picklable state (the estimator itself is rebuilt, then refit, on resume)."""
        return {"channels": self.channels, "scores": self.scores, "fits": list(self.fits)}

    def restore(self, state: dict[str, Any]) -> None:
        """Load `state` and refit the surrogate on the restored true scores."""
        self.channels = np.asarray(state["channels"], dtype=np.int64)
        self.scores = np.asarray(state["scores"], dtype=float)
        self.fits = list(state["fits"])
        self._keys = row_keys(self.channels) if len(self.channels) else np.zeros(0, np.uint64)
        if self.use_surrogate and self.n_measured:
            self.estimator.fit(self.channels, self.scores)

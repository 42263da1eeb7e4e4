"""A zero-cost proxy and its surrogate behind the search's `AccuracyPredictor` interface.

`ProxyPredictor` keeps every true proxy score it asked its `ProxyScorer` for and never asks twice
for the same channels. With a surrogate it answers a population with the true score where one is
known and the surrogate's prediction elsewhere; without one it scores every new channel
configuration. Values are on the proxy's scale (`label`), or in % when the scorer is calibrated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xpert_evo.accuracy.model import AccuracyEstimate, ProxyScorer
from xpert_evo.accuracy.rows import RowTable
from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.space.genome import Genomes


class ProxyPredictor:
    """True proxy scores (cached per channel configuration) and a surrogate for the others.

    Args:
        scorer: the proxy and its surrogate.
        use_surrogate: predict unscored channels with the surrogate (True) or score every new
            channel configuration with the true proxy (False).
        penalty: the crossbar precision loss model, or None.

    Attributes:
        scores: the true scores, keyed by channel configuration.
        fits: the surrogate's fit statistics after each `refit_surrogate` (kendall_tau,
            spearman_rho, n).
    """

    kind = "proxy"

    def __init__(
        self, scorer: ProxyScorer, use_surrogate: bool, penalty: PrecisionPenalty | None = None
    ) -> None:
        self.scorer = scorer
        self.use_surrogate = use_surrogate
        self.penalty = penalty
        self.scores = RowTable(1)
        self.fits: list[dict[str, Any]] = []

    @property
    def label(self) -> str:
        """Column / axis label of the values (the scorer's)."""
        return self.scorer.label

    @property
    def is_percent(self) -> bool:
        """True when the scorer maps scores to % (calibrated)."""
        return bool(self.scorer.is_percent)

    @property
    def source(self) -> str:
        """Where the scores come from, in words."""
        return self.scorer.source

    @property
    def basis(self) -> str:
        """The data the scores rest on ("proxy batch: real CIFAR-10 images")."""
        return self.scorer.basis

    @property
    def n_scored(self) -> int:
        """Distinct channel configurations scored with the true proxy."""
        return len(self.scores)

    def known(self, channels: np.ndarray) -> np.ndarray:
        """Mask (N,): which channel configurations (N, L) hold a true proxy score."""
        return self.scores.lookup(channels)[0]

    def score(self, channels: np.ndarray) -> np.ndarray:
        """True proxy scores (N,) of channels (N, L), raw scale; only configurations not scored
        yet cost a call."""
        channels = np.atleast_2d(np.asarray(channels, dtype=np.int64))
        known, values = self.scores.lookup(channels)
        if not known.all():
            new = np.unique(channels[~known], axis=0)
            self.scores.add(new, np.asarray(self.scorer.true_score(new), dtype=float))
            known, values = self.scores.lookup(channels)
        return values[:, 0]

    def refit_surrogate(self) -> dict[str, Any]:
        """Fit the surrogate on every true score so far; returns and records its statistics."""
        stats = dict(self.scorer.fit(self.scores.rows, self.scores.values[:, 0]))
        self.fits.append(stats)
        return stats

    def raw(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(score, std, origin), each (N,), on the proxy's raw scale: the true score (std 0,
        "proxy") where known or without a surrogate, the surrogate's mean and std ("surrogate")
        elsewhere."""
        channels = np.asarray(channels, dtype=np.int64)
        if not self.use_surrogate:
            score = self.score(channels)
            return score, np.zeros(len(score)), np.full(len(score), "proxy")
        known, true = self.scores.lookup(channels)
        mean, std = (np.asarray(a, dtype=float) for a in self.scorer.predict(channels))
        origin = np.where(known, "proxy", "surrogate")
        return np.where(known, true[:, 0], mean), np.where(known, 0.0, std), origin

    def clean(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clean, std, origin), each (N,), in the label's units: `raw` mapped by the scorer
        (the std as the mapped distance of score + std from score)."""
        score, std, origin = self.raw(channels)
        value = self._mapped(score)
        return value, np.abs(self._mapped(score + std) - value), origin

    def _mapped(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(self.scorer.to_accuracy(np.asarray(scores, dtype=float)), dtype=float)

    def predict(self, genomes: Genomes) -> AccuracyEstimate:
        """The estimate of every design of ``genomes``; on a proxy scale the net is the clean
        score and the loss is only reported (for ``constraints.precision_loss_pp``)."""
        clean, std, origin = self.clean(genomes.channels)
        return AccuracyEstimate.of(genomes, clean, std, origin, self.penalty, self.is_percent)

    def state(self) -> dict[str, Any]:
        """Picklable state: the true scores and fit statistics (the scorer is rebuilt)."""
        return {"rows": self.scores.rows, "scores": self.scores.values, "fits": list(self.fits)}

    def restore(self, state: dict[str, Any]) -> None:
        """Load `state` and refit the surrogate on its scores."""
        self.scores.clear()
        if len(state["scores"]):
            self.scores.add(state["rows"], state["scores"])
        self.fits = list(state["fits"])
        if self.use_surrogate and self.n_scored:
            self.scorer.fit(self.scores.rows, self.scores.values[:, 0])

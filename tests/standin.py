"""A cheap, deterministic accuracy stand-in for benchmarks and tests of the search machinery.

It is NOT an accuracy model: its score is a made-up saturating function of per-layer width that
rewards capacity with diminishing returns and penalises narrowing bottlenecks. It exists so the
search (operators, constraints, surrogate rounds, resume) can be exercised and benchmarked in
seconds with no data and no network. Its label says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr


class CapacityStandIn:
    """Synthetic score of channel configurations plus a ridge-regression surrogate.

    Score (unitless, roughly 0..1)::

        s = mean_l w_l * (1 - exp(-log2(c_l / 32) / 2)) - 0.1 * mean_l max(0, log2(c_{l-1} / c_l))

    with deeper layers weighted more (``w_l`` rising linearly from 0.5 to 1.5).

    Args:
        noise: standard deviation of a deterministic per-configuration perturbation added to the
            score (0 = smooth), emulating a noisy proxy.
    """

    label = "capacity_standin_score (synthetic, not %)"
    is_percent = False
    source = "synthetic capacity stand-in (no data, no network; for benchmarks and tests only)"
    basis = "synthetic scores (no images)"

    def __init__(self, noise: float = 0.0) -> None:
        self.noise = float(noise)
        self.n_true_calls = 0
        self._coef: np.ndarray | None = None
        self._resid = 0.0

    def true_score(self, channels: np.ndarray) -> np.ndarray:
        """Stand-in score (N,) of channels (N, L)."""
        c = np.asarray(channels, dtype=float)
        self.n_true_calls += len(c)
        width = np.log2(c / 32.0)
        weights = np.linspace(0.5, 1.5, c.shape[1])
        capacity = (weights * (1.0 - np.exp(-width / 2.0))).mean(axis=1)
        narrowing = np.maximum(0.0, width[:, :-1] - width[:, 1:]).mean(axis=1)
        score = capacity - 0.1 * narrowing
        if self.noise:
            phase = (c * np.arange(1, c.shape[1] + 1)).sum(axis=1)
            score = score + self.noise * np.sin(phase * 12.9898)
        return score

    @staticmethod
    def _features(channels: np.ndarray) -> np.ndarray:
        w = np.log2(np.asarray(channels, dtype=float) / 32.0)
        return np.column_stack([np.ones(len(w)), w, np.exp(-w / 2.0)])

    def fit(self, channels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
        """Ridge fit on log-width features; returns in-sample rank agreement."""
        x = self._features(channels)
        y = np.asarray(scores, dtype=float)
        self._coef = np.linalg.solve(x.T @ x + 1e-3 * np.eye(x.shape[1]), x.T @ y)
        pred = x @ self._coef
        self._resid = float(np.std(y - pred))
        return {
            "kendall_tau": float(kendalltau(y, pred)[0]),
            "spearman_rho": float(spearmanr(y, pred)[0]),
            "n": len(y),
        }

    def predict(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Surrogate mean and std (N,) each."""
        if self._coef is None:
            raise RuntimeError("predict before fit")
        mean = self._features(channels) @ self._coef
        return mean, np.full(len(mean), self._resid)

    def to_accuracy(self, scores: np.ndarray) -> np.ndarray:
        """Identity: stand-in scores are not percentages."""
        return np.asarray(scores, dtype=float)

"""Accuracy of channel configurations for the search: cached true proxy scores + a surrogate.

The accuracy estimator (`xpert_evo.accuracy.build_accuracy`) scores channel configurations with a
(costly) true proxy and predicts them with a (cheap) surrogate. `AccuracyOracle` keeps every true
score it ever asked for, never asks twice for the same channels, and answers a batch with the true
score where one is known and the surrogate prediction elsewhere. Accuracy depends on the channel
genes only.

With online refinement (``accuracy.refine=true``) the oracle also keeps the clean accuracy of
trained networks and answers in %: the measured value where the channels were trained, and
elsewhere the prediction of a `MeasuredAccuracy` model (from the proxy score, true or surrogate,
and the network size), or, when the estimator predicts % itself (``accuracy=measured``), the
estimator's prediction after refitting it on its source plus the trained networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xpert_evo.accuracy.measured import MeasuredAccuracy
from xpert_evo.accuracy.model import AccuracyModel
from xpert_evo.search.archive import find_rows, row_keys


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
        measured_model: clean accuracy in % from trained networks (online refinement), or None.
        trained_channels: channel configurations of trained networks (T, L).
        trained_pct: their measured clean accuracy (T,), %.
    """

    estimator: AccuracyModel
    use_surrogate: bool
    channels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fits: list[dict[str, Any]] = field(default_factory=list)
    measured_model: MeasuredAccuracy | None = None
    trained_channels: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 0), dtype=np.int64)
    )
    trained_pct: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self._keys = _keys_of(self.channels)
        self._trained_keys = _keys_of(self.trained_channels)

    @property
    def n_measured(self) -> int:
        """Number of distinct channel configurations scored with the true proxy."""
        return len(self.scores)

    @property
    def n_trained(self) -> int:
        """Number of distinct channel configurations trained (online refinement)."""
        return len(self.trained_pct)

    @property
    def uses_measured(self) -> bool:
        """True when answers come from the measured-accuracy model (fitted on trained networks)."""
        return self.measured_model is not None and self.measured_model.is_fitted

    @property
    def predicts(self) -> bool:
        """True when the estimator's "true scores" are predictions in % (the measured source's
        predictor), not proxy measurements."""
        return self.estimator.score_kind == "predicted"

    @property
    def is_percent(self) -> bool:
        """True when `accuracy` answers in % (measured-accuracy model or calibrated estimator)."""
        return self.uses_measured or bool(self.estimator.is_percent)

    @property
    def label(self) -> str:
        """Column / axis label of the values `accuracy` returns."""
        return "accuracy_pct" if self.uses_measured else self.estimator.label

    @property
    def source(self) -> str:
        """Where the accuracies come from, in words."""
        if not self.uses_measured:
            return self.estimator.source
        what = f" ({self.measured_model.description})" if self.measured_model.description else ""
        return (
            f"clean accuracy measured on {self.n_trained} trained networks{what}; predicted for "
            f"the others by Bayesian ridge on network size and {self.estimator.source}"
        )

    @property
    def basis(self) -> str:
        """The data the accuracies rest on, in a few words (summary.md's first line, the plot's
        axis label): the estimator's ``basis`` ("proxy batch: real CIFAR-10 images"), and with
        online refinement how many trained networks the % values come from."""
        own = self.estimator.basis
        if not self.uses_measured:
            return own
        return f"{self.n_trained} trained networks, the others predicted from them; {own}"

    def lookup(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(known mask (N,), true score where known else nan (N,)) for channels (N, L)."""
        return _match(self._keys, self.scores, channels)

    def trained(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(trained mask (N,), measured clean accuracy % where trained else nan (N,))."""
        return _match(self._trained_keys, self.trained_pct, channels)

    def add_trained(self, channels: np.ndarray, accuracy_pct: np.ndarray) -> None:
        """Record measured clean accuracies (%) of trained channels (N, L); a configuration
        trained again keeps its first measurement.
        """
        channels = np.atleast_2d(np.asarray(channels, dtype=np.int64))
        acc = np.asarray(accuracy_pct, dtype=float).reshape(-1)
        known, _ = self.trained(channels)
        _, first = np.unique(channels, axis=0, return_index=True)
        new = np.zeros(len(channels), dtype=bool)
        new[first] = True
        new &= ~known
        if not new.any():
            return
        old = self.trained_channels if self.n_trained else np.zeros((0, channels.shape[1]), int)
        self.trained_channels = np.concatenate([old, channels[new]])
        self.trained_pct = np.concatenate([self.trained_pct, acc[new]])
        self._trained_keys = _keys_of(self.trained_channels)

    def refit_measured(self) -> dict[str, Any]:
        """Fit the measured-accuracy model on every trained network (their true proxy scores
        are measured first), or, without one, refit the estimator on its own data plus the
        trained networks and forget the answers it gave before; returns the fit statistics.
        """
        if self.measured_model is None:
            if not self.predicts:
                raise RuntimeError("refit_measured needs a measured_model or a predictor")
            report = self.estimator.fit(self.trained_channels, self.trained_pct)
            self.channels, self.scores = np.zeros((0, 0), dtype=np.int64), np.zeros(0)
            self._keys = _keys_of(self.channels)
            cv = report["candidates"][report["model"]]
            return {"n": report["n_fit"], "model": report["model"],
                    "kendall_tau": cv["cv_kendall_tau"], "mae_pp": cv["cv_mae_pp"]}
        scores = self.measure(self.trained_channels)
        return self.measured_model.fit(scores, self.trained_channels, self.trained_pct)

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
            (accuracy (N,), std (N,) in the same units, measured mask (N,)). The std is 0 where
            a true score is a measurement, and the model's predictive std where its true scores
            are predictions themselves (``score_kind`` "predicted").

        Where the measured-accuracy model is fitted, the accuracy is the measured clean % of
        trained channels (std 0) and the model's prediction elsewhere; ``measured`` still marks
        true proxy scores.
        """
        channels = np.asarray(channels, dtype=np.int64)
        if not self.use_surrogate:
            score = self.measure(channels)
            known, std = np.ones(len(score), dtype=bool), np.zeros(len(score))
            if self.predicts:
                std = np.asarray(self.estimator.predict(channels)[1], dtype=float)
        else:
            known, true = self.lookup(channels)
            mean, std = (np.asarray(a, dtype=float) for a in self.estimator.predict(channels))
            score = np.where(known, true, mean)
            std = np.where(known, 0.0, std)
        if self.uses_measured:
            acc, acc_std = self.measured_model.predict(score, channels, std)
        else:
            acc = self._to_acc(score)
            acc_std = np.abs(self._to_acc(score + std) - acc)
        if self.uses_measured or (self.n_trained and self.predicts):
            trained, measured_pct = self.trained(channels)
            acc, acc_std = np.where(trained, measured_pct, acc), np.where(trained, 0.0, acc_std)
        return acc, acc_std, known

    def _to_acc(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.to_accuracy(np.asarray(scores, dtype=float)), dtype=float)

    def state(self) -> dict[str, Any]:
        """Picklable state (the estimator itself is rebuilt, then refit, on resume)."""
        return {
            "channels": self.channels,
            "scores": self.scores,
            "fits": list(self.fits),
            "trained_channels": self.trained_channels,
            "trained_pct": self.trained_pct,
            "measured_fits": list(self.measured_model.fits) if self.measured_model else [],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load `state` and refit the surrogate (and the measured-accuracy model) on it."""
        self.channels = np.asarray(state["channels"], dtype=np.int64)
        self.scores = np.asarray(state["scores"], dtype=float)
        self.fits = list(state["fits"])
        self._keys = _keys_of(self.channels)
        self.trained_channels = np.asarray(state["trained_channels"], dtype=np.int64)
        self.trained_pct = np.asarray(state["trained_pct"], dtype=float)
        self._trained_keys = _keys_of(self.trained_channels)
        if self.use_surrogate and self.n_measured:
            self.estimator.fit(self.channels, self.scores)
        if self.n_trained and (self.measured_model is not None
                               or self.predicts):
            self.refit_measured()
        if self.measured_model is not None:
            self.measured_model.fits = list(state["measured_fits"])


def _keys_of(channels: np.ndarray) -> np.ndarray:
    return row_keys(channels) if len(channels) else np.zeros(0)


def _match(
    keys: np.ndarray, values: np.ndarray, channels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(found mask (N,), value where found else nan (N,)) of channels (N, L) in a keyed table."""
    found, index = find_rows(keys, np.asarray(channels, dtype=np.int64))
    value = np.full(len(found), np.nan)
    value[found] = values[index[found]]
    return found, value

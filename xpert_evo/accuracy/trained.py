"""Online refinement over a proxy: a model of clean accuracy in % fitted on trained networks.

With ``accuracy.refine=true`` and a proxy objective the search trains a few designs per round
(`groundtruth.measure`) and fits `TrainedAccuracyModel` on them (NSGANetV2's loop, with trained
accuracies). A handful of trained networks cannot support a 16-feature surrogate, so the model
is a Bayesian linear regression (scikit-learn's `BayesianRidge`, evidence-maximised priors) on
three standardised features: the zero-cost proxy score and the network's log10 parameters and
log10 multiply-accumulates. The proxy score of an untrained design is the proxy surrogate's
prediction; its uncertainty is propagated through the fitted slope. Unlike the isotonic
proxy -> % calibration, the fit can re-rank designs: when trained accuracy follows network size
more than the proxy, the size weights win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import BayesianRidge
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from xpert_evo.accuracy.surrogate import channel_features, rank_agreement
from xpert_evo.space.backbone import Backbone

MIN_FIT = 3
"""Fewest trained networks the model is fitted on (two points fix no slope against three
features; three give the evidence maximisation something to weigh)."""


@dataclass
class TrainedAccuracyModel:
    """Clean accuracy in % of channel configurations, learned from trained networks.

    Attributes:
        backbone: geometry for the parameter and MAC features.
        description: what the trainings are, e.g. "cifar10, e5-pc500-w0.25-b64"
            (shown in the run's accuracy source).
        fits: statistics of every `fit`, in order.
    """

    backbone: Backbone
    description: str = ""
    fits: list[dict[str, Any]] = field(default_factory=list)
    _model: Pipeline | None = field(default=None, repr=False)

    @property
    def is_fitted(self) -> bool:
        """True once `fit` has seen at least `MIN_FIT` networks."""
        return self._model is not None

    def features(self, proxy_scores: np.ndarray, channels: np.ndarray) -> np.ndarray:
        """Design matrix (N, 3): proxy score, log10 parameters, log10 MACs per image."""
        size = channel_features(np.atleast_2d(channels), self.backbone)[:, -3:-1]
        return np.column_stack([np.asarray(proxy_scores, dtype=float), size])

    def fit(
        self, proxy_scores: np.ndarray, channels: np.ndarray, accuracy_pct: np.ndarray
    ) -> dict[str, Any]:
        """Fit on trained networks; returns and records {"n", "kendall_tau", "rmse_pp"}.

        Kendall tau and RMSE (percentage points) are leave-one-out: each network is predicted by
        a model fitted on the others (NaN below 4 networks).

        Raises:
            ValueError: fewer than `MIN_FIT` networks, or an accuracy outside 0..100 or NaN.
        """
        y = np.asarray(accuracy_pct, dtype=float)
        x = self.features(proxy_scores, channels)
        if len(y) < MIN_FIT or len(x) != len(y):
            raise ValueError(
                f"the trained-accuracy model needs at least {MIN_FIT} trained networks, one "
                f"accuracy each; got {len(y)} accuracies for {len(x)} networks"
            )
        if not np.isfinite(y).all() or (y < 0).any() or (y > 100).any():
            raise ValueError(f"trained accuracies must be percentages in 0..100, got {y}")
        held_out = np.full(len(y), np.nan)
        if len(y) >= MIN_FIT + 1:
            held_out = cross_val_predict(_regressor(), x, y, cv=LeaveOneOut())
        tau, _ = rank_agreement(y, held_out) if np.isfinite(held_out).all() else (np.nan, 0)
        rmse = float(np.sqrt(np.mean((held_out - y) ** 2)))
        self._model = _regressor().fit(x, y)
        stats = {"n": len(y), "kendall_tau": float(tau), "rmse_pp": rmse}
        self.fits.append(stats)
        return stats

    def predict(
        self,
        proxy_scores: np.ndarray,
        channels: np.ndarray,
        proxy_std: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted clean accuracy (N,) in %, clipped to 0..100, and its std (N,) in pp.

        ``proxy_std`` (N,), the uncertainty of predicted proxy scores (0 where the true score is
        known), is propagated through the fitted proxy slope.
        """
        if self._model is None:
            raise RuntimeError("TrainedAccuracyModel.predict before fit")
        x = self.features(proxy_scores, channels)
        mean, std = self._model.predict(x, return_std=True)
        if proxy_std is not None:
            scaler, ridge = self._model[0], self._model[-1]
            slope = ridge.coef_[0] / scaler.scale_[0]
            std = np.hypot(std, slope * np.asarray(proxy_std, dtype=float))
        return np.clip(mean, 0.0, 100.0), std


def _regressor() -> Pipeline:
    return make_pipeline(StandardScaler(), BayesianRidge())

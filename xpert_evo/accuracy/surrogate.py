"""A learned, uncertainty-aware predictor of a proxy score (or accuracy) from channel genes.

Features depend on the channels only: log2 channels of every layer plus log10 parameters, log10
multiply-accumulates per image and the mean log2 width. The model is an ensemble from
scikit-learn; its prediction is the members' mean and its uncertainty their standard deviation.
Every fit reports out-of-fold Kendall tau and Spearman rho from k-fold cross-validation, the
figure that matters for a search that only ranks candidates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    BaggingRegressor,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from xpert_evo.config import ConfigError, plain_config, typed_counts
from xpert_evo.space.backbone import Backbone

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("extra_trees", "random_forest", "gbm", "mlp", "ridge2")
"""Surrogate model types: tree forests (members = trees), or bagged ensembles of gradient
boosting, small MLPs or a ridge regression on quadratic features (members = bootstrap fits).
extra_trees is the default: best held-out rank agreement from 64 samples and fastest to predict;
ridge2 ranks best from 200 samples (see README, "Accuracy")."""


def channel_features(channels: np.ndarray, backbone: Backbone | None = None) -> np.ndarray:
    """Features of (N, L) channel genes, shape (N, L + 3).

    Columns: log2 channels per layer, log10 trainable parameters, log10 multiply-accumulates for
    one image (conv layers + classifier), mean log2 channels.
    """
    backbone = backbone or Backbone()
    c = np.asarray(channels, dtype=np.float64)
    c_in = backbone.in_channels_of(c)
    k2 = backbone.kernel**2
    conv_params = c_in * c * k2 + 2 * c
    params = conv_params.sum(axis=1) + c[:, -1] * backbone.num_classes + backbone.num_classes
    log_c = np.log2(c)
    return np.column_stack([log_c, np.log10(params), np.log10(backbone.macs(c)),
                            log_c.mean(axis=1)])


def rank_agreement(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """(Kendall tau-b, Spearman rho) between two score vectors; NaN when undefined."""
    truth, predicted = np.asarray(truth, float), np.asarray(predicted, float)
    if len(truth) < 3 or np.ptp(truth) == 0 or np.ptp(predicted) == 0:
        return float("nan"), float("nan")
    tau = kendalltau(truth, predicted).statistic
    return float(tau), float(spearmanr(truth, predicted).statistic)


def rank_figures(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Kendall tau, Spearman rho and top-10 % overlap (share of the truly best tenth that the
    prediction also puts in its best tenth) of `predicted` against `truth`."""
    truth, predicted = np.asarray(truth, float), np.asarray(predicted, float)
    tau, rho = rank_agreement(truth, predicted)
    k = max(1, int(round(0.1 * len(truth))))
    top_true = set(np.argsort(-truth)[:k])
    top_pred = set(np.argsort(-predicted)[:k])
    return {"kendall_tau": tau, "spearman_rho": rho, "top10_overlap": len(top_true & top_pred) / k}


@dataclass(frozen=True)
class SurrogateBudget:
    """True-proxy budget of the surrogate-assisted search (NSGANetV2 scheme; ``accuracy.budget``).

    Attributes:
        initial: channel configurations scored with the true proxy before the first fit.
        per_round: new configurations scored with the true proxy in each refit round.
        rounds: refit rounds, spread evenly over the search (the last one at its end).
    """

    initial: int = 64
    per_round: int = 16
    rounds: int = 4

    @property
    def max_true_calls(self) -> int:
        """Upper bound on true proxy evaluations: initial + rounds * per_round."""
        return self.initial + self.rounds * self.per_round

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> SurrogateBudget:
        """The budget from the ``accuracy.budget`` node (missing keys take the defaults).

        Raises:
            ConfigError: an unknown key, a value that is not an integer >= 0, or fewer than 2
                initial configurations (too few to fit a surrogate).
        """
        budget = typed_counts(cls, plain_config(node), "accuracy.budget")
        if budget.initial < 2:
            raise ConfigError(
                f"accuracy.budget.initial={budget.initial} is too small to fit a surrogate; "
                "use at least 2 (typically 50-200)"
            )
        return budget


@dataclass
class Surrogate:
    """Ensemble regressor channels -> score with mean and std prediction.

    Attributes:
        model: one of `MODELS`.
        n_members: trees of a forest, or bootstrap members of a bagged ensemble.
        cv_folds: folds of the cross-validation run at every fit (at most n // 2).
        seed: seeds the folds, bootstrap samples and members.
        backbone: geometry for the parameter and MAC features.
    """

    model: str = "extra_trees"
    n_members: int = 32
    cv_folds: int = 5
    seed: int = 0
    backbone: Backbone | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"surrogate model {self.model!r} is not one of {list(MODELS)}")
        if self.n_members < 1:
            raise ValueError("n_members must be at least 1")
        self._model: TransformedTargetRegressor | None = None
        self.metrics: dict[str, float] = {}

    @property
    def fitted(self) -> bool:
        """True once `fit` has run."""
        return self._model is not None

    def _ensemble(self) -> TransformedTargetRegressor:
        """The unfitted ensemble on standardised targets: a forest (members = trees) or a
        `BaggingRegressor` of the base model (members = bootstrap fits; one member: no bootstrap).
        """
        seed = self.seed
        if self.model in ("extra_trees", "random_forest"):
            forest = ExtraTreesRegressor if self.model == "extra_trees" else RandomForestRegressor
            regressor = forest(n_estimators=self.n_members, random_state=seed, n_jobs=1)
        else:
            if self.model == "gbm":
                base = GradientBoostingRegressor(
                    n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8,
                    random_state=seed,
                )
            elif self.model == "mlp":
                base = make_pipeline(
                    StandardScaler(),
                    MLPRegressor(
                        hidden_layer_sizes=(64, 64), alpha=1e-3, max_iter=2000, random_state=seed
                    ),
                )
            else:
                base = make_pipeline(StandardScaler(), PolynomialFeatures(2), Ridge(alpha=1.0))
            regressor = BaggingRegressor(
                base, n_estimators=self.n_members, bootstrap=self.n_members > 1,
                random_state=seed, n_jobs=1,
            )
        return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())

    def fit(self, channels: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        """Fit on (N, L) channels and (N,) targets; return cross-validated rank agreement.

        Returns:
            {"kendall_tau", "spearman_rho"} of out-of-fold predictions pooled over all folds
            (NaN when N < 6), "n" (samples) and "folds".
        """
        x = channel_features(channels, self.backbone)
        y = np.asarray(targets, dtype=np.float64)
        if len(x) != len(y) or len(y) < 2:
            raise ValueError(f"need matching channels and targets (>= 2); got {len(x)}, {len(y)}")
        folds = min(self.cv_folds, len(y) // 2)
        tau = rho = float("nan")
        if folds >= 2 and len(y) >= 6:
            cv = KFold(folds, shuffle=True, random_state=self.seed)
            tau, rho = rank_agreement(y, cross_val_predict(self._ensemble(), x, y, cv=cv))
        self._model = self._ensemble().fit(x, y)
        self.metrics = {"kendall_tau": tau, "spearman_rho": rho, "n": len(y), "folds": folds}
        log.info(
            "surrogate %s fitted on %d architectures: %d-fold CV Kendall tau %.3f, Spearman %.3f",
            self.model, len(y), folds, tau, rho,
        )
        return dict(self.metrics)

    def predict(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the ensemble members, each (N,), in target units."""
        if not self.fitted:
            raise RuntimeError("Surrogate.predict called before fit")
        x = channel_features(channels, self.backbone)
        ensemble = self._model.regressor_
        columns = getattr(ensemble, "estimators_features_", [slice(None)] * self.n_members)
        members = np.stack(
            [m.predict(x[:, c]) for m, c in zip(ensemble.estimators_, columns, strict=True)]
        )
        scaler = self._model.transformer_
        mean, scale = float(scaler.mean_[0]), float(scaler.scale_[0])
        return members.mean(axis=0) * scale + mean, members.std(axis=0) * scale

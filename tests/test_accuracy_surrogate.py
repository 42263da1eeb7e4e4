"""Surrogate: features, held-out accuracy against a constant predictor, uncertainty, CV metrics,
the true-proxy budget's config."""

from __future__ import annotations

import numpy as np
import pytest

from xpert_evo.accuracy.surrogate import (
    MODELS,
    Surrogate,
    SurrogateBudget,
    channel_features,
    rank_agreement,
)
from xpert_evo.config import ConfigError
from xpert_evo.space.backbone import Backbone

CHOICES = np.array([64, 128, 256, 512])


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Channels and a smooth, non-additive target with noise (shaped like NASWOT's response)."""
    rng = np.random.default_rng(seed)
    channels = rng.choice(CHOICES, size=(n, 13))
    logs = np.log2(channels)
    weights = np.linspace(3.0, 0.5, 13)
    target = logs @ weights + 0.8 * logs[:, 2] * logs[:, 9] + rng.normal(0, 1.0, n)
    return channels, target


def test_features_depend_on_channels_only() -> None:
    channels = np.array([[64] * 13, [512] * 13])
    features = channel_features(channels, Backbone())
    assert features.shape == (2, 16)
    assert np.allclose(features[:, :13], np.log2(channels))
    assert features[1, 13] > features[0, 13] and features[1, 14] > features[0, 14]


@pytest.mark.parametrize("model", MODELS)
def test_surrogate_beats_a_constant_predictor_on_held_out_data(model: str) -> None:
    channels, target = _synthetic(260, seed=0)
    train, test = slice(0, 200), slice(200, None)
    surrogate = Surrogate(model=model, n_members=3, seed=0)
    metrics = surrogate.fit(channels[train], target[train])
    mean, std = surrogate.predict(channels[test])
    constant_mse = np.mean((target[test] - target[train].mean()) ** 2)
    assert np.mean((target[test] - mean) ** 2) < 0.5 * constant_mse
    tau, rho = rank_agreement(target[test], mean)
    assert tau > 0.5 and rho > 0.65
    assert metrics["n"] == 200 and metrics["folds"] == 5 and metrics["kendall_tau"] > 0.5
    assert std.shape == mean.shape == (60,) and (std >= 0).all() and std.max() > 0


def test_surrogate_cv_metrics_are_nan_when_too_few_points() -> None:
    channels, target = _synthetic(4, seed=1)
    metrics = Surrogate(n_members=2).fit(channels, target)
    assert np.isnan(metrics["kendall_tau"]) and metrics["n"] == 4


def test_surrogate_refuses_to_predict_before_fit_and_bad_models() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        Surrogate().predict(np.full((1, 13), 64))
    with pytest.raises(ValueError, match="not one of"):
        Surrogate(model="linear_magic")


def test_surrogate_is_deterministic_for_a_seed() -> None:
    channels, target = _synthetic(80, seed=2)
    a = Surrogate(seed=3, n_members=4)
    b = Surrogate(seed=3, n_members=4)
    a.fit(channels, target)
    b.fit(channels, target)
    assert np.array_equal(a.predict(channels)[0], b.predict(channels)[0])


def test_budget_is_typed_with_its_defaults_and_ranges_checked() -> None:
    assert SurrogateBudget.from_config({"initial": 10}) == SurrogateBudget(10, 16, 4)
    assert SurrogateBudget.from_config(None) == SurrogateBudget()
    bad = [({"intial": 10}, r"unknown config key accuracy\.budget\.intial; allowed keys there "
                             r"are \['initial', 'per_round', 'rounds'\]"),
           ({"rounds": "many"}, r"config key accuracy\.budget\.rounds: Value 'many'"),
           ({"per_round": -1}, r"accuracy\.budget\.per_round=-1 must be an integer >= 0"),
           ({"initial": 1}, r"accuracy\.budget\.initial=1 is too small to fit a surrogate")]
    for node, match in bad:
        with pytest.raises(ConfigError, match=match):
            SurrogateBudget.from_config(node)

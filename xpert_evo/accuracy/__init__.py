"""How accurate is this genome: the one interface the search asks, and what answers it.

`AccuracyModel` (model.py) is the interface. `build_accuracy(cfg.accuracy, cfg.data, backbone,
seed)` returns a `ProxyEstimator` (estimator.py): zero-cost proxy scores (proxies.py, cached in
cache.py, on the batch of batch.py) and a surrogate (surrogate.py) that predicts them.
`MeasuredAccuracy` (measured.py) predicts clean accuracy in % from trained networks.
"""

from xpert_evo.accuracy.estimator import AccuracySpec, ProxyEstimator, build_accuracy
from xpert_evo.accuracy.measured import MeasuredAccuracy
from xpert_evo.accuracy.model import AccuracyModel
from xpert_evo.accuracy.proxies import PROXIES, score_architecture
from xpert_evo.accuracy.surrogate import (
    Surrogate,
    SurrogateBudget,
    channel_features,
    rank_agreement,
)

__all__ = [
    "PROXIES",
    "AccuracyModel",
    "AccuracySpec",
    "MeasuredAccuracy",
    "ProxyEstimator",
    "Surrogate",
    "SurrogateBudget",
    "build_accuracy",
    "channel_features",
    "rank_agreement",
    "score_architecture",
]

"""How accurate is this design: the one call the search makes, and what answers it.

`AccuracyPredictor.predict(genomes) -> AccuracyEstimate` (model.py) is the contract: clean
accuracy, crossbar precision loss, net accuracy and std, over a whole population. Its
implementations: `SourcePredictor` (predictor.py, fitted on the measured source's trainings),
`ProxyPredictor` (proxy_predictor.py: zero-cost proxy scores of proxies.py, cached in cache.py,
on the batch of batch.py, with the surrogate of surrogate.py, behind `ProxyEstimator` in
estimator.py) and `RefinedPredictor` (refined.py: networks trained during the search, with
`TrainedAccuracyModel` of trained.py over a proxy). `build_accuracy(cfg.accuracy, cfg.data,
backbone, seed)` builds a run's source; `search_predictor` turns it into the predictor a search
asks. `RowTable` (rows.py) is the keyed cache they share.
"""

from xpert_evo.accuracy.estimator import AccuracySpec, ProxyEstimator, build_accuracy
from xpert_evo.accuracy.model import (
    ORIGINS,
    AccuracyEstimate,
    AccuracyPredictor,
    ProxyScorer,
    origins,
)
from xpert_evo.accuracy.predictor import SourcePredictor, source_accuracy
from xpert_evo.accuracy.proxies import PROXIES, score_architecture
from xpert_evo.accuracy.proxy_predictor import ProxyPredictor
from xpert_evo.accuracy.refined import RefinedPredictor, search_predictor
from xpert_evo.accuracy.surrogate import (
    Surrogate,
    SurrogateBudget,
    channel_features,
    rank_agreement,
)
from xpert_evo.accuracy.trained import TrainedAccuracyModel

__all__ = [
    "ORIGINS",
    "PROXIES",
    "AccuracyEstimate",
    "AccuracyPredictor",
    "AccuracySpec",
    "ProxyEstimator",
    "ProxyPredictor",
    "ProxyScorer",
    "RefinedPredictor",
    "SourcePredictor",
    "Surrogate",
    "SurrogateBudget",
    "TrainedAccuracyModel",
    "build_accuracy",
    "channel_features",
    "origins",
    "rank_agreement",
    "score_architecture",
    "search_predictor",
    "source_accuracy",
]

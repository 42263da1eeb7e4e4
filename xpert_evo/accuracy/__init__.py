"""Surrogate-predicted accuracy: real data, zero-cost proxies and a learned predictor.

Entry points: `build_accuracy(cfg.accuracy, cfg.data, backbone, seed)` -> `AccuracyEstimator`;
`measure(genomes, cfg)` trains and crossbar-evaluates designs (ground truth); `MeasuredAccuracy`
is the accuracy-in-% model of online refinement.
"""

from xpert_evo.accuracy.data import DataError, DataSpec, load_split, noise_batch, proxy_batch
from xpert_evo.accuracy.estimator import AccuracyEstimator, AccuracySpec, Budget, build_accuracy
from xpert_evo.accuracy.groundtruth import load_table, measure
from xpert_evo.accuracy.models import build_network
from xpert_evo.accuracy.proxies import PROXIES, score_architecture
from xpert_evo.accuracy.refine import MeasuredAccuracy
from xpert_evo.accuracy.surrogate import Surrogate, channel_features, rank_agreement

__all__ = [
    "PROXIES",
    "AccuracyEstimator",
    "AccuracySpec",
    "Budget",
    "DataError",
    "DataSpec",
    "MeasuredAccuracy",
    "Surrogate",
    "build_accuracy",
    "build_network",
    "channel_features",
    "load_split",
    "load_table",
    "measure",
    "noise_batch",
    "proxy_batch",
    "rank_agreement",
    "score_architecture",
]

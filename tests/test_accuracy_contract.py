"""The accuracy contract: `predict(genomes) -> AccuracyEstimate` of every implementation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sources import OPTIONS, write_source
from standin import CapacityStandIn

from xpert_evo.accuracy import (
    AccuracyEstimate,
    ProxyPredictor,
    RefinedPredictor,
    SourcePredictor,
    TrainedAccuracyModel,
    origins,
    search_predictor,
    source_accuracy,
)
from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone
from xpert_evo.space.genome import Genomes

PENALTY = PrecisionPenalty(a_in=-3.0, k_in=1.0, a_adc=-2.0, k_adc=1.0, chance_pct=10.0,
                           max_loss_pp=40.0)
RNG = np.random.default_rng(7)
CHANNELS = OPTIONS[RNG.integers(0, 4, size=(30, 13))]


def genomes_of(channels: np.ndarray, bits: int = 5) -> Genomes:
    return Genomes.concat([Genomes.uniform(c.tolist(), 8, "flash", bits, bits) for c in channels])


@pytest.fixture
def source(tmp_path: Path) -> SourcePredictor:
    write_source(tmp_path, OPTIONS[np.random.default_rng(3).integers(0, 4, size=(16, 13))])
    return source_accuracy("cifar10", Backbone(), source_dir=str(tmp_path))


def test_source_predictor_answers_clean_loss_net_and_std_in_one_call(
        source: SourcePredictor) -> None:
    predictor = source.with_penalty(PENALTY)
    genomes = genomes_of(CHANNELS)
    est = predictor.predict(genomes)
    assert isinstance(est, AccuracyEstimate) and len(est) == len(CHANNELS)
    clean, std = source.predictor.predict(CHANNELS)
    np.testing.assert_allclose(est.clean, clean)
    np.testing.assert_allclose(est.std, std)
    np.testing.assert_allclose(est.loss_pp, PENALTY.predict(genomes, clean))
    np.testing.assert_array_equal(est.net, est.clean - est.loss_pp)
    assert (est.loss_pp > 0).all() and (est.origin == "predicted").all()
    # lower bits cost more on the crossbar; the clean accuracy does not move
    low = predictor.predict(genomes_of(CHANNELS, bits=3))
    np.testing.assert_array_equal(low.clean, est.clean)
    assert (low.loss_pp > est.loss_pp).all() and (low.net < est.net).all()


def test_source_predictor_caches_each_configuration_and_a_refit_forgets(
        source: SourcePredictor) -> None:
    predictor = source.with_penalty(None)
    first = predictor.predict(genomes_of(CHANNELS[:10]))
    assert predictor.n_scored == len(np.unique(CHANNELS[:10], axis=0))
    again = predictor.predict(genomes_of(CHANNELS[5:20]))  # half cached, half new
    np.testing.assert_array_equal(again.clean[:5], first.clean[5:])  # the cached numbers
    assert (again.loss_pp == 0).all() and np.array_equal(again.net, again.clean)
    state = predictor.state()
    fresh = source.with_penalty(None)
    fresh.restore(state)
    assert fresh.n_scored == predictor.n_scored and fresh.known(CHANNELS[:20]).all()
    predictor.refit(CHANNELS[:4], np.full(4, 99.0))
    assert predictor.n_scored == 0 and not predictor.known(CHANNELS[:1]).any()


def test_proxy_predictor_is_on_the_proxy_scale_and_bounds_the_loss() -> None:
    scorer = CapacityStandIn()
    predictor = ProxyPredictor(scorer, use_surrogate=True, penalty=PENALTY)
    predictor.score(CHANNELS[:12])
    predictor.refit_surrogate()
    genomes = genomes_of(CHANNELS)
    est = predictor.predict(genomes)
    scored = predictor.known(CHANNELS)
    assert scored[:12].all() and not scored[12:].all()
    np.testing.assert_array_equal(est.origin, np.where(scored, "proxy", "surrogate"))
    np.testing.assert_allclose(est.clean[scored], scorer.true_score(CHANNELS[scored]))
    assert (est.std[scored] == 0).all() and (est.std[~scored] > 0).all()
    np.testing.assert_array_equal(est.net, est.clean)  # not %: nothing is subtracted
    np.testing.assert_allclose(est.loss_pp, PENALTY.predict(genomes))  # but the loss is known
    every = ProxyPredictor(scorer, use_surrogate=False).predict(genomes)
    assert (every.origin == "proxy").all() and (every.std == 0).all()


def test_refined_predictor_answers_trained_accuracy_where_trained(
        source: SourcePredictor) -> None:
    refined = RefinedPredictor(source.with_penalty(PENALTY))
    trained = np.full(3, 77.0)
    refined.add_trained(CHANNELS[:3], trained)
    refined.refit_trained()
    est = refined.predict(genomes_of(CHANNELS[:6]))
    np.testing.assert_array_equal(est.clean[:3], trained)
    np.testing.assert_array_equal(est.std[:3], 0.0)
    assert list(est.origin) == ["trained"] * 3 + ["predicted"] * 3
    np.testing.assert_allclose(est.net[:3], trained - PENALTY.predict(genomes_of(CHANNELS[:3]),
                                                                      trained))
    with pytest.raises(ValueError, match="refined through a TrainedAccuracyModel"):
        RefinedPredictor(ProxyPredictor(CapacityStandIn(), True))


def test_refined_proxy_turns_percent_once_its_model_is_fitted() -> None:
    base = ProxyPredictor(CapacityStandIn(), use_surrogate=False)
    refined = RefinedPredictor(base, TrainedAccuracyModel(Backbone(), "toy trainings"))
    assert not refined.is_percent and refined.label == base.label
    refined.add_trained(CHANNELS[:6], np.linspace(40, 70, 6))
    refined.refit_trained()
    assert refined.is_percent and refined.label == "accuracy_pct"
    est = refined.predict(genomes_of(CHANNELS[:8]))
    assert list(est.origin) == ["trained"] * 6 + ["proxy"] * 2
    assert "6 trained networks" in refined.source


def test_search_predictor_picks_the_implementation(source: SourcePredictor) -> None:
    assert isinstance(search_predictor(source, PENALTY, False, False, Backbone()),
                      SourcePredictor)
    proxy = search_predictor(CapacityStandIn(), None, True, False, Backbone())
    assert isinstance(proxy, ProxyPredictor) and proxy.use_surrogate
    refined = search_predictor(CapacityStandIn(), None, True, True, Backbone())
    assert isinstance(refined, RefinedPredictor) and refined.model is not None
    assert search_predictor(source, None, False, False, Backbone()) is not source  # own cache


def test_the_baseline_is_scored_like_a_design(source: SourcePredictor) -> None:
    predictor = source.with_penalty(PENALTY)
    vgg = Genomes.uniform(VGG16_CHANNELS, 8, "flash", 6, 8)
    alone = predictor.predict(vgg)
    among = predictor.predict(Genomes.concat([genomes_of(CHANNELS[:3]), vgg]))
    assert alone.net[0] == among.net[-1] and alone.loss_pp[0] > 0
    assert alone.net[0] == alone.clean[0] - alone.loss_pp[0]


def test_origin_codes_round_trip() -> None:
    est = AccuracyEstimate.of(genomes_of(CHANNELS[:4]), np.ones(4), np.zeros(4),
                              np.array(["trained", "proxy", "surrogate", "predicted"]), None,
                              True)
    np.testing.assert_array_equal(origins(est.origin_codes()), est.origin)

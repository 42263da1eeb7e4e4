"""ProxyEstimator: data-free fallback, caching, peripheral genes, labels and calibration."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from xpert_evo.accuracy import build_accuracy
from xpert_evo.accuracy.estimator import calibration_rows
from xpert_evo.config import conf_dir
from xpert_evo.schema import register
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataError
from xpert_evo.training.groundtruth import append_rows


def compose_accuracy(name: str, *overrides: str) -> DictConfig:
    """The ``accuracy`` node of ``accuracy=<name>``, composed by Hydra (with its schema)."""
    register()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=[f"accuracy={name}", *overrides]).accuracy
FAST = {"batch_size": 16, "surrogate": {"model": "extra_trees", "n_members": 8}}
NO_DATA = {"dataset": "cifar10", "root": "/no/such/data", "allow_data_free": True}
RNG_CHANNELS = np.random.default_rng(0).choice([64, 128], size=(6, 13))


def test_data_free_fallback_is_loud_and_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        est = build_accuracy(FAST, NO_DATA, Backbone(), seed=0, cache_dir=tmp_path)
    assert "DATA-FREE FALLBACK" in caplog.text and "/no/such/data" in caplog.text
    assert est.batch.data_free and est.source == (
        "naswot on gaussian noise batch of 16 (data-free: no cifar10 found at /no/such/data)"
    )
    assert est.basis == "proxy batch: Gaussian noise (no cifar10 found at /no/such/data)"
    with pytest.raises(DataError, match="/no/such/data"):
        build_accuracy(FAST, {**NO_DATA, "allow_data_free": False}, Backbone(), 0, tmp_path)


def test_real_data_source(cifar10_zip: Path, data_cache: Path) -> None:
    est = build_accuracy(FAST, {"root": str(cifar10_zip.parent)}, Backbone(), 0, data_cache)
    assert not est.batch.data_free
    assert est.source.startswith("naswot on cifar10 train batch of 16")
    assert est.source.endswith("(real data)")
    assert est.basis == "proxy batch: real CIFAR-10 images"


def test_true_scores_are_cached_in_memory_and_on_disk(tmp_path: Path) -> None:
    est = build_accuracy(FAST, NO_DATA, Backbone(), seed=0, cache_dir=tmp_path)
    first = est.true_score(np.vstack([RNG_CHANNELS, RNG_CHANNELS[:2]]))
    assert est.n_true_calls == 6 and est.cache.misses == 6
    assert np.array_equal(first[6:], first[:2])
    again = est.true_score(RNG_CHANNELS)
    assert np.array_equal(again, first[:6])
    assert est.n_true_calls == 6 and est.cache.memory_hits == 6
    assert est.cache.stats()["in_memory"] == 6

    fresh = build_accuracy(FAST, NO_DATA, Backbone(), seed=0, cache_dir=tmp_path)
    assert fresh.cache.stats()["in_memory"] == 0
    assert np.array_equal(fresh.true_score(RNG_CHANNELS), first[:6])
    assert fresh.n_true_calls == 0 and fresh.cache.disk_hits == 6 and fresh.n_cache_hits == 6

    reseeded = build_accuracy(FAST, NO_DATA, Backbone(), seed=1, cache_dir=tmp_path)
    reseeded.true_score(RNG_CHANNELS[:1])
    assert reseeded.n_true_calls == 1


def test_scores_ignore_peripheral_genes(tmp_path: Path) -> None:
    est = build_accuracy(FAST, NO_DATA, Backbone(), seed=0, cache_dir=tmp_path)
    channels = RNG_CHANNELS[0]
    sar = Genomes.uniform(channels, col_share=2, adc_type="sar", adc_bits=4, input_bits=2)
    flash = Genomes.uniform(channels, col_share=32, adc_type="flash", adc_bits=7, input_bits=8)
    assert est.true_score(sar)[0] == est.true_score(flash)[0]
    assert est.n_true_calls == 1


def test_fit_predict_and_labels_before_and_after_calibration(tmp_path: Path) -> None:
    est = build_accuracy(FAST, NO_DATA, Backbone(), seed=0, cache_dir=tmp_path)
    channels = np.random.default_rng(1).choice([64, 128], size=(12, 13))
    scores = est.true_score(channels)
    metrics = est.fit(channels, scores)
    assert set(metrics) >= {"kendall_tau", "spearman_rho", "n"} and est.fit_history == [metrics]
    mean, std = est.predict(channels)
    assert mean.shape == std.shape == (12,)
    assert not est.is_percent and est.label == "naswot_score (proxy scale, not %)"
    assert np.array_equal(est.to_accuracy(scores), scores)

    accuracy = 80.0 + 10.0 * (scores - scores.min()) / np.ptp(scores)
    est.calibrate(channels, accuracy)
    assert est.is_percent and est.label == "accuracy_pct" and "isotonic" in est.source
    mapped = est.to_accuracy(np.sort(scores))
    assert np.all(np.diff(mapped) >= 0) and 80.0 <= mapped.min() <= mapped.max() <= 90.0
    with pytest.raises(ValueError, match="fraction"):
        est.calibrate(channels, accuracy / 100.0)


@pytest.mark.parametrize("name", ["naswot", "synflow", "params"])
def test_config_files_build_an_estimator(name: str, tmp_path: Path) -> None:
    cfg = compose_accuracy(name, "accuracy.batch_size=8")
    data = OmegaConf.create({"dataset": "none", "root": "unused"})
    est = build_accuracy(cfg, data, Backbone(), seed=0, cache_dir=tmp_path)
    assert est.proxy.name == name and est.budget.max_true_calls <= 300
    assert np.isfinite(est.true_score(RNG_CHANNELS[:2])).all()
    assert ("data-free" in est.source) == (name == "naswot")
    assert est.basis == (
        "proxy batch: Gaussian noise (data.dataset=none)" if name == "naswot"
        else f"no images ({name} is data-independent)"
    )


def test_bad_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown accuracy config keys"):
        build_accuracy({"proxyy": "naswot"}, NO_DATA, Backbone(), 0, tmp_path)
    with pytest.raises(ValueError, match="not one of"):
        build_accuracy({"proxy": "magic"}, NO_DATA, Backbone(), 0, tmp_path)
    with pytest.raises(ValueError, match="surrogate keys"):
        build_accuracy({"surrogate": {"trees": 3}}, NO_DATA, Backbone(), 0, tmp_path)
    with pytest.raises(ValueError, match="backbone"):
        build_accuracy(FAST, {**NO_DATA, "input_size": 64}, Backbone(), 0, tmp_path)


def test_calibration_from_a_ground_truth_table_filters_data_set_and_fidelity(
    tmp_path: Path,
) -> None:
    table = tmp_path / "gt.csv"
    c64, c128 = "-".join(["64"] * 13), "-".join(["128"] * 13)
    rows = [
        {"dataset": "cifar10", "fidelity": "e5", "channels": c64, "accuracy_pct": 40.0},
        {"dataset": "cifar10", "fidelity": "e5", "channels": c64, "accuracy_pct": 42.0},
        {"dataset": "cifar10", "fidelity": "e5", "channels": c128, "accuracy_pct": 50.0},
        {"dataset": "cifar10", "fidelity": "e30", "channels": c64, "accuracy_pct": 80.0},
        {"dataset": "tinyimagenet", "fidelity": "e5", "channels": c128, "accuracy_pct": 20.0},
    ]
    append_rows(rows, table)
    channels, accuracy = calibration_rows(table, "cifar10", "e5")
    np.testing.assert_array_equal(channels, [[64] * 13, [128] * 13])
    np.testing.assert_allclose(accuracy, [41.0, 50.0])  # one network at two precisions: mean
    with pytest.raises(ValueError, match=r"mixes training budgets \['e30', 'e5'\]"):
        calibration_rows(table, "cifar10")
    with pytest.raises(ValueError, match=r"calibration_fidelity='e9' matches no row"):
        calibration_rows(table, "cifar10", "e9")
    with pytest.raises(ValueError, match="no rows for data.dataset='none'"):
        calibration_rows(table, "none", "e5")
    with pytest.raises(ValueError, match="does not exist"):
        calibration_rows(tmp_path / "missing.csv", "cifar10")
    est = build_accuracy(
        {**FAST, "calibration": str(table), "calibration_fidelity": "e5"}, NO_DATA, Backbone(),
        seed=0, cache_dir=tmp_path,
    )
    assert est.is_percent and "on 2 measured networks" in est.source

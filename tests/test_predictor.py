"""Measured-accuracy source and predictor: the plan, shard building and resuming, the predictor's
interface and fit, source look-up errors, and the predict command."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau
from sources import OPTIONS, synthetic_accuracy, write_source

from xpert_evo.accuracy.estimator import AccuracySpec
from xpert_evo.accuracy.predictor import (
    CleanAccuracyPredictor,
    capacity_features,
    source_accuracy,
    stage_slices,
)
from xpert_evo.config import ConfigError
from xpert_evo.predict import main as predict_main
from xpert_evo.predict import penalty_for
from xpert_evo.schema import group_node
from xpert_evo.search.setup import build_penalty
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone
from xpert_evo.training.data import DataSpec
from xpert_evo.training.source import (
    SourcePlan,
    build_source,
    default_fidelity,
    find_source,
    read_source,
    seed_mean_ceilings,
    seed_noise,
    source_dir,
    source_training,
    time_left_h,
)
from xpert_evo.training.train import TrainSpec


def test_plan_is_deterministic_spans_widths_and_shards_partition_it() -> None:
    plan = SourcePlan(n_networks=40)
    channels = plan.channels()
    assert channels.shape == (40, 13) and np.isin(channels, OPTIONS).all()
    np.testing.assert_array_equal(channels, SourcePlan(n_networks=40).channels())
    mean_width = np.log2(channels / 64).mean(axis=1)
    assert mean_width.min() < 0.9 and mean_width.max() > 2.1  # narrow and wide networks
    jobs = plan.jobs()
    assert jobs[:10] == [(k, 0) for k in range(10)]
    assert jobs[10:20] == [(k, s) for s in (1, 2) for k in range(5)]
    assert jobs[20:23] == [(5, 1), (7, 1), (9, 1)]  # held-out seeds not in the noise study
    assert jobs[23:27] == [(10, 0), (11, 0), (11, 1), (12, 0)]
    assert len(jobs) == len(set(jobs)) == 40 + 10 + 20 - 2
    assert [SourcePlan.role(k) for k in range(4)] == ["fit", "heldout", "fit", "heldout"]
    shards = [{j for i, j in enumerate(jobs) if i % 3 == s} for s in range(3)]
    assert set().union(*shards) == set(jobs) and sum(map(len, shards)) == len(jobs)


def test_build_source_trains_its_shard_and_resumes(cifar10_zip: Path, data_cache: Path,
                                                   tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    data = DataSpec.from_config({"root": str(cifar10_zip.parent)})
    spec = TrainSpec(epochs=1, train_per_class=4, val_per_class=2, test_per_class=2,
                     width_mult=0.125, batch_size=8)
    plan = SourcePlan(n_networks=3, noise_networks=1, noise_seeds=(1,))
    folder = source_dir(tmp_path, data, spec)
    with caplog.at_level(logging.INFO, logger="xpert_evo.training.source"):
        for shard in (0, 1):
            build_source(plan, data, spec, folder, shard, 2, str(data_cache))
    assert caplog.messages[-1].startswith("[2/2] net 0 seed 1")
    assert caplog.messages[-1].endswith("about 0.0 h left in this shard")
    table = read_source([folder])
    assert sorted(zip(table["net_id"], table["seed"], strict=True)) == [(0, 0), (0, 1), (1, 0),
                                                                       (1, 1), (2, 0)]
    assert table["val_images"].eq(20).all() and table["test_images"].eq(20).all()
    assert table["val_accuracy_pct"].between(0, 100).all()
    assert set(table["role"]) == {"fit", "heldout"}
    before = (folder / "shard-0-of-2.csv").read_text()
    build_source(plan, data, spec, folder, 0, 2, str(data_cache))
    assert (folder / "shard-0-of-2.csv").read_text() == before  # nothing retrained
    build_source(plan, data, spec, folder, 0, 1, str(data_cache))
    assert not (folder / "shard-0-of-1.csv").exists()  # another shard count: still nothing
    with pytest.raises(ConfigError, match="source.shard=2"):
        build_source(plan, data, spec, folder, 2, 2)


def test_time_left_scales_the_rate_so_far_by_the_macs_left() -> None:
    assert time_left_h(3600.0, 1e9, 2e9) == pytest.approx(2.0)
    assert time_left_h(1800.0, 1e9, 0.0) == 0.0


def test_predictor_ranks_held_out_networks_and_states_its_error() -> None:
    rng = np.random.default_rng(1)
    fit = OPTIONS[rng.integers(0, 4, size=(30, 13))]
    held = OPTIONS[rng.integers(0, 4, size=(30, 13))]
    noise = rng.normal(0, 0.2, size=30)
    predictor = CleanAccuracyPredictor(Backbone()).fit(fit, synthetic_accuracy(fit) + noise)
    mean, std = predictor.predict(held)
    assert mean.shape == std.shape == (30,) and (std > 0).all()
    assert kendalltau(mean, synthetic_accuracy(held))[0] > 0.8
    report = predictor.report
    assert report["n_fit"] == 30 and report["model"] in report["candidates"]
    # the stated std is the error to expect on unseen networks (one noisy training each):
    # about 2 in 3 of 500 of them within 1 std
    many = OPTIONS[rng.integers(0, 4, size=(500, 13))]
    mean_many, std_many = predictor.predict(many)
    noisy = synthetic_accuracy(many) + rng.normal(0, 0.2, size=500)
    assert 0.55 <= np.mean(np.abs(mean_many - noisy) <= std_many) <= 0.85
    assert report["std_scale"] > 0
    assert report["candidates"][report["model"]]["cv_mae_pp"] < 1.0
    with pytest.raises(ValueError, match="at least 4"):
        CleanAccuracyPredictor(Backbone()).fit(fit[:3], np.ones(3))
    with pytest.raises(RuntimeError, match="before fit"):
        CleanAccuracyPredictor(Backbone()).predict(fit)


def test_source_accuracy_answers_in_percent_at_its_fidelity(tmp_path: Path) -> None:
    channels = OPTIONS[np.random.default_rng(2).integers(0, 4, size=(12, 13))]
    write_source(tmp_path, channels)
    model = source_accuracy("cifar10", Backbone(), source_dir=str(tmp_path))
    assert model.is_percent and model.kind == "predicted"
    assert model.fidelity == "e5-pc500-w0.25-b64" and "e5-pc500-w0.25-b64" in model.label
    assert "12 networks trained stand-alone" in model.source
    assert model.basis == "predicted from 12 trained networks (cifar10, e5-pc500-w0.25-b64)"
    vgg = np.array([VGG16_CHANNELS])
    np.testing.assert_allclose(model.score(vgg), model.predictor.predict(vgg)[0])
    assert model.n_scored == 1
    report = model.refit(vgg, np.array([60.0]))
    assert report["n_fit"] == 13 and model.n_scored == 0  # a refit forgets the old predictions


def test_a_head_width_bottleneck_is_found_by_model_selection() -> None:
    # 200 classes read from the last layer's channels: accuracy follows the stage widths and,
    # more strongly, the last layer's width, which the stage means average away
    rng = np.random.default_rng(5)
    fit, held = (OPTIONS[rng.integers(0, 4, size=(n, 13))] for n in (32, 300))

    def target(c: np.ndarray) -> np.ndarray:
        return 0.05 * synthetic_accuracy(c) + 1.0 * np.log2(c[:, -1] / 64)

    backbone = Backbone(64, 200)
    features = capacity_features(fit, backbone)
    assert features.shape == (32, len(stage_slices(backbone)) + 3)
    assert np.array_equal(features[:, len(stage_slices(backbone))], np.log2(fit[:, -1] / 64))
    noisy = target(fit) + rng.normal(0, 0.1, 32)
    predictor = CleanAccuracyPredictor(backbone).fit(fit, noisy)
    assert predictor.report["model"] == "bayes_ridge_head"
    stages_only = CleanAccuracyPredictor(backbone, "bayes_ridge_stages").fit(fit, noisy)
    truth = target(held)
    assert (kendalltau(predictor.predict(held)[0], truth)[0]
            > kendalltau(stages_only.predict(held)[0], truth)[0] + 0.2)


def test_transfer_carries_a_larger_sources_ranking_into_a_few_noisy_networks() -> None:
    rng = np.random.default_rng(4)
    # another data set: 80 networks measured with little noise
    many = OPTIONS[rng.integers(0, 4, size=(80, 13))]
    other = CleanAccuracyPredictor(Backbone()).fit(many, synthetic_accuracy(many)
                                                   + rng.normal(0, 0.2, size=80))
    # this data set: the same ranking on another scale, 12 networks with heavy noise
    def target(c: np.ndarray) -> np.ndarray:
        return 1.0 + 0.1 * synthetic_accuracy(c)

    few, held = (OPTIONS[rng.integers(0, 4, size=(n, 13))] for n in (12, 200))
    noisy = target(few) + rng.normal(0, 0.15, size=12)
    alone = CleanAccuracyPredictor(Backbone(64, 200)).fit(few, noisy)
    helped = CleanAccuracyPredictor(Backbone(64, 200), transfer=other,
                                    transfer_label="the other predictor").fit(few, noisy)
    assert set(helped.report["candidates"]) == {*alone.report["candidates"], "transfer"}
    assert helped.features(few).shape[1] == alone.features(few).shape[1] + 1
    truth = target(held)
    tau_alone = kendalltau(alone.predict(held)[0], truth)[0]
    tau_helped = kendalltau(helped.predict(held)[0], truth)[0]
    assert tau_helped > tau_alone + 0.05
    assert helped.report["transfer"] == "the other predictor"
    # the transfer model alone ranks exactly as the other predictor, on this data set's scale
    only = CleanAccuracyPredictor(Backbone(64, 200), "transfer", transfer=other).fit(few, noisy)
    assert kendalltau(only.predict(held)[0], other.predict(held)[0])[0] == pytest.approx(1.0)
    assert abs(only.predict(held)[0].mean() - truth.mean()) < 0.5
    with pytest.raises(ValueError, match="transfer needs a transfer predictor"):
        CleanAccuracyPredictor(Backbone(), "transfer")


def test_source_accuracy_transfers_from_another_data_sets_source(tmp_path: Path) -> None:
    channels = OPTIONS[np.random.default_rng(5).integers(0, 4, size=(8, 13))]
    write_source(tmp_path, channels, dataset="tinyimagenet")
    model = source_accuracy("tinyimagenet", Backbone(64, 200), source_dir=str(tmp_path),
                            model="transfer", transfer_from="cifar10")
    assert "with the cifar10 predictor (" in model.source
    assert "networks at e5-pc500-w0.25-b64) as a feature" in model.source
    assert model.basis.startswith("predicted from 8 trained networks (tinyimagenet, "
                                  "e5-pc500-w0.25-b64) and the cifar10 predictor (")
    with pytest.raises(ValueError, match=r"accuracy.transfer keys \['mnist'\].*'tinyimagenet'"):
        AccuracySpec.from_config({"proxy": "measured", "transfer": {"mnist": "cifar10"}})
    assert AccuracySpec.from_config({"transfer": None}).transfer == {}
    for bad in ("tinyimagenet", "mnist"):
        with pytest.raises(ConfigError, match=r"accuracy.transfer.tinyimagenet=.*\['cifar10'\]"):
            source_accuracy("tinyimagenet", Backbone(64, 200), source_dir=str(tmp_path),
                            transfer_from=bad)


def test_seed_noise_and_the_tau_ceilings_it_puts_on_any_predictor() -> None:
    table = pd.DataFrame({"channels": ["a", "a", "b", "b", "c"], "seed": [0, 1, 0, 1, 0],
                          "accuracy_pct": [50.0, 52.0, 40.0, 40.0, 45.0]})
    noise, nets, runs = seed_noise(table)
    assert (noise, nets, runs) == (pytest.approx(1.0), 2, 4)  # variances 2 and 0, pooled
    assert np.isnan(seed_noise(table[table["seed"] == 0])[0])
    means, n_seeds = [51.0, 40.0, 45.0], [2, 2, 1]
    on_means, one_run = seed_mean_ceilings(noise, means, n_seeds)
    assert 0 < one_run < on_means < 1
    assert seed_mean_ceilings(0.0, means, n_seeds) == (pytest.approx(1.0), pytest.approx(1.0))
    assert np.isnan(seed_mean_ceilings(float("nan"), means, n_seeds)[0])
    # noise as large as the spread: nothing left to rank
    assert seed_mean_ceilings(100.0, means, [1, 1, 1]) == (0.0, 0.0)


def test_source_lookup_errors_name_the_fix(tmp_path: Path) -> None:
    channels = OPTIONS[np.random.default_rng(3).integers(0, 4, size=(6, 13))]
    with pytest.raises(ConfigError, match="python -m xpert_evo.source data.dataset=tinyimagenet"):
        find_source("tinyimagenet", root=tmp_path)
    write_source(tmp_path, channels)
    with pytest.raises(ConfigError, match=r"accuracy.fidelity=e9.*has \['e5-pc500-w0.25-b64'\]"):
        find_source("cifar10", "e9-pc500-w0.25-b64", tmp_path)
    write_source(tmp_path, channels, fidelity="e10-pc500-w0.25-b64")
    fidelity, _ = find_source("cifar10", None, tmp_path)  # the default budget's, among several
    assert fidelity == default_fidelity("cifar10") == "e5-pc500-w0.25-b64"
    fidelity, table = find_source("cifar10", "e10-pc500-w0.25-b64", tmp_path)
    assert fidelity == "e10-pc500-w0.25-b64" and len(table) == 6
    write_source(tmp_path / "other", channels, fidelity="e10-pc500-w0.25-b64")
    write_source(tmp_path / "other", channels, fidelity="e11-pc500-w0.25-b64")
    with pytest.raises(ConfigError, match="several training budgets.*none at the default"):
        find_source("cifar10", None, tmp_path / "other")


@pytest.mark.parametrize("dataset", ["cifar10", "tinyimagenet"])
def test_each_packaged_source_was_trained_at_its_named_budget(dataset: str) -> None:
    spec = TrainSpec.from_config(source_training(dataset))
    fidelity, table = find_source(dataset, spec.fidelity())
    assert set(table["fidelity"]) == {fidelity} and set(table["dataset"]) == {dataset}


def test_predict_command_adds_predictions_and_refuses_bad_rows(tmp_path: Path, capsys) -> None:
    channels = OPTIONS[np.random.default_rng(4).integers(0, 4, size=(10, 13))]
    write_source(tmp_path / "src", channels)
    designs = tmp_path / "designs.csv"
    pd.DataFrame({"channels": ["-".join(map(str, VGG16_CHANNELS)), "64"],
                  "input_bits": ["8", "3-3-3-3-3-3-3-3-3-3-3-3-3"],
                  "note": ["vgg", "tiny"]}).to_csv(designs, index=False)
    out = tmp_path / "out.csv"
    args = [str(designs), "--out", str(out), "--source-dir", str(tmp_path / "src")]
    assert predict_main(args) == 0
    result = pd.read_csv(out)
    assert list(result["note"]) == ["vgg", "tiny"]
    np.testing.assert_allclose(result["accuracy_pct"],
                               result["clean_accuracy_pct"] - result["precision_loss_pp"])
    assert result["precision_loss_pp"][1] > result["precision_loss_pp"][0] >= 0
    # the loss comes with the default penalty's stated held-out error, on the offset mapping
    assert (result["precision_loss_error_pp"] == penalty_for("cifar10").heldout_rmse_pp).all()
    assert penalty_for("cifar10") == build_penalty(group_node("penalty", "layer_cifar10_offset"))
    assert (result["fidelity"] == "e5-pc500-w0.25-b64").all()
    assert (result["accuracy_std_pct"] > 0).all()
    bad = tmp_path / "bad.csv"
    for content, message in [
        ("channels,adc_bits\n64,6\n64,6-6\n", "row 2, column adc_bits: 2 values"),
        ("channels\n64-64-64-64-64-64-64-64-64-64-64-64-96\n",
         "row 1, column channels, layer 13: 96 is outside the search space"),
        ("width\n64\n", "column channels is missing"),
        ("channels,dataset\n64,tinyimagenet\n", "no measured accuracy source for "
                                                "data.dataset=tinyimagenet"),
    ]:
        bad.write_text(content)
        assert predict_main([str(bad), "--out", str(out), "--source-dir",
                             str(tmp_path / "src")]) == 2
        assert message in capsys.readouterr().err

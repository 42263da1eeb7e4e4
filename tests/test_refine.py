"""Online refinement (accuracy.refine=true): the measured-accuracy model and the search loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from scipy.stats import kendalltau
from sources import OPTIONS, write_source
from standin import CapacityStandIn

from xpert_evo.accuracy.trained import TrainedAccuracyModel
from xpert_evo.app import CONF_DIR, run_app
from xpert_evo.config import ConfigError
from xpert_evo.report import write_report
from xpert_evo.report.results import build_tables
from xpert_evo.search import SearchRun, build_search, load_checkpoint
from xpert_evo.search.rounds import REFINE_FILE
from xpert_evo.search.setup import RefineBudget
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.groundtruth import load_table
from xpert_evo.training.source import read_source

TINY = [
    "accuracy=naswot",  # the proxy + surrogate machinery (a stand-in replaces the proxy)
    "constraints.precision_loss_pp=null",
    "algorithm.pop_size=16",
    "algorithm.n_gen=6",
    "accuracy.budget.initial=12",
    "accuracy.budget.per_round=3",
    "accuracy.budget.rounds=2",
    "accuracy.refine=true",
    "accuracy.refine_budget.initial=4",
    "accuracy.refine_budget.per_round=2",
]
WIDTHS = np.array([64, 128, 256, 512])


def truth_pct(channels: np.ndarray) -> np.ndarray:
    """A made-up 'measured' accuracy that falls with width: the opposite of what the stand-in
    proxy (and network size) says, so only measurements can teach the search this ranking."""
    return 80.0 - 8.0 * np.log2(np.asarray(channels, float) / 64).mean(axis=1)


class FakeMeasure:
    """Stands in for training: returns `truth_pct` and records what it was asked to train."""

    def __init__(self) -> None:
        self.calls: list[Genomes] = []

    def __call__(self, genomes: Genomes) -> pd.DataFrame:
        self.calls.append(genomes)
        clean = truth_pct(genomes.channels)
        return pd.DataFrame({"channels": ["-".join(map(str, c)) for c in genomes.channels],
                             "val_accuracy_pct": clean, "accuracy_pct": clean + 0.5,
                             "nonideal_accuracy_pct": clean - 1.5, "fidelity": "fake",
                             "device": "none", "wall_s": 0.0})


def config(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[*TINY, *overrides])


def refined_run(out: Path, *overrides: str, on_generation=None) -> tuple[SearchRun, FakeMeasure]:
    fake = FakeMeasure()
    out.mkdir(parents=True, exist_ok=True)
    setup = build_search(config(*overrides), estimator=CapacityStandIn(), measure=fake)
    run = SearchRun(setup, out, on_generation)
    return run, fake


# ---------------------------------------------------------------- the measured-accuracy model


def test_trained_model_learns_a_ranking_the_proxy_does_not_know() -> None:
    rng = np.random.default_rng(0)
    channels = WIDTHS[rng.integers(0, 4, size=(40, 13))]
    proxy = rng.normal(size=40)  # uninformative proxy
    model = TrainedAccuracyModel(Backbone())
    stats = model.fit(proxy[:12], channels[:12], truth_pct(channels[:12]))
    assert stats["n"] == 12 and stats["kendall_tau"] > 0.5 and model.fits == [stats]
    mean, std = model.predict(proxy[12:], channels[12:])
    assert kendalltau(mean, truth_pct(channels[12:])).statistic > 0.6
    assert (std > 0).all() and ((mean >= 0) & (mean <= 100)).all()
    _, wider = model.predict(proxy[12:], channels[12:], proxy_std=np.full(28, 5.0))
    assert (wider >= std).all()


def test_trained_model_rejects_too_few_or_non_percent_accuracies() -> None:
    model = TrainedAccuracyModel(Backbone())
    c = np.full((3, 13), 64)
    with pytest.raises(ValueError, match="at least 3 trained networks"):
        model.fit(np.zeros(2), c[:2], [50.0, 60.0])
    with pytest.raises(ValueError, match="percentages in 0..100"):
        model.fit(np.zeros(3), c, [50.0, np.nan, 60.0])
    with pytest.raises(RuntimeError, match="before fit"):
        model.predict(np.zeros(3), c)
    assert not model.is_fitted


# ---------------------------------------------------------------- the search loop


def test_refinement_trains_the_budget_and_steers_the_accuracy_objective(tmp_path: Path) -> None:
    run, fake = refined_run(tmp_path / "run", "penalty=none")
    res = run.start().run()
    # 4 before the search (the uniform-width anchors, at the baseline's peripheral genes), then
    # 2 per refit round x 2 rounds, all distinct
    first = fake.calls[0]
    np.testing.assert_array_equal(first.channels, np.repeat(WIDTHS[:, None], 13, axis=1))
    assert (first.input_bits == 8).all() and (first.adc_bits == 6).all()
    assert [c.n for c in fake.calls] == [4, 2, 2]
    assert res.accuracy.n_trained == 8 == len(np.unique(res.accuracy.trained.rows, axis=0))
    assert res.accuracy.is_percent and res.accuracy.label == "accuracy_pct"
    assert "8 trained networks" in res.accuracy.source
    assert res.history["n_trained"].iloc[-1] == 8
    # trained designs carry their measured accuracy; the rest follow what was measured, not
    # the proxy (which ranks the other way round)
    channels = res.setup.space.decode(res.archive.x).channels
    trained, _ = res.accuracy.trained.lookup(channels)
    assert trained.sum() >= 4
    np.testing.assert_allclose(res.archive.net[trained], truth_pct(channels[trained]))
    np.testing.assert_array_equal(res.archive.origin == "trained", trained)
    assert kendalltau(res.archive.net, truth_pct(channels)).statistic > 0.4
    proxy_tau = kendalltau(res.setup.estimator.true_score(channels), truth_pct(channels))
    assert proxy_tau.statistic < -0.4
    # refine.csv: one row per training, predictions before training from round 1 on
    log = pd.read_csv(tmp_path / "run" / REFINE_FILE)
    assert log["round"].tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    predicted = log["predicted_pct"]
    assert predicted.iloc[:4].isna().all() and predicted.iloc[4:].notna().all()
    assert (log["design"].iloc[:4] == -1).all() and (log["design"].iloc[4:] >= 0).all()
    np.testing.assert_allclose(log["val_accuracy_pct"], truth_pct(res.accuracy.trained.rows))
    np.testing.assert_allclose(log["accuracy_pct"], log["val_accuracy_pct"] + 0.5)  # reported
    tables = build_tables(res)
    assert tables.meta["accuracy_is_percent"] and "accuracy_pct" in tables.pareto
    assert set(tables.archive["accuracy_from"]) == {"trained", "proxy", "surrogate"}
    facts = tables.meta["refinement"]
    assert facts["n_trained"] == 8 and facts["designs"] == log["design"].iloc[4:].tolist()
    assert facts["n_predicted"] == 4 and facts["prediction_mae_pp"] > 0
    # no penalty predicts no loss: test clean (val + 0.5) against the crossbar's (val - 1.5)
    assert facts["penalty_mae_pp"] == pytest.approx(2.0)
    # VGG16's channels were not trained (the 4 anchors were): its % is a prediction, and the
    # report says so instead of calling it a proxy measurement
    base = tables.meta["baseline"]
    assert base["accuracy_from"] == "proxy" and not base["accuracy_measured"]
    assert base["accuracy_std"] > 0
    archive = tables.archive
    assert archive["accuracy_measured"].equals(archive["accuracy_from"] == "trained")
    only = tables.meta["measured_only"]
    assert only["n_designs"] == int((archive["accuracy_measured"] & archive["feasible"]).sum())
    assert only["n_designs"] >= 1 and only["knee"]["accuracy_from"] == "trained"
    assert tables.meta["accuracy_basis"].startswith("8 trained networks")
    write_report(tables, tmp_path / "run")
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "Online refinement: 8 networks trained" in summary
    assert "- **Accuracy data: 8 trained networks" in summary
    assert "predicted from its true proxy score, ± " in summary  # the baseline's accuracy
    assert f"Measured designs only ({only['n_designs']} feasible designs" in summary


def test_refinement_with_the_penalty_subtracts_the_predicted_loss(tmp_path: Path) -> None:
    run, _ = refined_run(tmp_path / "run")
    res = run.start().run()
    genomes = res.setup.space.decode(res.archive.x)
    trained, pct = res.accuracy.trained.lookup(genomes.channels)
    loss = res.setup.penalty.predict(genomes, pct[:, 0])
    np.testing.assert_allclose(res.archive.clean[trained], pct[trained, 0])
    np.testing.assert_allclose(res.archive.loss_pp[trained], loss[trained])
    np.testing.assert_allclose(res.archive.net[trained], (pct[:, 0] - loss)[trained])
    log = pd.read_csv(tmp_path / "run" / REFINE_FILE)
    assert (log["penalty_predicted_nonideal_pct"] <= log["accuracy_pct"]).all()


MEASURED = ["accuracy=measured", "penalty=none", "constraints.precision_loss_pp=null",
            "algorithm.pop_size=16", "algorithm.n_gen=6", "accuracy.refine=true",
            "accuracy.refine_budget.per_round=2", "accuracy.refine_budget.rounds=2"]


def test_refinement_of_the_measured_objective_refits_and_extends_its_source(
        tmp_path: Path) -> None:
    folder = write_source(tmp_path / "sources", OPTIONS[
        np.random.default_rng(5).integers(0, 4, size=(12, 13))])
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            *MEASURED, f"accuracy.source_dir={tmp_path / 'sources'}"])
    fake = FakeMeasure()
    setup = build_search(cfg, measure=fake)
    assert setup.refine.rounds == 2 and setup.refine.initial == 0
    assert setup.refine_source == folder / "refine.csv"
    res = SearchRun(setup, tmp_path / "run").start().run()
    # 2 rounds x 2 designs, chosen from the search's front; nothing before the search
    assert [c.n for c in fake.calls] == [2, 2] and res.accuracy.n_trained == 4
    # the predictor is refitted on the source plus the trained networks, and the trained designs
    # carry their measured validation accuracy
    assert res.setup.estimator.predictor.report["n_fit"] == 12 + 4
    channels = res.setup.space.decode(res.archive.x).channels
    trained, _ = res.accuracy.trained.lookup(channels)
    assert trained.sum() >= 2
    np.testing.assert_allclose(res.archive.net[trained], truth_pct(channels[trained]))
    # predictions before training come from the source's predictor, for every trained design
    log = pd.read_csv(tmp_path / "run" / REFINE_FILE)
    assert log["predicted_pct"].notna().all() and (log["round"] >= 1).all()
    # the trainings are appended to the user's source, marked as refinement rows
    added = read_source([folder])
    added = added[added["role"] == "refine"]
    assert len(added) == 4 and (added["net_id"] == -1).all()
    np.testing.assert_allclose(sorted(added["val_accuracy_pct"]), sorted(log["val_accuracy_pct"]))


def test_measured_refinement_refuses_another_training_budget(tmp_path: Path) -> None:
    write_source(tmp_path / "sources", OPTIONS[np.random.default_rng(6).integers(0, 4, (8, 13))])
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            *MEASURED, f"accuracy.source_dir={tmp_path / 'sources'}", "train.epochs=3"])
    with pytest.raises(ConfigError, match="trains at the train: budget e3-pc500-w0.25-b64, but "
                                          "the accuracy source is at e5-pc500-w0.25-b64"):
        build_search(cfg, measure=FakeMeasure())


def test_refined_run_resumes_like_an_uninterrupted_one(tmp_path: Path) -> None:
    full, _ = refined_run(tmp_path / "full", "seed=2")
    full_res = full.start().run()

    class Stop(KeyboardInterrupt):
        pass

    def interrupt(run: SearchRun, generation: int) -> None:
        if generation == 4:
            raise Stop

    cut, _ = refined_run(tmp_path / "cut", "seed=2", on_generation=interrupt)
    with pytest.raises(Stop):
        cut.start().run()
    state = load_checkpoint(tmp_path / "cut")
    resumed, fake = refined_run(tmp_path / "resumed", "seed=2")
    res = resumed.resume(state).run()
    assert [c.n for c in fake.calls] == [2]  # only the last round trains after the cut
    np.testing.assert_array_equal(res.archive.x, full_res.archive.x)
    np.testing.assert_allclose(res.archive.objectives(), full_res.archive.objectives())
    pd.testing.assert_frame_equal(res.refined, full_res.refined)


def test_measured_refine_budget_takes_the_schemas_defaults_and_checks_ranges() -> None:
    node = {"proxy": "measured", "refine": True}
    assert RefineBudget.from_config(node, None) == RefineBudget(0, 2, 4)
    with pytest.raises(ConfigError, match=r"refine_budget\.rounds=-2 must be an integer >= 0"):
        RefineBudget.from_config({**node, "refine_budget": {"rounds": -2}}, None)
    with pytest.raises(ConfigError, match=r"unknown config key accuracy\.refine_budget\.round;"):
        RefineBudget.from_config({**node, "refine_budget": {"round": 2}}, None)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["accuracy.refine=maybe"], "accuracy.refine=maybe"),  # the schema: refine is a bool
        (["accuracy.refine_budget.initial=2"], "accuracy.refine_budget.initial=2"),
        (["+accuracy.refine_budget.rounds=3"], "accuracy.refine_budget"),
        (["accuracy.refine_budget.per_round=-1"],
         "accuracy.refine_budget.per_round=-1 must be an integer >= 0"),
        (["accuracy.surrogate=null"], "accuracy.budget.rounds >= 1"),
        (["+train.epoch=3"], "unknown config key train.epoch; allowed keys there are"),
        (["data.root=/nonexistent/data"], "data.root='/nonexistent/data' does not exist, and "
         "accuracy.refine=true trains networks"),
        (["data.dataset=none"], "data.dataset=none"),
    ],
)
def test_refine_config_errors_name_the_key(overrides: list[str], match: str) -> None:
    with pytest.raises((ConfigError, ConfigCompositionException), match=match):
        build_search(config(*overrides), estimator=CapacityStandIn())


def test_refined_app_run_on_real_cifar10(
    cifar10_zip: Path, data_cache: Path, tmp_path: Path
) -> None:
    """End to end with real training at a tiny budget: rows reach the ground-truth table,
    refine.csv and the report, and the front is in %."""
    table = tmp_path / "gt.csv"
    overrides = [
        "accuracy=params", "accuracy.refine=true", "accuracy.surrogate.n_members=4",
        "accuracy.budget.initial=10", "accuracy.budget.per_round=2", "accuracy.budget.rounds=1",
        "accuracy.refine_budget.initial=3", "accuracy.refine_budget.per_round=1",
        f"accuracy.cache_dir={data_cache}", f"data.root={cifar10_zip.parent}",
        "data.allow_data_free=false", f"ground_truth.path={table}",
        "algorithm.pop_size=12", "algorithm.n_gen=2",
        "train.epochs=1", "train.train_per_class=20", "train.test_per_class=10",
        "train.width_mult=0.125", "train.batch_size=20",
        "crossbar.test_images=20", "crossbar.calib_images=16",
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    out = run_app(cfg, tmp_path / "run", overrides)
    log = pd.read_csv(out / REFINE_FILE)
    stored = load_table(table)
    assert len(log) == 4 == len(stored)
    assert stored["fidelity"].eq("e1-pc20-w0.125-b20").all()
    assert stored["channels"].tolist() == log["channels"].tolist()
    assert ((log["accuracy_pct"] >= 0) & (log["accuracy_pct"] <= 100)).all()
    assert log["nonideal_accuracy_pct"].notna().all()
    meta = json.loads((out / "run.json").read_text())
    assert meta["accuracy_is_percent"] and "trained networks" in meta["accuracy_source"]
    pareto = pd.read_csv(out / "pareto.csv")
    assert "accuracy_pct" in pareto and len(pareto) > 0

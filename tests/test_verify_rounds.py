"""`verify.rounds=K`: verify front designs, add them to the source as `front` rows, refit the
predictor, search on (NSGANetV2's archive loop at the source's budget)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from sources import OPTIONS, synthetic_accuracy, write_source
from standin import CapacityStandIn

from xpert_evo.accuracy.predictor import source_accuracy
from xpert_evo.app import CONF_DIR, run_app
from xpert_evo.config import ConfigError
from xpert_evo.report import write_report
from xpert_evo.report.refinement import SECTION
from xpert_evo.report.results import build_tables
from xpert_evo.search import SearchRun, build_search
from xpert_evo.search.front_rounds import REFINEMENT_FILE, VerifyRounds, verify_rounds
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.groundtruth import load_table, per_layer_ints
from xpert_evo.training.source import find_source, network_means, read_source
from xpert_evo.training.verification import FRONT_FILE, FrontSource
from xpert_evo.verify import round_trainings

FIDELITY = "e5-pc500-w0.25-b64"
OFFSET_PP = 6.0
"""How far the fake trainings sit above the source's law: only a refit can learn it."""
TINY = ["accuracy=measured", "penalty=none", "constraints.precision_loss_pp=null",
        "algorithm.pop_size=16", "algorithm.n_gen=4"]


def joined(rows: np.ndarray) -> list[str]:
    return ["-".join(map(str, r)) for r in np.asarray(rows).tolist()]


class FakeTrainings:
    """Stands in for training at the source's budget: `synthetic_accuracy` + `OFFSET_PP`, a
    little seed noise; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[int]]] = []

    def __call__(self, genomes: Genomes, names: list[str], seeds: list[int]) -> pd.DataFrame:
        self.calls.append((list(names), list(seeds)))
        truth = synthetic_accuracy(genomes.channels) + OFFSET_PP
        return pd.DataFrame([
            {"channels": c, "seed": s, "val_accuracy_pct": t + 0.2 * s,
             "accuracy_pct": t + 0.5, "dataset": "cifar10", "fidelity": FIDELITY,
             "kind": "train", "wall_s": 1.5}
            for c, t in zip(joined(genomes.channels), truth, strict=True) for s in seeds])


def compose_config(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[*TINY, *overrides])


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    """A user source of 12 networks (even net_id fit, odd held out)."""
    write_source(tmp_path / "sources", OPTIONS[
        np.random.default_rng(5).integers(0, 4, size=(12, 13))])
    return tmp_path / "sources"


def test_a_round_adds_front_rows_and_moves_the_predictor_toward_them(
        tmp_path: Path, source: Path) -> None:
    cfg = compose_config(f"accuracy.source_dir={source}", "verify.rounds=1",
                         "verify.per_round=2", "verify.seeds=2")
    setup = build_search(cfg)
    run = SearchRun(setup, tmp_path / "run")
    (tmp_path / "run").mkdir()
    fake = FakeTrainings()
    front = FrontSource.of(str(source), "cifar10", FIDELITY, tmp_path / "run")
    result = verify_rounds(run.start(), VerifyRounds(1, 2, 2), fake, front)
    # one round, 2 designs x seeds 0 and 1, then the search went on for n_gen more generations
    assert len(fake.calls) == 1 and fake.calls[0][1] == [0, 1] and len(fake.calls[0][0]) == 2
    assert result.history["generation"].iloc[-1] == 8 and run.stage == 1
    # the trainings are the source's front rows now
    table = read_source([source / f"cifar10-{FIDELITY}"])
    added = table[table["role"] == "front"]
    assert front.path.name == FRONT_FILE and len(added) == 4 and (added["net_id"] == -1).all()
    # the predictor is fitted on the source and the two front networks (one mean each) ...
    assert setup.estimator.predictor.report["n_fit"] == 12 + 2
    log = pd.read_csv(tmp_path / "run" / REFINEMENT_FILE)
    assert log["round"].tolist() == [1, 1] and (log["seeds"] == 2).all()
    truth = synthetic_accuracy(per_layer_ints(log["channels"])) + OFFSET_PP + 0.1
    np.testing.assert_allclose(log["measured_pct"], truth)
    # ... and its predictions for them moved toward what was measured
    assert (log["error_after_pp"].abs() < log["error_before_pp"].abs()).all()
    assert (log["error_before_pp"] < 0).all()  # the source's law sits OFFSET_PP below
    # a later run on the same source learns from the same networks
    later = source_accuracy("cifar10", Backbone(), source_dir=str(source))
    assert later.predictor.report["n_fit"] == 14
    # the report: facts in run.json, a section in summary.md
    tables = build_tables(result, {"front_source": str(front.path)})
    facts = tables.meta["verify_rounds"]
    assert facts["designs"] == 2 and facts["train_s"] == pytest.approx(6.0)
    assert facts["mean_error_before_pp"] == pytest.approx(log["error_before_pp"].mean())
    assert facts["rmse_after_pp"] < facts["rmse_before_pp"]
    write_report(tables, tmp_path / "run")
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert SECTION in summary and f"accuracy.source_dir={source}" in summary


def test_front_rows_keep_held_out_and_fit_networks_as_they_are(
        tmp_path: Path, source: Path) -> None:
    folder = source / f"cifar10-{FIDELITY}"
    before = network_means(read_source([folder]))
    held = before[before["role"] == "heldout"].iloc[0]["channels"]
    fit = before[before["role"] == "fit"].iloc[0]["channels"]
    new = joined(OPTIONS[np.full((1, 13), 3)])[0]
    rows = pd.DataFrame({"channels": [held, fit, new, new], "seed": [1, 1, 0, 0],
                         "val_accuracy_pct": [1.0, 2.0, 60.0, 60.0], "fidelity": FIDELITY})
    front = FrontSource.of(str(source), "cifar10", FIDELITY, tmp_path)
    assert front.append(rows, "test") == 1  # only the new network, once
    assert front.append(rows, "test") == 0  # a rerun adds nothing
    after = network_means(read_source([folder]))
    for role in ("fit", "heldout"):  # the held-out check's split and values are untouched
        pd.testing.assert_frame_equal(before[before["role"] == role].reset_index(drop=True),
                                      after[after["role"] == role].reset_index(drop=True))
    assert after[after["role"] == "front"]["channels"].tolist() == [new]


def test_a_packaged_source_is_copied_into_the_run(tmp_path: Path) -> None:
    front = FrontSource.of(None, "cifar10", FIDELITY, tmp_path / "run")
    assert front.path == tmp_path / "run" / "source" / f"cifar10-{FIDELITY}" / FRONT_FILE
    channels = joined(OPTIONS[np.full((1, 13), 0)])
    front.append(pd.DataFrame({"channels": channels, "seed": [7], "val_accuracy_pct": [40.0]}),
                 "test")
    packaged = network_means(find_source("cifar10", FIDELITY)[1])
    copied = network_means(find_source("cifar10", FIDELITY, tmp_path / "run" / "source")[1])
    assert channels[0] not in set(packaged["channels"])
    pd.testing.assert_frame_equal(copied[copied["role"] != "front"].reset_index(drop=True),
                                  packaged)
    assert copied[copied["role"] == "front"]["channels"].tolist() == channels


def test_measured_refinement_and_rounds_compose_and_run(tmp_path: Path, source: Path) -> None:
    """`accuracy=measured accuracy.refine=true verify.rounds=1`: online refinement trains during
    the search, then a round verifies designs neither trained nor in the source."""
    from test_refine import FakeMeasure

    cfg = compose_config(f"accuracy.source_dir={source}", "accuracy.refine=true",
                         "accuracy.refine_budget.per_round=2", "accuracy.refine_budget.rounds=1",
                         "verify.rounds=1", "verify.per_round=2", "verify.seeds=1")
    online = FakeMeasure()
    setup = build_search(cfg, measure=online)
    (tmp_path / "run").mkdir()
    run = SearchRun(setup, tmp_path / "run").start()
    fake = FakeTrainings()
    verify_rounds(run, VerifyRounds(1, 2, 1), fake,
                  FrontSource.of(str(source), "cifar10", FIDELITY, tmp_path / "run"))
    trained = set(joined(run.accuracy.trained.rows))
    verified = set(pd.read_csv(tmp_path / "run" / REFINEMENT_FILE)["channels"])
    assert len(online.calls) == 1 and len(fake.calls) == 1
    assert len(trained) == 2 and len(verified) == 2 and not trained & verified
    assert setup.estimator.predictor.report["n_fit"] == 12 + 2 + 2
    assert run.accuracy.is_measured(per_layer_ints(sorted(trained | verified))).all()


def test_round_trainings_refuse_a_proxy_objective(tmp_path: Path) -> None:
    setup = build_search(compose_config("accuracy=naswot", "verify.rounds=1"),
                         estimator=CapacityStandIn())
    with pytest.raises(ConfigError, match="verify.rounds=1 refits the predictor of a measured"):
        round_trainings(setup.config, setup, tmp_path)


@pytest.mark.parametrize(("value", "match"), [
    ("-1", "verify.rounds=-1 must be a whole number >= 0"),
    ("1.5", "verify.rounds"),
    ("many", "verify.rounds"),
])
def test_bad_rounds_exit_2_with_one_line(tmp_path: Path, value: str, match: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "xpert_evo", f"verify.rounds={value}",
         f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in (done.stdout + done.stderr).splitlines() if "error:" in line]
    assert len(errors) == 1 and match in errors[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_an_app_run_trains_rounds_and_a_resume_retrains_nothing(
        tmp_path: Path, cifar10_zip: Path, data_cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end with real trainings at a tiny budget (a source built at it): the rounds reach
    the ground-truth table, the source's front.csv, refinement.csv and summary.md; a run killed
    after its round resumes with the round's trainings read back, none run again."""
    monkeypatch.setenv("XPERT_EVO_CACHE", str(data_cache))
    tiny = "e1-pc20-w0.125-b20"
    write_source(tmp_path / "sources", OPTIONS[
        np.random.default_rng(7).integers(0, 4, size=(10, 13))], fidelity=tiny)
    table = tmp_path / "gt.csv"
    overrides = [*TINY, f"accuracy.source_dir={tmp_path / 'sources'}",
                 f"data.root={cifar10_zip.parent}", f"ground_truth.path={table}",
                 "train.epochs=1", "train.train_per_class=20", "train.val_per_class=5",
                 "train.test_per_class=10", "train.width_mult=0.125", "train.batch_size=20",
                 "crossbar.calib_images=16", "verify.test_images=20", "algorithm.n_gen=2",
                 "verify.rounds=1", "verify.per_round=2", "verify.seeds=1"]

    class Killed(KeyboardInterrupt):
        pass

    def killed(run: SearchRun) -> SearchRun:
        raise Killed

    with monkeypatch.context() as patch:  # killed after the round, before the search goes on
        patch.setattr(SearchRun, "extend", killed)
        with pytest.raises(Killed):
            run_app(compose_config(*overrides), tmp_path / "first", overrides)
    trained = load_table(table)
    assert len(trained) == 2 and trained["fidelity"].eq(tiny).all()
    front = read_source([tmp_path / "sources" / f"cifar10-{tiny}"])
    assert (front["role"] == "front").sum() == 2
    resume = [*overrides, f"resume={tmp_path / 'first'}"]
    out = run_app(compose_config(*resume), tmp_path / "resumed", resume)
    assert len(load_table(table)) == 2  # read back, not trained again
    again = read_source([tmp_path / "sources" / f"cifar10-{tiny}"])
    assert (again["role"] == "front").sum() == 2
    log = pd.read_csv(out / REFINEMENT_FILE)
    assert len(log) == 2 and log["measured_pct"].between(0, 100).all()
    assert json.loads((out / "run.json").read_text())["verify_rounds"]["designs"] == 2
    assert SECTION in (out / "summary.md").read_text()
    assert pd.read_csv(out / "history.csv")["generation"].iloc[-1] == 4

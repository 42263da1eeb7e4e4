"""The Hydra app end to end (tiny budgets, parameter-count proxy) and its bad-input messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from xpert_evo.app import CONF_DIR, resume_config, run_app
from xpert_evo.config import ConfigError
from xpert_evo.hardware.cli import main as cost_main
from xpert_evo.predict import main as predict_main
from xpert_evo.space.genome import GeneError
from xpert_evo.training.data import DataError
from xpert_evo.training.train import TrainSpec

TINY = [
    "accuracy=params",
    "algorithm.pop_size=12",
    "algorithm.n_gen=3",
    "accuracy.budget.initial=10",
    "accuracy.budget.per_round=2",
    "accuracy.budget.rounds=1",
    "accuracy.surrogate.n_members=2",
]


def compose_cfg(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[*TINY, f"accuracy.cache_dir={tmp_path / 'cache'}", *overrides],
        )


def app(tmp_path: Path, name: str, *overrides: str) -> Path:
    cfg = compose_cfg(tmp_path, *overrides)
    return run_app(cfg, tmp_path / name, [*TINY, *overrides])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return app(tmp_path_factory.mktemp("app"), "run")


def test_outputs_parse(finished_run: Path) -> None:
    out = finished_run
    meta = json.loads((out / "run.json").read_text())
    acc = meta["accuracy_column"]
    assert "not_pct" in acc and "not %" in meta["accuracy_label"]
    pareto = pd.read_csv(out / "pareto.csv")
    for col in ("channels", "col_share", "adc_type", "adc_bits", "input_bits", "channels_1",
                "adc_type_13", acc, f"{acc}_std", "accuracy_from", "accuracy_source",
                "area_mm2", "energy_pj", "latency_ns", "edap", "tops_per_w", "tops_per_mm2",
                "edap_reduction_x", "tops_per_w_x", "tops_per_mm2_x", "role"):
        assert col in pareto, col
    assert len(pareto) > 0 and pareto["feasible"].all()
    assert pareto["channels"].str.count("-").eq(12).all()
    assert set(pareto["adc_type_1"]) <= {"flash", "sar"}
    assert pareto["role"].fillna("").str.contains("knee").sum() == 1
    archive = pd.read_csv(out / "archive.csv")
    assert len(archive) == 36 and set(archive["generation"]) == {1, 2, 3}
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns[:7]) == ["generation", "n_evals", "n_true_evals", "hypervolume",
                                         "n_nondominated", "best_edap", "elapsed_s"]
    assert history["n_evals"].tolist() == [12, 24, 36]
    summary = (out / "summary.md").read_text()
    for text in ("VGG16", "pymoo", "torch", "numpy", "edap_reduction_x", "seed 0", "params"):
        assert text in summary, text
    for name in ("pareto.png", "pareto.pdf", "convergence.png", "convergence.pdf",
                 "checkpoint.pkl", "designs/knee_layers.csv", "designs/knee_neurosim.csv",
                 "designs/best_edap_layers.csv", "designs/best_edap_neurosim.csv"):
        assert (out / name).is_file(), name
    neurosim = pd.read_csv(out / "designs/knee_neurosim.csv", header=None)
    assert neurosim.shape == (14, 12)


@pytest.mark.parametrize(
    "overrides",
    [[], ["+experiment=cifar10"], ["+experiment=cifar10", *TINY], ["+experiment=tinyimagenet"]],
    ids=["default", "cifar10", "cifar10-proxy", "tinyimagenet"],
)
def test_short_run_writes_a_front_and_designs(tmp_path: Path, overrides: list[str]) -> None:
    overrides = [*overrides, f"data.root={tmp_path}", f"accuracy.cache_dir={tmp_path / 'cache'}",
                 "algorithm.n_gen=3", "algorithm.pop_size=16"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    # the default precision bound is on: the penalty's, above its held-out error
    assert cfg.constraints.precision_loss_pp == cfg.penalty.bound_pp
    assert cfg.penalty.bound_pp > float(cfg.penalty.heldout_rmse_pp)
    assert cfg.penalty.dataset == cfg.data.dataset  # each data set its own precision-loss fit
    out = run_app(cfg, tmp_path / "short", overrides)
    pareto = pd.read_csv(out / "pareto.csv")
    if cfg.accuracy.proxy == "measured":  # the % names the budget its source was trained at
        column = json.loads((out / "run.json").read_text())["accuracy_column"]
        fidelity = TrainSpec.from_config(cfg.train).fidelity()
        assert column == "accuracy_pct_at_" + fidelity.replace("-", "_").replace(".", "_")
    assert len(pareto) > 0 and pareto["feasible"].all()
    assert (pareto["precision_loss_pp"] <= cfg.penalty.bound_pp + 1e-9).all()
    if cfg.accuracy.proxy == "measured":  # pareto.csv, as it is, is valid input of predict
        assert predict_main([str(out / "pareto.csv"), "--out", str(tmp_path / "again.csv")]) == 0
        again = pd.read_csv(tmp_path / "again.csv")
        assert (again["dataset"] == cfg.data.dataset).all()
        assert again["accuracy_pct"].to_numpy() == pytest.approx(pareto[column].to_numpy(),
                                                                 abs=1e-3)
    summary = (out / "summary.md").read_text()
    assert (f"Precision-loss bound {cfg.penalty.bound_pp:g} pp" in summary
            and f"RMSE {float(cfg.penalty.heldout_rmse_pp):.2f} pp" in summary)
    # the predictor's answers are not called true proxy scores
    predicted = cfg.accuracy.proxy == "measured"
    assert ("distinct channel configurations predicted" in summary) == predicted
    assert ("true proxy scores" in summary) != predicted
    # the knee's per-layer table can be re-costed by the cost command (on the run's hardware)
    # and adds up to its totals
    assert cost_main([str(out / "designs" / "knee_layers.csv"), "--out",
                      str(tmp_path / "knee_costed.csv"),
                      f"weight_encoding={cfg.hardware.weight_encoding}"]) == 0
    costed = pd.read_csv(tmp_path / "knee_costed.csv")
    knee = pareto[pareto["role"].str.contains("knee")].iloc[0]
    for total in ("area_mm2", "energy_pj", "latency_ns"):
        assert costed[total].sum() == pytest.approx(knee[total], rel=1e-5), total
    archive = pd.read_csv(out / "archive.csv")
    assert len(archive) == 48 and archive.loc[archive["generation"] == 1, "feasible"].any()


def test_resume_continues_into_a_new_directory(finished_run: Path, tmp_path: Path) -> None:
    before = (finished_run / "pareto.csv").stat().st_mtime_ns
    out = app(tmp_path, "more", f"resume={finished_run}", "algorithm.n_gen=4")
    history = pd.read_csv(out / "history.csv")
    assert history["generation"].tolist() == [1, 2, 3, 4]
    assert (finished_run / "pareto.csv").stat().st_mtime_ns == before
    assert json.loads((out / "run.json").read_text())["resumed_from"] == str(finished_run)


def test_resume_keeps_the_saved_config() -> None:
    saved = {"seed": 1, "algorithm": {"name": "nsga2", "n_gen": 3, "pop_size": 8}}
    current = {"seed": 9, "algorithm": {"name": "nsga2", "n_gen": 7, "pop_size": 50}}
    config = resume_config(saved, current, ["resume=x", "seed=9", "algorithm.n_gen=7"])
    assert config["seed"] == 1 and config["algorithm"]["n_gen"] == 7
    assert config["algorithm"]["pop_size"] == 8


def test_existing_outputs_are_never_overwritten(finished_run: Path) -> None:
    cfg = compose_cfg(finished_run.parent)
    with pytest.raises(ConfigError, match="hydra.run.dir=.*already holds an earlier run"):
        run_app(cfg, finished_run)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["space.channels=[]"], "space.channels"),
        (["constraints.area_mm2=1.0"], "constraints.area_mm2"),
        (["data.allow_data_free=false", "data.root=/nonexistent/xpert"], "data.root"),
        (["+algorithm.pop_siz=5"], "algorithm.pop_siz"),
        (["+constraints.area=5"], "constraints.area"),
        (["algorithm.pop_size=0"], "algorithm.pop_size"),
        (["algorithm=random", "+algorithm.crossover_eta=3"], "algorithm.crossover_eta"),
    ],
)
def test_bad_input_names_the_key(tmp_path: Path, overrides: list[str], key: str) -> None:
    cfg = compose_cfg(tmp_path, *overrides)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        run_app(cfg, tmp_path / "out", overrides)
    assert not (tmp_path / "out").exists()


def test_resume_without_checkpoint(tmp_path: Path) -> None:
    cfg = compose_cfg(tmp_path, f"resume={tmp_path}")
    with pytest.raises(ConfigError, match="resume=.*no checkpoint.pkl"):
        run_app(cfg, tmp_path / "out")


def test_unknown_key_on_the_command_line_fails_in_hydra(tmp_path: Path) -> None:
    with pytest.raises(ConfigCompositionException, match="algorithm.pop_siz"):
        compose_cfg(tmp_path, "algorithm.pop_siz=5")


def test_xpert_experiments_search_xperts_setting(tmp_path: Path) -> None:
    """XPert's setting: NeuroSim's offset mapping, XPert's area budgets, VGG16 at 4-bit inputs."""
    for name, area in (("xpert_cifar10", 50.0), ("xpert_tinyimagenet", 80.0)):
        cfg = compose_cfg(tmp_path, f"+experiment={name}")
        assert cfg.hardware.weight_encoding == "offset" and cfg.constraints.area_mm2 == area
        assert cfg.space.baseline.input_bits == 4 and cfg.space.baseline.adc_bits == 6
        assert cfg.penalty.get("weight_encoding") in (None, "offset")  # no differential fit


def test_experiments_require_data(tmp_path: Path) -> None:
    for name in ("cifar10", "tinyimagenet"):
        cfg = compose_cfg(tmp_path, f"+experiment={name}", "data.root=/nonexistent/xpert")
        assert cfg.data.allow_data_free is False
        with pytest.raises((ConfigError, DataError), match="data.root"):
            run_app(cfg, tmp_path / name)
    cfg = compose_cfg(tmp_path, "+experiment=tinyimagenet")
    assert (cfg.data.input_size, cfg.data.num_classes) == (64, 200)


def test_cli_error_is_one_message_with_exit_code_2(tmp_path: Path) -> None:
    env = {**os.environ, "XPERT_EVO_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "xpert_evo", "constraints.area_mm2=0.5",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "constraints.area_mm2=0.5 is below the smallest chip" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("space.col_share=[3]", "space.col_share=[3]: 3 does not divide the 64 crossbar columns; "
                                "allowed: 1, 2, 4, 8, 16, 32, 64"),
        ("space.adc_bits=[4,20]", "space.adc_bits=[4, 20]: 20 is outside the 1..16 ADC bits the "
                                  "models support; allowed: 1..16"),
    ],
)
def test_gene_the_hardware_cannot_build_exits_2_before_any_work(
    tmp_path: Path, override: str, message: str
) -> None:
    env = {**os.environ, "XPERT_EVO_CACHE": str(tmp_path / "cache")}
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "xpert_evo", override, f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert message in text and "Traceback" not in text
    assert not run_dir.exists()  # a refused run leaves no directory, not even Hydra's files
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["space.input_bits=[1,8]"], r"space\.input_bits=\[1, 8\]: 1 is outside the 2\.\.16"),
        (["space.baseline.col_share=3"], r"space\.baseline\.col_share=3: 3 does not divide"),
        (["hardware=rram_128x128_2bit", "space.col_share=[256]"],
         r"256 does not divide the 128 crossbar columns; allowed: 1, 2, 4, 8, 16, 32, 64, 128$"),
    ],
)
def test_gene_checks_follow_the_hardware(
    tmp_path: Path, overrides: list[str], message: str
) -> None:
    cfg = compose_cfg(tmp_path, *overrides)
    with pytest.raises(GeneError, match=message):
        run_app(cfg, tmp_path / "out", overrides)
    assert not (tmp_path / "out").exists()

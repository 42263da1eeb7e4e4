"""`python -m xpert_evo.verify`: train a run's designs on a tiny budget, resume, paired test."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from xpert_evo.app import CONF_DIR, run_app
from xpert_evo.config import ConfigError
from xpert_evo.training.data import DataError
from xpert_evo.training.groundtruth import load_table
from xpert_evo.training.verification import (
    BASELINE,
    VerifyError,
    paired_shortfall,
    read_run,
)
from xpert_evo.verify import ISO, after_search, verify, walk_up

TINY_BUDGET = {"epochs": 1, "train_per_class": 20, "val_per_class": 5, "test_per_class": 10,
               "width_mult": 0.125, "batch_size": 20}
"""A training preset of a few seconds; the test run is relabelled to stand for it."""
TINY_FIDELITY = "e1-pc20-w0.125-b20"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished search (the packaged predictor, 24 designs) whose run.json says its accuracy
    stands for `TINY_BUDGET`, and a config folder with that training preset."""
    root = tmp_path_factory.mktemp("verify")
    # the four-parameter penalty: with the per-layer default this two-generation front's knee is
    # VGG16 itself, and the test needs a knee apart from the baseline
    overrides = ["algorithm.pop_size=12", "algorithm.n_gen=2", "penalty=crossbar_cifar10_offset"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    out = run_app(cfg, root / "run", overrides)
    meta = json.loads((out / "run.json").read_text())
    meta["accuracy_label"] = f"accuracy % at {TINY_FIDELITY}"
    (out / "run.json").write_text(json.dumps(meta))
    presets = root / "conf"
    (presets / "training").mkdir(parents=True)
    (presets / "training" / "tiny.yaml").write_text(yaml.safe_dump(TINY_BUDGET))
    return out, presets


def config(run_dir: Path, tmp_path: Path, cifar10_zip: Path, data_cache: Path,
           **verify_keys: object) -> dict:
    return {
        "run_dir": str(run_dir),
        "verify": {"roles": ["knee"], "seeds": 2, "baseline": True, "alpha": 0.05,
                   "walk_budget": 1, "n_jobs": 1, **verify_keys},
        "cache_dir": str(data_cache),
        "data": {"root": str(cifar10_zip.parent), "download": False},
        "crossbar": {"test_images": 20, "calib_images": 16},
        "ground_truth": {"path": str(tmp_path / "gt.csv"), "keep_checkpoints": True},
    }


def test_verify_trains_each_design_once_and_writes_measured_columns(
    tiny_run: tuple[Path, Path], tmp_path: Path, cifar10_zip: Path, data_cache: Path,
    caplog: pytest.LogCaptureFixture
) -> None:
    run_dir, presets = tiny_run
    cfg = config(run_dir, tmp_path, cifar10_zip, data_cache)
    with caplog.at_level(logging.INFO, logger="xpert_evo"):
        done = verify(cfg, presets)
    table = load_table(tmp_path / "gt.csv")
    assert len(table) == 4  # knee and baseline at seeds 0 and 1
    # one progress line per training, counted, as each ends
    progress = [r.getMessage() for r in caplog.records if "] verified " in r.getMessage()]
    assert [line.split("]")[0] for line in progress] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert sum(f"verified {BASELINE} seed 1:" in line for line in progress) == 1
    assert set(table["fidelity"]) == {TINY_FIDELITY}
    verified = pd.read_csv(run_dir / "verified.csv")
    assert verified["design"].tolist() == ["knee", BASELINE]
    assert (verified["seeds"] == 2).all()
    seeds = pd.read_csv(run_dir / "verified_trainings.csv")
    knee = seeds[seeds["design"] == "knee"]
    assert np.isclose(verified.loc[0, "measured_crossbar_pct"], knee["crossbar_pct"].mean())
    assert np.allclose(knee["loss_pp"], knee["float_pct"] - knee["crossbar_pct"])
    assert np.isclose(verified.loc[0, "predicted_minus_measured_pp"],
                      verified.loc[0, "predicted_net_pct"] - verified.loc[0, "measured_net_pct"])
    pareto = pd.read_csv(run_dir / "pareto.csv")
    row = pareto[pareto["role"].astype(str).str.contains("knee")].iloc[0]
    assert row["accuracy_from"] == "trained" and row["verified_seeds"] == 2
    assert np.isclose(row[read_run(run_dir).accuracy_column], verified.loc[0, "measured_net_pct"])
    assert pareto[pareto["accuracy_from"] == "trained"].shape[0] == 1
    meta = json.loads((run_dir / "run.json").read_text())["verified"]
    assert [d["design"] for d in meta["designs"]] == ["knee", BASELINE] and meta["seeds"] == 2
    assert (run_dir / "pareto.png").stat().st_mtime >= (run_dir / "verified.csv").stat().st_mtime
    summary = (run_dir / "summary.md").read_text()
    assert summary.count("## Verified designs (measured)") == 1
    assert any("winner's-curse" in line for line in done.lines)

    # the trainings joined the run's source (a copy in the run: the packaged one is never
    # written to) as front rows, for a later run's predictor to learn from
    front = load_table(run_dir / "source" / f"cifar10-{TINY_FIDELITY}" / "front.csv")
    assert len(front) == 4 and (front["role"] == "front").all()

    again = verify(cfg, presets)  # everything is in the table: nothing is trained again
    assert len(load_table(tmp_path / "gt.csv")) == 4
    assert len(load_table(run_dir / "source" / f"cifar10-{TINY_FIDELITY}" / "front.csv")) == 4
    pd.testing.assert_frame_equal(again.summary, done.summary)
    assert (run_dir / "summary.md").read_text().count("## Verified designs (measured)") == 1


def test_bad_input_names_the_key(
    tiny_run: tuple[Path, Path], tmp_path: Path, cifar10_zip: Path, data_cache: Path
) -> None:
    run_dir, presets = tiny_run
    cfg = config(run_dir, tmp_path, cifar10_zip, data_cache)
    with pytest.raises(VerifyError, match="not a search run directory"):
        verify({**cfg, "run_dir": str(tmp_path)}, presets)
    with pytest.raises(ConfigError, match=r"\['nope'\] are not roles; allowed: \['knee'"):
        verify({**cfg, "verify": {**cfg["verify"], "roles": ["nope"]}}, presets)
    with pytest.raises(ConfigError, match=r"config key verify\.seeds: Value 'many' .* Integer"):
        verify({**cfg, "verify": {**cfg["verify"], "seeds": "many"}}, presets)
    with pytest.raises(ConfigError, match=r"unknown config key verify\.seed; allowed keys"):
        verify({**cfg, "verify": {**cfg["verify"], "seed": 2}}, presets)
    lacking = tmp_path / "lacking"
    shutil.copytree(run_dir, lacking)
    pareto = pd.read_csv(lacking / "pareto.csv")
    pareto["role"] = pareto["role"].fillna("").str.replace("iso_accuracy", "knee")
    pareto.to_csv(lacking / "pareto.csv", index=False)
    with pytest.raises(VerifyError, match=r"no 'iso_accuracy' design; it has \[.*'knee'"):
        verify({**cfg, "run_dir": str(lacking),
                "verify": {**cfg["verify"], "roles": ["iso_accuracy"]}}, presets)
    with pytest.raises(VerifyError, match="no conf/training preset trains at it"):
        verify(cfg)  # the shipped presets: none trains at the tiny budget
    with pytest.raises(DataError, match="data.root"):
        verify({**cfg, "data": {"root": str(tmp_path / "none")},
                "cache_dir": str(tmp_path / "empty_cache")}, presets)


def test_cli_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "xpert_evo.verify", f"run_dir={tmp_path}"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert "run_dir=" in done.stderr + done.stdout and "Traceback" not in done.stderr


def _seeds(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"design": name, "seed": s, "crossbar_pct": v}
                         for name, vs in values.items() for s, v in enumerate(vs)])


def test_paired_shortfall_tells_a_real_gap_from_noise() -> None:
    base = [50.0, 51.0, 49.5]
    gap = [-2.0 + e for e in (0.1, -0.1, 0.0)]
    short = paired_shortfall(_seeds({BASELINE: base,
                                     "d": [b + g for b, g in zip(base, gap, strict=True)]}), "d")
    assert short.falls_short and short.mean_diff_pp == pytest.approx(-2.0) and short.seeds == 3
    noisy = paired_shortfall(_seeds({BASELINE: base, "d": [50.5, 50.0, 49.8]}), "d")
    assert not noisy.falls_short and noisy.p_value > 0.05
    one = paired_shortfall(_seeds({BASELINE: [50.0], "d": [40.0]}), "d")
    assert np.isnan(one.p_value) and not one.falls_short


def test_walk_up_stops_at_the_first_design_that_holds(tiny_run: tuple[Path, Path]) -> None:
    run = read_run(tiny_run[0])
    pareto = run.pareto.sort_values("edap")
    iso = run.row_design(run.pareto.index.get_loc(pareto.index[0]), ISO)
    short_by = {ISO: 3.0, f"design {pareto.iloc[1]['design']}": 2.5,
                f"design {pareto.iloc[2]['design']}": 0.0}

    def measure(designs: list) -> pd.DataFrame:
        """Crossbar accuracy that trails the baseline by `short_by`, with a little noise."""
        rows = [{"design": d.name, "design_id": d.design_id, "seed": s,
                 "crossbar_pct": 50.0 + s - short_by[d.name] + 0.1 * (s % 2)}
                for d in designs for s in range(3)]
        return pd.DataFrame(rows)

    base = pd.DataFrame([{"design": BASELINE, "seed": s, "crossbar_pct": 50.0 + s}
                         for s in range(3)])
    everyone: list = []
    options = {"alpha": 0.05, "walk_budget": 3}
    trainings, lines, tests = walk_up(run, iso, pd.concat([base, measure([iso])]), measure,
                                      options, "VGG16", everyone)
    assert [d.name for d in everyone] == list(short_by)[1:]
    assert tests[ISO].falls_short and not tests[list(short_by)[2]].falls_short
    assert "the lowest-EDAP design up the front that holds is " + list(short_by)[2] in lines[0]
    assert set(trainings["design"]) == {BASELINE, *short_by}


def test_a_run_can_end_with_verification(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    """`python -m xpert_evo verify.roles=[...]`: a bad role is refused before the search; good
    options reach verify with the run's directory (here it stops at the run's tiny budget, which
    no shipped preset trains at)."""
    bad = ["algorithm.pop_size=12", "algorithm.n_gen=2", "verify.roles=[knee,elbow]"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=bad)
    with pytest.raises(ConfigError, match=r"verify.roles: \['elbow'\] are not roles"):
        run_app(cfg, tmp_path / "bad", bad)
    assert not (tmp_path / "bad" / "pareto.csv").exists()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["verify.roles=[knee]"])
    with pytest.raises(VerifyError, match=TINY_FIDELITY):
        after_search(tiny_run[0], OmegaConf.to_container(cfg, resolve=True))

"""Typed configs beyond the search app: the train, source and verify commands refuse unknown keys
and mistyped values in one line (exit code 2), and presets composed alone (`group_node`, also inside
a running Hydra app) go through their schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import OmegaConf

from xpert_evo.config import ConfigError, conf_dir
from xpert_evo.hardware import load_hardware_config
from xpert_evo.schema import compose, group_node
from xpert_evo.schema.apps import VerifyDataNode
from xpert_evo.schema.nodes import CrossbarNode, SpaceNode, TrainNode, VerifyOptions

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("module", "override", "expected"), [
    ("xpert_evo.train", "train.epoch=3",
     "error: unknown config key train.epoch; allowed keys there are ['epochs',"),
    ("xpert_evo.train", "train.epochs=many",
     "error: config key train.epochs: Value 'many' of type 'str' could not be converted to "
     "Integer"),
    ("xpert_evo.train", "genome.chanels=[64]", "error: unknown config key genome.chanels"),
    ("xpert_evo.train", "hardware.xbar_row=128", "error: unknown config key hardware.xbar_row"),
    ("xpert_evo.source", "source.n_shard=2",
     "error: unknown config key source.n_shard; allowed keys there are ['dir', 'shard', "
     "'n_shards',"),
    ("xpert_evo.source", "source.noise_seeds=[a]", "error: config key source.noise_seeds"),
    ("xpert_evo.verify", "verify.seed=3",
     "error: unknown config key verify.seed; allowed keys there are ['roles', 'seeds', "
     "'baseline', 'alpha', 'walk_budget', 'n_jobs'] (fix the spelling or remove it)"),
    ("xpert_evo.verify", "verify.rounds=1", "error: unknown config key verify.rounds"),
    ("xpert_evo.verify", "verify.alpha=low",
     "error: config key verify.alpha: Value 'low' of type 'str' could not be converted to Float"),
    ("xpert_evo.verify", "data.dataset=cifar10",
     "error: unknown config key data.dataset; allowed keys there are ['root', 'download']"),
    ("xpert_evo.verify", "crossbar.calib_image=16",
     "error: unknown config key crossbar.calib_image; allowed keys there are ['per_channel',"),
    ("xpert_evo", "accuracy.budget.initial=12",
     "error: cannot set accuracy.budget.initial: a node above the key is null"),
], ids=["train-unknown", "train-type", "genome", "hardware", "source-unknown", "source-type",
        "verify-unknown", "verify-search-key", "verify-type", "verify-data", "verify-crossbar",
        "search-null-parent"])
def test_commands_refuse_bad_keys_in_one_line(tmp_path: Path, module: str, override: str,
                                              expected: str) -> None:
    proc = subprocess.run([sys.executable, "-m", module, override, f"hydra.run.dir={tmp_path}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr


def test_train_and_source_configs_are_typed() -> None:
    train = compose("train")
    assert OmegaConf.get_type(train, "train") is TrainNode
    assert train.hardware.flash_delay_ns == load_hardware_config().flash_delay_ns
    source = compose("source", ["source.n_shards=2", "source.noise_seeds=[3]"])
    assert source.source.n_shards == 2 and list(source.source.noise_seeds) == [3]
    with pytest.raises(ConfigError, match=r"unknown config key data\.datset"):
        compose("source", ["data.datset=cifar10"])


def test_verify_config_and_every_group_are_typed() -> None:
    verify = compose("verify", ["run_dir=runs/x", "verify.seeds=2"])
    assert OmegaConf.get_type(verify, "verify") is VerifyOptions and verify.verify.seeds == 2
    assert OmegaConf.get_type(verify, "data") is VerifyDataNode
    assert OmegaConf.get_type(verify, "crossbar") is CrossbarNode
    alone = compose(None, ["+crossbar@crossbar=default", "+space@space=default"])
    assert OmegaConf.get_type(alone, "crossbar") is CrossbarNode
    assert OmegaConf.get_type(alone, "space") is SpaceNode


def test_a_preset_composed_alone_goes_through_its_schema(tmp_path: Path) -> None:
    conf = shutil.copytree(conf_dir(), tmp_path / "conf")
    good = group_node("training", "low_fidelity", "train", conf)
    assert good == group_node("training", "low_fidelity", "train")
    assert good["epochs"] == 5 and good["compute_dtype"] == "float32"
    text = (conf / "training" / "low_fidelity.yaml").read_text()
    (conf / "training" / "typo.yaml").write_text(text.replace("epochs: 5", "epoch: 5"))
    with pytest.raises(ConfigError, match=r"unknown config key train\.epoch; allowed .* \(in "
                                          r"training/typo\)"):
        group_node("training", "typo", "train", conf)
    (conf / "training" / "wrong.yaml").write_text(text.replace("epochs: 5", "epochs: five"))
    with pytest.raises(ConfigError, match=r"train\.epochs: Value 'five'"):
        group_node("training", "wrong", "train", conf)
    with pytest.raises(ConfigError, match="no such config"):
        group_node("training", "nope", "train", conf)


def test_compose_inside_a_running_hydra_keeps_it() -> None:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        assert group_node("crossbar", "default")["calib_images"] == 256
        cfg = hydra_compose(config_name="config", overrides=["seed=3"])  # the outer Hydra
    assert cfg.seed == 3


def test_a_hardware_file_of_ones_own(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    text = (conf_dir("hardware") / "rram_128x128_2bit.yaml").read_text()
    mine.write_text(text.replace("xbar_rows: 128", "xbar_rows: 256"))
    hw = load_hardware_config(mine)
    assert hw.xbar_rows == 256
    assert hw.flash_delay_ns == load_hardware_config("rram_128x128_2bit").flash_delay_ns

"""Fitted constants: the values a preset reads through ``${xpert_evo.fitted:<key>}`` are the ones
its artifact file holds, each fit says where it comes from, and an artifact written with
`write_fit` reads back (`xpert_evo.schema.fitted`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from xpert_evo.config import ConfigError
from xpert_evo.hardware import load_hardware_config
from xpert_evo.schema import compose, group_node
from xpert_evo.schema.fitted import Fit, artifact_path, fitted_constants, read_artifact, write_fit

FOUR_PARAMETER = {"a_in", "k_in", "a_adc", "k_adc"}
PER_LAYER = {"form", "alpha", "beta", "k_in", "k_adc", "gamma"}


@pytest.mark.parametrize(("preset", "keys"), [
    ("crossbar_cifar10", FOUR_PARAMETER), ("crossbar_cifar10_offset", FOUR_PARAMETER),
    ("crossbar_tinyimagenet", FOUR_PARAMETER), ("layer_cifar10_offset", PER_LAYER),
    ("layer_tinyimagenet_offset", PER_LAYER)])
def test_penalty_constants_are_the_artifacts(preset: str, keys: set[str]) -> None:
    node = group_node("penalty", preset)
    constants = fitted_constants(node["fitted"])
    assert keys | {"heldout_rmse_pp", "bound_pp"} <= set(constants)
    for key, value in constants.items():
        assert node[key] == value, key
    assert node["bound_pp"] > node["heldout_rmse_pp"]  # the bound sits above the held-out error
    for fit in read_artifact(node["fitted"]).fits.values():  # each value says where it is from
        assert fit.fitted_by.startswith("python bench/") and fit.commit and fit.data
        assert len(fit.date) == 10
    app = compose("config", [f"penalty={preset}"])
    assert OmegaConf.to_container(app.penalty, resolve=True) == node


@pytest.mark.parametrize("preset", ["layer_cifar10_offset", "layer_tinyimagenet_offset"])
def test_a_layer_penalty_is_fitted_on_its_own_data_sets_table(preset: str) -> None:
    node = group_node("penalty", preset)
    table = read_artifact(node["fitted"]).fits["precision_table"].data
    assert f"precision_tables/{node['dataset']}-" in table


def test_hardware_constants_are_the_artifacts() -> None:
    for name in ("xpert_rram_32nm", "rram_128x128_2bit"):
        hw = load_hardware_config(name)
        constants = fitted_constants(hw.fitted)
        assert len(constants) == 33
        assert all(getattr(hw, key) == value for key, value in constants.items())


def test_artifact_round_trip(tmp_path: Path) -> None:
    artifact = tmp_path / "fit.yaml"
    first = Fit(fitted_by="python fit.py", commit="abc1234", date="2026-01-02",
                data="rows.csv", constants={"a": 1.5, "n": 3})
    write_fit(artifact, "first", first)
    write_fit(artifact, "second", Fit(fitted_by="python check.py", commit="def5678",
                                      date="2026-01-03", data="held.csv",
                                      constants={"n": 4, "bound": 2}))
    assert fitted_constants(artifact) == {"a": 1.5, "n": 4, "bound": 2}  # n moved to "second"
    fits = read_artifact(artifact).fits
    assert fits["first"].constants == {"a": 1.5} and fits["first"].date == "2026-01-02"
    assert artifact_path(artifact) == artifact
    conf = tmp_path / "conf" / "penalty"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text(
        f"defaults:\n  - base_penalty\n  - _self_\nfitted: {artifact}\n"
        "model: precision_penalty_v1\na_in: ${xpert_evo.fitted:a}\nn_fit: ${xpert_evo.fitted:n}\n"
        "heldout_rows: ${xpert_evo.fitted:bound}\n")
    node = group_node("penalty", "mine", config_dir=conf.parent)
    assert (node["a_in"], node["n_fit"], node["heldout_rows"]) == (1.5, 4, 2)
    write_fit(artifact, "first", Fit(fitted_by="python fit.py", commit="0000000",
                                     date="2026-02-01", data="rows.csv",
                                     constants={"a": 2.5}))  # a refit is read again
    assert group_node("penalty", "mine", config_dir=conf.parent)["a_in"] == 2.5
    (conf / "bad.yaml").write_text(f"fitted: {artifact}\na_in: ${{xpert_evo.fitted:nope}}\n")
    with pytest.raises(ConfigError, match=r"penalty\.a_in: .*no constant nope"):
        group_node("penalty", "bad", config_dir=conf.parent)

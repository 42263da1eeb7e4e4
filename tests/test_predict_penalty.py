"""Which precision-loss model `python -m xpert_evo.predict` uses: per data set the default run's
(conf/config.yaml's ``penalty``; Tiny ImageNet's experiment override), or ``--penalty NAME``;
its loss, stated error and (per-layer model) std are the chosen model's."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sources import OPTIONS, write_source

from xpert_evo.accuracy.predictor import source_accuracy
from xpert_evo.crossbar.layer_penalty import LayerPenalty
from xpert_evo.predict import (
    CONF,
    TRANSFER,
    default_penalty,
    penalty_for,
    penalty_names,
    read_designs,
)
from xpert_evo.predict import main as predict_main
from xpert_evo.schema import group_node
from xpert_evo.search.setup import build_penalty
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone

VGG = "-".join(map(str, VGG16_CHANNELS))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic measured CIFAR-10 source of 12 networks (the predictor's fit is quick)."""
    root = tmp_path_factory.mktemp("src")
    write_source(root, OPTIONS[np.random.default_rng(5).integers(0, 4, size=(12, 13))])
    return root


@pytest.fixture(scope="module")
def designs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three CIFAR-10 designs at high, low and mixed per-layer precision."""
    path = tmp_path_factory.mktemp("designs") / "designs.csv"
    pd.DataFrame({"channels": [VGG, "64", "-".join(["128", "256"] * 6 + ["512"])],
                  "input_bits": ["8", "3", "-".join(["2", "5", "8"] * 4 + ["4"])],
                  "adc_bits": ["6", "4", "-".join(["3", "7"] * 6 + ["8"])]}).to_csv(path,
                                                                                   index=False)
    return path


def predict(designs: Path, source: Path, out: Path, *args: str) -> pd.DataFrame:
    """The command's output table for `designs` (exit code 0 asserted)."""
    assert predict_main([str(designs), "--out", str(out), "--source-dir", str(source),
                         *args]) == 0
    return pd.read_csv(out)


def test_each_data_set_gets_the_penalty_its_default_run_selects() -> None:
    assert default_penalty("cifar10") == "layer_cifar10_offset"  # conf/config.yaml
    assert default_penalty("tinyimagenet") == "layer_tinyimagenet_offset"  # its experiment's
    for dataset, name in (("cifar10", "layer_cifar10_offset"),
                          ("tinyimagenet", "layer_tinyimagenet_offset")):
        assert penalty_for(dataset) == build_penalty(group_node("penalty", name))
    # the other CIFAR-10 offset fit, which sorts first, is not picked by its file name
    assert isinstance(penalty_for("cifar10"), LayerPenalty)


def test_the_file_name_order_does_not_pick_and_the_old_rule_is_the_fallback(
        tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    # the per-layer offset fit now sorts first among CIFAR-10's offset fits
    (conf / "penalty" / "layer_cifar10_offset.yaml").rename(conf / "penalty" / "a_offset.yaml")
    assert penalty_for("cifar10", conf) == penalty_for("cifar10")
    # no experiment for Tiny ImageNet: the default config is CIFAR-10's, so the data set's own
    # fit is found by the earlier rule
    (conf / "experiment" / "tinyimagenet.yaml").unlink()
    assert default_penalty("tinyimagenet", conf) is None
    assert penalty_for("tinyimagenet", conf) == penalty_for("tinyimagenet")


def test_penalty_option_changes_the_loss_to_the_chosen_models(tmp_path: Path, source: Path,
                                                              designs: Path) -> None:
    default = predict(designs, source, tmp_path / "default.csv")
    layer = predict(designs, source, tmp_path / "layer.csv", "--penalty", "layer_cifar10_offset")
    four = predict(designs, source, tmp_path / "four.csv", "--penalty", "crossbar_cifar10_offset")
    pd.testing.assert_frame_equal(default, layer)  # the per-layer model is the default
    assert "precision_loss_std_pp" not in four.columns  # the four-parameter model states no std
    np.testing.assert_allclose(four["clean_accuracy_pct"], layer["clean_accuracy_pct"])
    assert not np.allclose(four["precision_loss_pp"], layer["precision_loss_pp"])

    genomes = read_designs(pd.read_csv(designs, dtype=str), 13)
    channels = genomes.channels
    clean = source_accuracy("cifar10", Backbone(), None, str(source),
                            transfer_from=TRANSFER.get("cifar10")).predictor.predict(channels)[0]
    model = penalty_for("cifar10")
    assert isinstance(model, LayerPenalty)
    np.testing.assert_allclose(layer["precision_loss_pp"], model.predict(genomes, clean))
    np.testing.assert_allclose(layer["precision_loss_std_pp"], model.std(genomes, clean))
    assert (layer["precision_loss_error_pp"] == model.heldout_rmse_pp).all()
    np.testing.assert_allclose(layer["accuracy_pct"],
                               layer["clean_accuracy_pct"] - layer["precision_loss_pp"])
    offset = build_penalty(group_node("penalty", "crossbar_cifar10_offset"))
    assert offset is not None and not isinstance(offset, LayerPenalty)
    np.testing.assert_allclose(four["precision_loss_pp"], offset.predict(genomes, clean))
    assert (four["precision_loss_error_pp"] == offset.heldout_rmse_pp).all()

    none = predict(designs, source, tmp_path / "none.csv", "--penalty", "none")
    assert (none["precision_loss_pp"] == 0).all() and none["precision_loss_error_pp"].isna().all()
    np.testing.assert_allclose(none["accuracy_pct"], none["clean_accuracy_pct"])


def test_a_bad_penalty_name_exits_2_naming_the_presets(tmp_path: Path, capsys,
                                                       designs: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        predict_main([str(designs), "--out", str(tmp_path / "o.csv"), "--penalty", "nope"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert "argument --penalty: invalid choice: 'nope'" in err
    assert all(re.search(rf"\b{name}\b", err) for name in penalty_names())
    assert not (tmp_path / "o.csv").exists()


def test_a_penalty_of_another_data_set_is_refused(tmp_path: Path, capsys, source: Path,
                                                  designs: Path) -> None:
    out = tmp_path / "o.csv"
    status = predict_main([str(designs), "--out", str(out), "--source-dir", str(source),
                           "--penalty", "crossbar_tinyimagenet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert ("penalty crossbar_tinyimagenet holds for dataset tinyimagenet, not cifar10; for "
            "cifar10 use one of: crossbar_cifar10, crossbar_cifar10_offset, "
            "layer_cifar10_offset, none") in err
    assert not out.exists()

"""The per-layer precision penalty (`xpert_evo.crossbar.layer_penalty`) and its selection by
cross-validation grouped by network (`xpert_evo.crossbar.penalty_selection`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from synthetic_precision import SENSITIVE_ADC, SENSITIVE_INPUT, L, synthetic_table

from xpert_evo.config import ConfigError
from xpert_evo.crossbar.layer_penalty import LayerPenalty, table_arrays
from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.crossbar.penalty_selection import (
    grouped_folds,
    select,
    simplest_within_one_se,
    std_model,
)
from xpert_evo.schema import compose
from xpert_evo.search.setup import build_penalty
from xpert_evo.space.genome import Genomes


def one_layer_lowered(model: LayerPenalty, input_bits: int, adc_bits: int) -> np.ndarray:
    """Each layer's term (L,) when it alone is lowered to these bits (the others at 8)."""
    p, b = np.full((L, L), 8), np.full((L, L), 8)
    p[np.arange(L), np.arange(L)], b[np.arange(L), np.arange(L)] = input_bits, adc_bits
    return model.layer_terms(p, b, np.full((L, L), 128))[np.arange(L), np.arange(L)]


def test_the_per_layer_form_recovers_a_known_layer_sensitivity() -> None:
    x = table_arrays(synthetic_table())
    fitted = LayerPenalty.fit(x["input_bits"], x["adc_bits"], x["channels"],
                              x["float_accuracy_pct"], x["loss_pp"], "per_layer", 10.0)
    adc = one_layer_lowered(fitted, 8, 3)
    inputs = one_layer_lowered(fitted, 2, 8)
    assert int(np.argmax(adc)) == SENSITIVE_ADC and int(np.argmax(inputs)) == SENSITIVE_INPUT
    assert adc[SENSITIVE_ADC] > 3 * np.median(adc) and inputs[SENSITIVE_INPUT] > 3 * np.median(
        inputs)
    assert fitted.k_in == pytest.approx(1.2, rel=0.15) and fitted.k_adc == pytest.approx(1.0,
                                                                                         rel=0.15)
    assert fitted.rmse_pp < 1.0  # noise 0.5 pp
    # the uniform form cannot tell layers apart: every layer's term is the same
    uniform = LayerPenalty.fit(x["input_bits"], x["adc_bits"], x["channels"],
                               x["float_accuracy_pct"], x["loss_pp"], "uniform", 10.0)
    assert np.ptp(one_layer_lowered(uniform, 8, 3)) == pytest.approx(0.0, abs=1e-12)


def test_the_fit_recovers_how_the_layer_terms_combine() -> None:
    """A truth whose layer terms combine super-additively (gamma 1.8, as several lowered layers
    lose more than the sum of their losses): the fit finds gamma, and at gamma = 1 (terms that
    add up) the same form fits worse."""
    table = synthetic_table(noise_pp=0.3)
    x = table_arrays(table)
    true = replace(LayerPenalty("position", (-4.5, 0.5), (-4.0, -0.5), 1.0, 1.2, 10.0, 40.0),
                   gamma=1.8)
    loss = true.predict_arrays(x["input_bits"], x["adc_bits"], x["channels"],
                               x["float_accuracy_pct"])
    noisy = loss + np.random.default_rng(2).normal(0.0, 0.3, len(loss))
    fitted = LayerPenalty.fit(x["input_bits"], x["adc_bits"], x["channels"],
                              x["float_accuracy_pct"], noisy, "position", 10.0)
    assert fitted.gamma == pytest.approx(1.8, rel=0.1)
    assert fitted.rmse_pp < 0.4  # noise 0.3 pp
    additive = LayerPenalty.from_config({**fitted.constants(), "gamma": 1.0, "chance_pct": 10.0})
    error = additive.predict_arrays(x["input_bits"], x["adc_bits"], x["channels"],
                                    x["float_accuracy_pct"]) - noisy
    assert np.sqrt(np.mean(error**2)) > 2 * fitted.rmse_pp


def test_group_kfold_never_puts_one_network_in_both_folds() -> None:
    net_ids = np.repeat(np.arange(11), 3)[np.random.default_rng(0).permutation(33)]
    folds = grouped_folds(net_ids, 5)
    held = np.concatenate([test for _, test in folds])
    assert sorted(held.tolist()) == list(range(33))  # every row held out exactly once
    for fit, test in folds:
        assert not set(net_ids[fit]) & set(net_ids[test])
    assert len(grouped_folds(net_ids[net_ids < 3], 5)) == 3  # one fold per network when few
    with pytest.raises(ValueError, match=">= 2 networks"):
        grouped_folds(np.zeros(4), 5)


def test_selection_prefers_the_per_layer_form_and_beats_the_baselines() -> None:
    table = synthetic_table()
    sel = select(table, 10.0)
    summary = sel.summary.set_index("candidate")
    assert sel.best == "layer_per_layer"
    assert {"zero", "precision_penalty_v1"} <= set(summary.index)
    assert summary.loc["layer_per_layer", "rmse_pp"] < 0.5 * summary.loc[
        "precision_penalty_v1", "rmse_pp"] < summary.loc["zero", "rmse_pp"]
    assert (summary["fitted_rmse_pp"] <= summary["rmse_pp"] + 1e-9).all()
    assert summary["within_std"].between(0, 1).all()
    # the four-parameter baseline is the uniform form at gamma = 1 (a sum over layers instead of
    # a mean), so the uniform form with gamma fitted fits at least as well
    assert summary.loc["layer_uniform", "fitted_rmse_pp"] <= summary.loc[
        "precision_penalty_v1", "fitted_rmse_pp"] + 1e-3
    for k, (_, test) in enumerate(grouped_folds(table["net_id"])):
        assert (sel.table.loc[test, "fold"] == k).all()
    model = sel.model
    assert model.heldout_rows == len(table) and model.heldout_rmse_pp == pytest.approx(
        summary.loc["layer_per_layer", "rmse_pp"])
    genomes = Genomes(np.full((5, L), 128), np.full((5, L), 8), np.ones((5, L)),
                      np.full((5, L), 4), np.full((5, L), 6))
    loss, std = model.predict(genomes, 50.0), model.std(genomes, 50.0)
    assert loss.shape == std.shape == (5,) and (loss > 0).all() and (std >= 0).all()


def test_the_simplest_form_within_one_standard_error_is_chosen() -> None:
    forms = ["layer_uniform", "layer_position", "layer_shape", "layer_per_layer"]
    summary = pd.DataFrame({"rmse_pp": [2.3, 1.87, 1.95, 1.86], "rmse_se_pp": [0.2, 0.2, 0.2, 0.2]},
                           index=forms)
    assert simplest_within_one_se(summary, forms) == "layer_position"
    summary.loc["layer_per_layer", "rmse_se_pp"] = 0.005  # a tight best: only it is within
    assert simplest_within_one_se(summary, forms) == "layer_per_layer"
    # a form the summary lacks (not scored) is skipped
    assert simplest_within_one_se(summary.drop("layer_position"), forms) == "layer_per_layer"


def test_std_model_recovers_the_model_error_net_of_measurement_noise() -> None:
    rng = np.random.default_rng(1)
    predicted = rng.uniform(0, 20, 4000)
    noise = np.full(4000, 0.5)
    residual = rng.normal(0.0, np.sqrt(1.0 + (0.1 * predicted) ** 2 + noise**2))
    floor, slope = std_model(predicted, residual, noise)
    assert floor == pytest.approx(1.0, abs=0.15) and slope == pytest.approx(0.1, abs=0.015)


def test_config_errors_name_the_key_and_shapes_are_checked() -> None:
    node = {"model": "layer_penalty_v1", "form": "position", "alpha": [-7.0, 0.5],
            "beta": [-6.0], "k_in": 1.0, "k_adc": 1.0, "chance_pct": 10.0, "max_loss_pp": 40.0}
    with pytest.raises(ConfigError, match=r"penalty\.beta has 1 values; form position has 2"):
        build_penalty(node)
    with pytest.raises(ConfigError, match=r"needs penalty\.k_in"):
        build_penalty({**node, "k_in": None})
    with pytest.raises(ConfigError, match=r"penalty\.form='wide' is not one of"):
        build_penalty({**node, "form": "wide", "beta": [-6.0, 0.0]})
    model = build_penalty({**node, "beta": [-6.0, 0.0]})
    assert isinstance(model, LayerPenalty)
    with pytest.raises(ValueError, match="one shape"):
        model.predict_arrays(np.full((2, L), 8), np.full((2, L - 1), 8), np.full((2, L), 64))


def test_the_layer_preset_is_the_default_and_the_four_parameter_one_selectable() -> None:
    assert isinstance(build_penalty(compose("config", ["penalty=crossbar_cifar10_offset"]).penalty),
                      PrecisionPenalty)
    cfg = compose("config")
    model = build_penalty(cfg.penalty)
    assert isinstance(model, LayerPenalty) and cfg.penalty.weight_encoding == "offset"
    assert cfg.constraints.precision_loss_pp == cfg.penalty.bound_pp
    genomes = Genomes(np.full((3, L), 128), np.full((3, L), 8), np.ones((3, L)),
                      np.array([[8] * L, [5] * L, [3] * L]), np.array([[8] * L, [5] * L, [2] * L]))
    loss = model.predict(genomes)
    assert loss.shape == (3,) and (np.diff(loss) >= 0).all()  # fewer bits never lose less
    assert (model.std(genomes) >= 0).all()

"""Choosing the precision penalty's form by cross-validation grouped by network, and its std.

Candidates (`CANDIDATES`): ``zero`` (predicts no loss), ``precision_penalty_v1`` (the existing
four-parameter `PrecisionPenalty`, refitted in every fold) and every `LayerPenalty` form
(`layer_penalty.FORMS`, named ``layer_<form>``). Every row of the precision-loss table
(`xpert_evo.crossbar.loss_table`) is predicted by each candidate fitted on the rows of the other
networks only (scikit-learn `GroupKFold` over ``net_id``: no network is both fitted on and
predicted). Among the layer forms, the simplest (fewest coefficients, `FORMS` order) whose held-out
RMSE lies within one standard error of the lowest is chosen (the one-standard-error rule of
Hastie, Tibshirani & Friedman, The Elements of Statistical Learning, 2nd ed., sec. 7.10: forms
that cross-validate alike are told apart by noise, and the simpler one carries to new designs
better), and reported against the two baselines. The standard error is the std of the per-fold
RMSEs over sqrt(folds).

The std of a prediction (`std_model`): a held-out residual r = predicted - measured carries the
model's error and the row's measurement noise sigma (``loss_std_pp``), so E[r^2] = s(pred)^2 +
sigma^2 with s(pred)^2 = s0^2 + (c pred)^2. s0^2 and c^2 are fitted by least squares with
non-negative coefficients (scikit-learn `LinearRegression(positive=True)`) on r^2 - sigma^2.
`coverage` checks it honestly: each fold's std model is fitted on the other folds' residuals,
and a row is covered when |r| <= sqrt(s(pred)^2 + sigma^2) (68 % expected of Gaussian errors).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GroupKFold

from xpert_evo.crossbar.layer_penalty import FORMS, XBAR_ROWS, LayerPenalty, table_arrays
from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.space.genome import Genomes

FOLDS = 5
"""Most folds of the grouped cross-validation (one per network when fewer networks)."""

Predictor = Callable[[pd.DataFrame, pd.DataFrame, float], np.ndarray]
"""(fit rows, rows to predict, chance %) -> predicted loss in pp of the rows to predict."""


def predict_zero(fit: pd.DataFrame, rows: pd.DataFrame, chance_pct: float) -> np.ndarray:
    """The baseline that predicts no loss."""
    return np.zeros(len(rows))


def predict_uniform4(fit: pd.DataFrame, rows: pd.DataFrame, chance_pct: float) -> np.ndarray:
    """`PrecisionPenalty` (4 parameters, every layer alike) fitted on the losses of `fit`, at each
    row's float accuracy."""
    table = fit.assign(nonideal_accuracy_pct=fit["float_accuracy_pct"] - fit["loss_pp"],
                       reference_accuracy_pct=fit["float_accuracy_pct"],
                       accuracy_pct=fit["float_accuracy_pct"])
    penalty = PrecisionPenalty.fit(table, num_classes=round(100.0 / chance_pct))
    x = table_arrays(rows)
    ones = np.ones_like(x["input_bits"])
    genomes = Genomes(x["channels"], ones * 8, ones, x["adc_bits"], x["input_bits"])
    return penalty.predict(genomes, x["float_accuracy_pct"])


def layer_model(form: str, fit: pd.DataFrame, chance_pct: float,
                xbar_rows: int = XBAR_ROWS) -> LayerPenalty:
    """`LayerPenalty` of `form` fitted on table rows `fit`."""
    x = table_arrays(fit)
    return LayerPenalty.fit(x["input_bits"], x["adc_bits"], x["channels"],
                            x["float_accuracy_pct"], x["loss_pp"], form, chance_pct, xbar_rows)


def predict_rows(model: LayerPenalty, rows: pd.DataFrame) -> np.ndarray:
    """`model`'s loss (pp) of table rows, each at its float accuracy."""
    x = table_arrays(rows)
    return model.predict_arrays(x["input_bits"], x["adc_bits"], x["channels"],
                                x["float_accuracy_pct"])


def layer_predictor(form: str) -> Predictor:
    """The `Predictor` of a `LayerPenalty` form."""
    def predict(fit: pd.DataFrame, rows: pd.DataFrame, chance_pct: float) -> np.ndarray:
        return predict_rows(layer_model(form, fit, chance_pct), rows)

    return predict


CANDIDATES: dict[str, Predictor] = {
    "zero": predict_zero,
    "precision_penalty_v1": predict_uniform4,
    **{f"layer_{form}": layer_predictor(form) for form in FORMS},
}
"""Candidate name -> its `Predictor`; ``layer_<form>`` are the per-layer model's forms."""


def grouped_folds(net_ids: Sequence[int] | np.ndarray,
                  n_splits: int = FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) index pairs of `GroupKFold` over networks: every network's rows
    are held out in exactly one fold and never fitted on there.

    Raises:
        ValueError: fewer than 2 networks.
    """
    groups = np.asarray(net_ids)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"grouped cross-validation needs >= 2 networks, got {n_groups}")
    folds = GroupKFold(n_splits=min(n_splits, n_groups))
    return list(folds.split(np.zeros(len(groups)), groups=groups))


def heldout_predictions(table: pd.DataFrame, predictor: Predictor, chance_pct: float,
                        folds: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Each row's loss (pp) predicted by `predictor` fitted on the other folds' rows."""
    out = np.full(len(table), np.nan)
    for fit, test in folds:
        out[test] = predictor(table.iloc[fit], table.iloc[test], chance_pct)
    return out


def std_model(predicted: np.ndarray, residual: np.ndarray,
              noise: np.ndarray) -> tuple[float, float]:
    """(s0 in pp, c): the model std sqrt(s0^2 + (c pred)^2) fitted on held-out residuals (pp)
    net of their measurement noise (pp), see the module docstring."""
    design = np.column_stack([np.ones(len(predicted)), np.asarray(predicted) ** 2])
    target = np.asarray(residual) ** 2 - np.asarray(noise) ** 2
    reg = LinearRegression(fit_intercept=False, positive=True).fit(design, target)
    floor2, slope2 = reg.coef_
    return math.sqrt(floor2), math.sqrt(slope2)


def coverage(predicted: np.ndarray, measured: np.ndarray, noise: np.ndarray,
             folds: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray]:
    """(fraction of rows whose held-out error lies within its std, the std (pp) of every row):
    each fold's std model fitted on the other folds' residuals (see the module docstring)."""
    residual = predicted - measured
    std = np.full(len(predicted), np.nan)
    for fit, test in folds:
        floor, slope = std_model(predicted[fit], residual[fit], noise[fit])
        std[test] = np.sqrt(floor**2 + (slope * predicted[test]) ** 2 + noise[test] ** 2)
    return float(np.mean(np.abs(residual) <= std)), std


def fold_rmse_se(predicted: np.ndarray, measured: np.ndarray,
                 folds: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Standard error (pp) of the cross-validated RMSE: the std of the per-fold RMSEs over
    sqrt(folds); 0 with a single fold."""
    per_fold = [scores(predicted[test], measured[test])["rmse_pp"] for _, test in folds]
    return float(np.std(per_fold, ddof=1) / math.sqrt(len(per_fold))) if len(folds) > 1 else 0.0


def simplest_within_one_se(summary: pd.DataFrame, forms: Sequence[str]) -> str:
    """The first of `forms` (simplest first) whose ``rmse_pp`` is within one ``rmse_se_pp`` of
    the lowest among them (`summary` indexed by candidate)."""
    scored = summary.loc[[f for f in forms if f in summary.index]]
    best = scored["rmse_pp"].idxmin()
    bar = scored.loc[best, "rmse_pp"] + scored.loc[best, "rmse_se_pp"]
    return str(next(f for f in scored.index if scored.loc[f, "rmse_pp"] <= bar))


def scores(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """RMSE and MAE (pp) of predicted against measured losses, and the rows."""
    diff = np.asarray(predicted) - np.asarray(measured)
    return {"rows": len(diff), "rmse_pp": float(np.sqrt(np.mean(diff**2))),
            "mae_pp": float(np.mean(np.abs(diff)))}


@dataclass
class Selection:
    """The outcome of `select`.

    Attributes:
        table: the rows, with ``pred_<candidate>`` (held-out prediction, pp) and ``fold``.
        summary: per candidate: held-out rmse_pp, its standard error over the folds
            (``rmse_se_pp``) and mae_pp, fitted rmse (``fitted_rmse_pp``,
            the fit on every row scored on them), coverage (``within_std``), rows, and a
            ``note`` why a candidate could not be scored (too few rows for its parameters).
        best: the chosen layer form's candidate name (the simplest within one standard error of
            the lowest held-out RMSE).
        model: the chosen form fitted on every row, with its std model and held-out error.
        fits: every layer form that could be fitted, fitted on every row (by candidate name).
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    best: str
    model: LayerPenalty
    fits: dict[str, LayerPenalty]


def select(table: pd.DataFrame, chance_pct: float, candidates: Sequence[str] | None = None,
           n_splits: int = FOLDS, xbar_rows: int = XBAR_ROWS) -> Selection:
    """Score every candidate by cross-validation grouped by network; fit the best layer form on
    every row with its std model (see the module docstring).

    Raises:
        ValueError: fewer than 2 networks, no layer form among `candidates` (or none that
            could be fitted), or an unknown one.
    """
    names = list(candidates or CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    layer_forms = [n for n in names if n.startswith("layer_")]
    if unknown or not layer_forms:
        raise ValueError(f"candidates {names}: need >= 1 of {list(CANDIDATES)} named layer_*")
    table = table.reset_index(drop=True)
    folds = grouped_folds(table["net_id"], n_splits)
    measured = table["loss_pp"].to_numpy(np.float64)
    noise = table["loss_std_pp"].to_numpy(np.float64)
    out = table.assign(fold=-1)
    for k, (_, test) in enumerate(folds):
        out.loc[test, "fold"] = k
    rows = []
    fits: dict[str, LayerPenalty] = {}
    for name in names:
        try:
            predicted = heldout_predictions(table, CANDIDATES[name], chance_pct, folds)
            if name in layer_forms:
                fits[name] = layer_model(name.removeprefix("layer_"), table, chance_pct,
                                         xbar_rows)
                fitted = predict_rows(fits[name], table)
            else:
                fitted = CANDIDATES[name](table, table, chance_pct)
        except ValueError as err:  # too few rows for its parameters in some fold
            rows.append({"candidate": name, "rows": len(table), "note": str(err)})
            continue
        out[f"pred_{name}"] = predicted
        rows.append({"candidate": name, **scores(predicted, measured),
                     "rmse_se_pp": fold_rmse_se(predicted, measured, folds),
                     "fitted_rmse_pp": scores(fitted, measured)["rmse_pp"],
                     "within_std": coverage(predicted, measured, noise, folds)[0], "note": ""})
    summary = pd.DataFrame(rows)
    layer = summary[summary["candidate"].isin(layer_forms) & summary["rmse_pp"].notna()]
    if layer.empty:
        raise ValueError(f"no layer form could be fitted: {summary['note'].tolist()}")
    best = simplest_within_one_se(layer.set_index("candidate"),
                                  [f"layer_{form}" for form in FORMS])
    predicted = out[f"pred_{best}"].to_numpy()
    floor, slope = std_model(predicted, predicted - measured, noise)
    model = replace(fits[best], std_floor_pp=floor, std_slope=slope,
                    heldout_rmse_pp=scores(predicted, measured)["rmse_pp"],
                    heldout_rows=len(table))
    return Selection(out, summary, best, model, fits)

"""Per-layer precision penalty: each conv layer's own loss term from its input and ADC bits.

The model (``layer_penalty_v1``), for conv layer l of a network of L layers::

    n_l  = exp(x_l . alpha - k_in (p_l - 8)) + exp(x_l . beta - k_adc (b_l - 8))
    frac = 1 - exp(-(sum_l n_l)^gamma)                           (0 = lossless, 1 = chance)
    loss_pp = (clean_pct - chance_pct) x frac,   std_pp = sqrt(s0^2 + (c loss_pp)^2)

p_l, b_l are the layer's input and ADC bits, k_in, k_adc >= 0 their decay per bit (shared by all
layers), gamma > 0 how the layers' terms combine, and x_l the layer's features under the model's
*form* (`FORMS`): ``uniform`` (1: every layer alike, `PrecisionPenalty`'s form with a sum instead
of a mean), ``position`` (1, t_l = l / (L - 1)), ``shape`` (1, t_l, log2 of the layer's searched
channels / 64, log2 of its row groups: crossbars of `xbar_rows` rows its fan-in C_in K^2 spans) and
``per_layer`` (1 and one indicator per layer, shrunk toward the common level by a ridge term). n_l
is layer l's loss term: the noise it adds, in units where the loss saturates at chance. The loss
saturates at the network's distance from chance, as in `PrecisionPenalty`. With gamma = 1 the terms
add up; the CIFAR-10 table measures gamma > 1: one layer lowered alone loses little, several
lowered together lose more than the sum of their losses (docs/results/precision_loss_cifar10_*.md),
so gamma is fitted (1 in configs written before it existed). Channels are the searched ones (the
genome's), so one fit holds for the source fidelity it was measured at.

The std of a prediction, s0 (pp) and c (per pp of predicted loss), is fitted on the residuals of
predictions for networks a fit did not see, net of their measurement noise
(`xpert_evo.crossbar.penalty_selection`): it is the model's own error against the true loss; a
comparison with a measured loss adds that measurement's noise.

`predict` and `std` take (N, L) arrays (or `Genomes`) and compute in numpy without a loop over
designs. `fit` uses scipy's `least_squares` on the per-row error in pp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from xpert_evo.config import ConfigError
from xpert_evo.crossbar.loss_table import per_layer
from xpert_evo.space.genome import Genomes

MODEL = "layer_penalty_v1"
"""``penalty.model`` of this model."""

REFERENCE_BITS = 8.0
"""Bits at which exp(x . alpha), exp(x . beta) are a layer's noise levels (as in
`PrecisionPenalty`)."""

FORMS: dict[str, float] = {"uniform": 0.0, "position": 0.0, "shape": 0.0, "per_layer": 1.0}
"""Model forms -> ridge weight (pp^2 per unit^2 of a coefficient other than the intercept). The
per-layer form has L + 1 coefficients per term for a few hundred rows; its ridge, one pp^2 per
unit (a layer e times noisier than the common level costs as much as 1 pp of error on one row),
keeps a layer that no sweep lowered at the common level. It is set, not tuned: the grouped
cross-validation decides between the forms."""

IN_CHANNELS, KERNEL, XBAR_ROWS = 3, 3, 64
"""The backbone's image channels and kernel (`Backbone`) and the default hardware's crossbar rows
(conf/hardware/xpert_rram_32nm.yaml ``xbar_rows``): a layer's row groups are
ceil(C_in K^2 / xbar_rows)."""


def layer_features(form: str, channels: np.ndarray, xbar_rows: int = XBAR_ROWS) -> np.ndarray:
    """Features x (N, L, F) of every layer of (N, L) searched `channels` under `form`.

    Raises:
        ConfigError: an unknown form.
    """
    c = np.atleast_2d(np.asarray(channels, np.float64))
    n, n_layers = c.shape
    one = np.ones((n, n_layers, 1))
    position = np.broadcast_to(np.linspace(0.0, 1.0, n_layers), (n, n_layers))[..., None]
    if form == "uniform":
        return one
    if form == "position":
        return np.concatenate([one, position], axis=-1)
    if form == "shape":
        fan_in = np.concatenate([np.full((n, 1), IN_CHANNELS), c[:, :-1]], axis=1) * KERNEL**2
        groups = np.ceil(fan_in / xbar_rows)
        return np.concatenate([one, position, np.log2(c / 64.0)[..., None],
                               np.log2(groups)[..., None]], axis=-1)
    if form == "per_layer":
        return np.concatenate([one, np.broadcast_to(np.eye(n_layers), (n, n_layers, n_layers))],
                              axis=-1)
    raise ConfigError(f"penalty.form={form!r} is not one of {sorted(FORMS)}")


@dataclass(frozen=True)
class LayerPenalty:
    """The fitted per-layer model (equations in the module docstring).

    Attributes:
        form: one of `FORMS`.
        alpha, beta: coefficients of the input-bit and the ADC-bit term per feature of `form`.
        k_in, k_adc: decay per input bit and per ADC bit.
        chance_pct: accuracy of a random guess, %.
        max_loss_pp: mean (float - chance) of the fitted rows, pp: the saturation `predict` uses
            without a clean accuracy.
        gamma: the exponent on the summed layer terms (1: they add up).
        std_floor_pp, std_slope: the std model (s0 in pp, c per pp of predicted loss).
        xbar_rows: crossbar rows (the ``shape`` form's row groups).
        n_fit, rmse_pp: rows fitted and their fit error, pp.
        heldout_rmse_pp, heldout_rows: error (pp) on rows of networks the fit did not see
            (grouped cross-validation) and their number; None and 0 when not measured.
    """

    form: str
    alpha: tuple[float, ...]
    beta: tuple[float, ...]
    k_in: float
    k_adc: float
    chance_pct: float
    max_loss_pp: float
    gamma: float = 1.0
    std_floor_pp: float = 0.0
    std_slope: float = 0.0
    xbar_rows: int = XBAR_ROWS
    n_fit: int = 0
    rmse_pp: float = math.nan
    heldout_rmse_pp: float | None = None
    heldout_rows: int = 0

    def layer_terms(self, input_bits: np.ndarray, adc_bits: np.ndarray,
                    channels: np.ndarray) -> np.ndarray:
        """Every layer's loss term n_l (N, L) for (N, L) bits and searched channels."""
        p = np.atleast_2d(np.asarray(input_bits, np.float64))
        b = np.atleast_2d(np.asarray(adc_bits, np.float64))
        x = layer_features(self.form, channels, self.xbar_rows)
        if x.shape[:2] != p.shape or p.shape != b.shape:
            raise ValueError(f"input_bits {p.shape}, adc_bits {b.shape} and channels "
                             f"{x.shape[:2]} must have one shape (designs, conv layers)")
        if x.shape[-1] != len(self.alpha):
            raise ValueError(f"form {self.form} with {len(self.alpha)} coefficients cannot "
                             f"predict {x.shape[1]}-layer networks")
        return (np.exp(x @ np.asarray(self.alpha) - self.k_in * (p - REFERENCE_BITS))
                + np.exp(x @ np.asarray(self.beta) - self.k_adc * (b - REFERENCE_BITS)))

    def predict_arrays(self, input_bits: np.ndarray, adc_bits: np.ndarray, channels: np.ndarray,
                       clean_accuracy_pct: np.ndarray | float | None = None) -> np.ndarray:
        """Loss in pp (N,) of (N, L) bits and searched channels at the clean accuracies (%;
        None: `max_loss_pp` above chance)."""
        total = self.layer_terms(input_bits, adc_bits, channels).sum(axis=1)
        frac = 1.0 - np.exp(-(total**self.gamma))
        if clean_accuracy_pct is None:
            return frac * self.max_loss_pp
        span = np.clip(np.asarray(clean_accuracy_pct, np.float64) - self.chance_pct, 0, None)
        return frac * span

    def predict(self, genomes: Genomes,
                clean_accuracy_pct: np.ndarray | float | None = None) -> np.ndarray:
        """Accuracy loss in pp (N,) of each genome on the crossbar (as `PrecisionPenalty`)."""
        return self.predict_arrays(genomes.input_bits, genomes.adc_bits, genomes.channels,
                                   clean_accuracy_pct)

    def std_of(self, predicted_pp: np.ndarray) -> np.ndarray:
        """The model's std in pp of predicted losses `predicted_pp`."""
        loss = np.asarray(predicted_pp, np.float64)
        return np.sqrt(self.std_floor_pp**2 + (self.std_slope * loss) ** 2)

    def std(self, genomes: Genomes,
            clean_accuracy_pct: np.ndarray | float | None = None) -> np.ndarray:
        """The std in pp (N,) of each genome's predicted loss."""
        return self.std_of(self.predict(genomes, clean_accuracy_pct))

    @classmethod
    def fit(cls, input_bits: np.ndarray, adc_bits: np.ndarray, channels: np.ndarray,
            float_accuracy_pct: np.ndarray, loss_pp: np.ndarray, form: str,
            chance_pct: float, xbar_rows: int = XBAR_ROWS) -> LayerPenalty:
        """Fit `form` on measured losses (pp, (N,)) of (N, L) settings, each at its float
        accuracy (%) on the same images.

        Raises:
            ValueError: fewer rows than parameters.
        """
        x = layer_features(form, channels, xbar_rows)
        n_coef = x.shape[-1]
        if len(loss_pp) < 2 * n_coef + 3 and FORMS[form] == 0.0:
            raise ValueError(f"form {form}: {len(loss_pp)} rows for {2 * n_coef + 3} parameters")
        span = np.clip(np.asarray(float_accuracy_pct, np.float64) - chance_pct, 1e-6, None)
        measured = np.asarray(loss_pp, np.float64)
        ridge = math.sqrt(FORMS[form])

        def model(theta: np.ndarray) -> LayerPenalty:
            return cls(form, tuple(map(float, theta[:n_coef])),
                       tuple(map(float, theta[n_coef:2 * n_coef])),
                       math.exp(theta[-3]), math.exp(theta[-2]), chance_pct, float(span.mean()),
                       gamma=math.exp(theta[-1]), xbar_rows=xbar_rows)

        def residual(theta: np.ndarray) -> np.ndarray:
            predicted = model(theta).predict_arrays(input_bits, adc_bits, channels, span
                                                    + chance_pct)
            shrunk = np.concatenate([theta[1:n_coef], theta[n_coef + 1:2 * n_coef]]) * ridge
            return np.concatenate([predicted - measured, shrunk])

        # start: PrecisionPenalty's (-4 at 8 bits per layer on average, shared by L layers;
        # ln 4 per bit, the decay of pure quantisation noise power; terms that add up)
        start = np.zeros(2 * n_coef + 3)
        start[[0, n_coef]] = -4.0 - math.log(x.shape[1])
        start[-3:-1] = math.log(math.log(4.0))
        low = np.r_[np.full(2 * n_coef, -30.0), -5.0, -5.0, -1.5]
        high = np.r_[np.full(2 * n_coef, 10.0), 2.0, 2.0, 1.5]
        sol = least_squares(residual, start, bounds=(low, high), x_scale="jac")
        fitted = model(sol.x)
        error = fitted.predict_arrays(input_bits, adc_bits, channels, span + chance_pct) - measured
        return cls(**{**asdict(fitted), "n_fit": len(measured),
                      "rmse_pp": float(np.sqrt(np.mean(error**2)))})

    def constants(self) -> dict[str, Any]:
        """The fitted values as artifact constants (`bench/common.save_fit`): plain floats and
        lists, 5 significant digits."""
        def round5(v: float) -> float:
            return float(f"{v:.5g}")

        return {"form": self.form, "alpha": [round5(v) for v in self.alpha],
                "beta": [round5(v) for v in self.beta], "k_in": round5(self.k_in),
                "k_adc": round5(self.k_adc), "gamma": round5(self.gamma),
                "max_loss_pp": round5(self.max_loss_pp),
                "std_floor_pp": round5(self.std_floor_pp), "std_slope": round5(self.std_slope),
                "xbar_rows": int(self.xbar_rows), "n_fit": int(self.n_fit),
                "rmse_pp": round5(self.rmse_pp),
                "heldout_rmse_pp": (None if self.heldout_rmse_pp is None
                                    else round5(self.heldout_rmse_pp)),
                "heldout_rows": int(self.heldout_rows)}

    @classmethod
    def from_config(cls, node: Mapping[str, Any]) -> LayerPenalty:
        """From a ``penalty:`` node with ``model: layer_penalty_v1`` (conf/penalty/layer_*.yaml).

        Raises:
            ConfigError: a key the model needs is missing, or the coefficients do not fit the
                form (the key named).
        """
        need = ("form", "alpha", "beta", "k_in", "k_adc", "chance_pct", "max_loss_pp")
        missing = [k for k in need if node.get(k) is None]
        if missing:
            raise ConfigError(f"penalty.model={MODEL} needs penalty.{missing[0]} (see "
                              "conf/penalty/layer_cifar10_offset.yaml)")
        n_layers = len(node["alpha"]) - 1  # only the per-layer form's size depends on it
        n_coef = layer_features(str(node["form"]), np.full((1, max(n_layers, 1)), 64)).shape[-1]
        for key in ("alpha", "beta"):
            if len(node[key]) != n_coef:
                raise ConfigError(f"penalty.{key} has {len(node[key])} values; form "
                                  f"{node['form']} has {n_coef}")
        optional = {k: node[k] for k in ("gamma", "std_floor_pp", "std_slope", "xbar_rows",
                                         "n_fit", "rmse_pp", "heldout_rmse_pp", "heldout_rows")
                    if node.get(k) is not None}
        return cls(str(node["form"]), tuple(float(v) for v in node["alpha"]),
                   tuple(float(v) for v in node["beta"]), float(node["k_in"]),
                   float(node["k_adc"]), float(node["chance_pct"]), float(node["max_loss_pp"]),
                   **optional)


def table_arrays(table: pd.DataFrame, options: Mapping[str, Sequence[int]] | None = None,
                 n_layers: int | None = None) -> dict[str, np.ndarray]:
    """The model's inputs of precision-table rows (`xpert_evo.crossbar.loss_table.COLUMNS`):
    input_bits, adc_bits, channels (N, L), float_accuracy_pct, loss_pp, loss_std_pp, net_id (N,).
    With `options` (the searched values per gene), bits outside them are refused.

    Raises:
        ConfigError: a malformed or out-of-range per-layer column (named).
    """
    opts = dict(options or {})
    return {
        "input_bits": per_layer(table, "input_bits", opts.get("input_bits"), n_layers),
        "adc_bits": per_layer(table, "adc_bits", opts.get("adc_bits"), n_layers),
        "channels": per_layer(table, "channels", opts.get("channels"), n_layers),
        **{c: table[c].to_numpy(np.float64) for c in ("float_accuracy_pct", "loss_pp",
                                                       "loss_std_pp")},
        "net_id": table["net_id"].to_numpy(np.int64),
    }

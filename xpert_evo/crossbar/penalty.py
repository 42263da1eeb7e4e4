"""Precision penalty: accuracy lost on the crossbar as a function of per-layer input and ADC bits.

Fitted on hardware-aware evaluations (`crossbar.sweep_uniform` of a few trained networks, rows of
the ground-truth table). The model is monotone by construction and has four parameters::

    n_l  = exp(a_in - k_in (p_l - 8)) + exp(a_adc - k_adc (b_l - 8))     (per conv layer l)
    N    = mean over the L conv layers of n_l
    frac = 1 - exp(-N)                                                   (0 = lossless, 1 = chance)
    loss_pp = (clean_pct - chance_pct) x frac

p_l is the layer's input bits, b_l its ADC bits, k_in, k_adc >= 0 the per-bit decay rates
(quantisation noise power falls as 4^-bits, i.e. k = ln 4 = 1.39 for pure noise) and
a_in, a_adc the log noise levels at 8 bits. Each layer adds its own term, so lowering one
layer's precision costs about 1/L of lowering all of them (the mean over layers is an
assumption: uniform sweeps cannot tell layers apart). The loss saturates at the network's
distance from chance, where the crossbar output is noise.

Usage by the accuracy estimator: `acc_pct = clean_pred - penalty.predict(genomes, clean_pred)`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from xpert_evo.space.genome import Genomes

REFERENCE_BITS = 8.0
"""Bits at which exp(a_in), exp(a_adc) are the per-layer noise levels."""


def _bits_matrix(values: Sequence[str] | pd.Series) -> np.ndarray:
    """Dash-joined per-layer bits ("4-4-...") -> (N, L) float array."""
    return np.array([[float(v) for v in str(s).split("-")] for s in values], dtype=np.float64)


@dataclass(frozen=True)
class PrecisionPenalty:
    """The fitted model (see the module docstring for the equations).

    Attributes:
        a_in, k_in: log noise level at 8 input bits and its decay per input bit.
        a_adc, k_adc: the same for the ADC bits.
        chance_pct: accuracy of a random guess, % (100 / classes).
        max_loss_pp: mean (clean - chance) of the fitted networks, pp; the saturation used when
            `predict` is given no clean accuracy.
        n_fit: evaluations fitted; rmse_pp: fit error in accuracy points.
        heldout_rmse_pp, heldout_rows: error (pp) of the predicted loss on crossbar evaluations
            of networks the fit did not see, and their number
            (`bench/calibrate/precision_loss.py`); None and 0 when not measured.
    """

    a_in: float
    k_in: float
    a_adc: float
    k_adc: float
    chance_pct: float
    max_loss_pp: float
    n_fit: int = 0
    rmse_pp: float = math.nan
    heldout_rmse_pp: float | None = None
    heldout_rows: int = 0

    def loss_fraction(self, input_bits: np.ndarray, adc_bits: np.ndarray) -> np.ndarray:
        """Fraction (N,) of the distance to chance lost, for (N, L) per-layer bits."""
        p = np.atleast_2d(np.asarray(input_bits, dtype=np.float64))
        b = np.atleast_2d(np.asarray(adc_bits, dtype=np.float64))
        noise = (np.exp(self.a_in - self.k_in * (p - REFERENCE_BITS))
                 + np.exp(self.a_adc - self.k_adc * (b - REFERENCE_BITS)))
        return 1.0 - np.exp(-noise.mean(axis=1))

    def predict(
        self, genomes: Genomes, clean_accuracy_pct: np.ndarray | float | None = None
    ) -> np.ndarray:
        """Accuracy loss in percentage points (N,) of each genome on the crossbar.

        Args:
            genomes: designs; their `input_bits` and `adc_bits` (per conv layer) are used.
            clean_accuracy_pct: predicted clean accuracy per genome, % (scalar or (N,)); the
                loss saturates at clean - chance. None: at the fitted `max_loss_pp`.
        """
        frac = self.loss_fraction(genomes.input_bits, genomes.adc_bits)
        if clean_accuracy_pct is None:
            scale = self.max_loss_pp
        else:
            scale = np.clip(np.asarray(clean_accuracy_pct, np.float64) - self.chance_pct, 0, None)
        return frac * scale

    @classmethod
    def fit(cls, table: pd.DataFrame, num_classes: int | None = None) -> PrecisionPenalty:
        """Fit on crossbar evaluations (ground-truth rows with a non-ideal accuracy).

        Args:
            table: rows with `input_bits`, `adc_bits` (dash-joined per layer),
                `nonideal_accuracy_pct` and `reference_accuracy_pct` (float accuracy on the
                same images; `accuracy_pct` where missing); rows without a non-ideal accuracy
                are ignored.
            num_classes: classes of the data set (default: the table's `num_classes`).

        Raises:
            ValueError: fewer than 4 usable rows, or rows of several data sets.
        """
        rows = table[table["nonideal_accuracy_pct"].notna()]
        if len(rows) < 4:
            raise ValueError(f"need >= 4 crossbar evaluations to fit 4 parameters, got {len(rows)}")
        if num_classes is None:
            classes = pd.unique(rows["num_classes"].dropna())
            if len(classes) != 1:
                raise ValueError(f"rows span num_classes {list(classes)}; fit one data set")
            num_classes = int(classes[0])
        chance = 100.0 / num_classes
        ref = rows["reference_accuracy_pct"].fillna(rows["accuracy_pct"]).to_numpy(np.float64)
        span = np.clip(ref - chance, 1e-6, None)
        measured = (ref - rows["nonideal_accuracy_pct"].to_numpy(np.float64)) / span
        p, b = _bits_matrix(rows["input_bits"]), _bits_matrix(rows["adc_bits"])

        def model(theta: np.ndarray) -> PrecisionPenalty:
            return cls(theta[0], math.exp(theta[1]), theta[2], math.exp(theta[3]), chance,
                       float(span.mean()))

        def residual(theta: np.ndarray) -> np.ndarray:
            return (model(theta).loss_fraction(p, b) - measured) * span

        start = np.array([-4.0, math.log(math.log(4.0)), -4.0, math.log(math.log(4.0))])
        sol = least_squares(residual, start, bounds=([-30, -5, -30, -5], [10, 2, 10, 2]))
        fitted = model(sol.x)
        rmse = float(np.sqrt(np.mean(residual(sol.x) ** 2)))
        return cls(**{**asdict(fitted), "n_fit": len(rows), "rmse_pp": rmse})

    def save(self, path: str | Path) -> Path:
        """Write the parameters as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"model": "precision_penalty_v1", **asdict(self)}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> PrecisionPenalty:
        """Read parameters written by `save`."""
        values = json.loads(Path(path).read_text())
        if values.pop("model", None) != "precision_penalty_v1":
            raise ValueError(f"{path} is not a precision_penalty_v1 JSON file")
        return cls(**values)


def plot_penalty(
    penalty: PrecisionPenalty,
    table: pd.DataFrame,
    path: str | Path,
    title: str = "",
) -> Path:
    """Measured and fitted accuracy loss vs ADC bits, one colour per input precision (PNG).

    `table` holds uniform sweep rows (as for `PrecisionPenalty.fit`); points are measurements
    (mean over networks), lines the model at the mean clean-minus-chance of those rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table[table["nonideal_accuracy_pct"].notna()].copy()
    ref = rows["reference_accuracy_pct"].fillna(rows["accuracy_pct"])
    rows["loss_pp"] = ref - rows["nonideal_accuracy_pct"]
    rows["p"] = _bits_matrix(rows["input_bits"]).mean(axis=1)
    rows["b"] = _bits_matrix(rows["adc_bits"]).mean(axis=1)
    span = float((ref - penalty.chance_pct).mean())
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    cmap = plt.get_cmap("viridis")
    inputs = sorted(rows["p"].unique())
    grid = np.linspace(rows["b"].min(), rows["b"].max(), 100)
    for i, p in enumerate(inputs):
        colour = cmap(i / max(1, len(inputs) - 1))
        sub = rows[rows["p"] == p].groupby("b")["loss_pp"].mean()
        ax.plot(sub.index, sub.values, "o", color=colour, ms=4)
        frac = penalty.loss_fraction(np.full((len(grid), 1), p), grid[:, None])
        ax.plot(grid, frac * span, "-", color=colour, lw=1.2, label=f"{p:g}-bit inputs")
    ax.set_xlabel("ADC bits (all layers)")
    ax.set_ylabel("accuracy loss on the crossbar (pp)")
    ax.set_title(title or f"precision penalty fit (rmse {penalty.rmse_pp:.1f} pp)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""A synthetic precision-loss table whose truth is a known per-layer model (tests of
`xpert_evo.crossbar.layer_penalty`, its selection and the bench that reports it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xpert_evo.crossbar.layer_penalty import LayerPenalty
from xpert_evo.crossbar.loss_table import PrecisionPlan

L = 13
SENSITIVE_ADC, SENSITIVE_INPUT = 0, 12
"""The layers the synthetic truth makes sensitive: the first one to its ADC bits, the last one
to its input bits."""


def truth() -> LayerPenalty:
    """A per-layer model in which two layers lose far more than the others."""
    alpha, beta = np.zeros(L + 1), np.zeros(L + 1)
    alpha[0], beta[0] = -7.0, -6.0
    beta[1 + SENSITIVE_ADC] = alpha[1 + SENSITIVE_INPUT] = 2.0
    return LayerPenalty("per_layer", tuple(alpha), tuple(beta), 1.2, 1.0, 10.0, 40.0)


def synthetic_table(n_networks: int = 24, settings: int = 8, noise_pp: float = 0.5,
                    seed: int = 0) -> pd.DataFrame:
    """Precision-table rows of the `truth` model at the plan's settings, with Gaussian
    measurement noise of `noise_pp`."""
    rng = np.random.default_rng(seed)
    plan = PrecisionPlan(settings, (2, 3, 4, 5, 6, 7, 8), (3, 4, 5, 6, 7, 8))
    rows = []
    for net in range(n_networks):
        channels = rng.choice([64, 128, 256, 512], L)
        acc = 50.0 + rng.normal(0.0, 2.0)
        for s in plan.settings(net):
            loss = truth().predict_arrays(s.input_bits[None], s.adc_bits[None], channels[None],
                                          acc)[0]
            rows.append({"net_id": net, "role": "fit" if net % 2 == 0 else "heldout",
                         "channels": "-".join(map(str, channels)),
                         "input_bits": "-".join(map(str, s.input_bits)),
                         "adc_bits": "-".join(map(str, s.adc_bits)), "float_accuracy_pct": acc,
                         "loss_pp": loss + rng.normal(0.0, noise_pp), "loss_std_pp": noise_pp,
                         "setting_kind": s.kind, "swept_layer": s.swept_layer})
    return pd.DataFrame(rows)

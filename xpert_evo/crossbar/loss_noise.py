"""How far a measured crossbar loss is from the truth: the test images' noise of a precision
table and the training seed's spread between replicate tables.

`noise_summary` sums up the paired bootstrap std each table row carries
(`xpert_evo.crossbar.loss_table.paired_loss`). A replicate table (``python -m
xpert_evo.precision precision.train_seed=k``) holds the same settings on the same networks
retrained at another seed; `replicate_pairs` matches its rows to the table's and `seed_spread`
splits their difference into the images' noise and the training seed's part: the error floor of
any model that predicts the loss from the design alone.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xpert_evo.crossbar.loss_table import KEY


def noise_summary(table: pd.DataFrame) -> dict[str, float]:
    """The paired measurement noise of a table: root-mean-square and median of `loss_std_pp`,
    pp (nan without rows)."""
    std = table["loss_std_pp"].to_numpy(np.float64)
    if not len(std):
        return {"rms_std_pp": math.nan, "median_std_pp": math.nan}
    return {"rms_std_pp": float(np.sqrt(np.mean(std**2))), "median_std_pp": float(np.median(std))}


def replicate_pairs(table: pd.DataFrame, replicate: pd.DataFrame) -> pd.DataFrame:
    """The replicate table's rows (networks retrained at another seed) beside the same
    measurement (`KEY`: network, bits, images, mapping) of `table`: one row per pair, the
    table's columns with the replicate's ``loss_pp``, ``loss_std_pp`` and
    ``float_accuracy_pct`` suffixed ``_replicate``."""
    keys = list(KEY)
    return table.merge(replicate[[*keys, "loss_pp", "loss_std_pp", "float_accuracy_pct"]],
                       on=keys, suffixes=("", "_replicate"))


def seed_spread(pairs: pd.DataFrame) -> dict[str, float]:
    """How far two trainings of one design lose apart on the crossbar (`replicate_pairs`), pp.

    ``diff_rms_pp``: root-mean-square of the loss difference between the two trainings;
    ``loss_std_pp``: the std of one training's loss about the design's mean, diff_rms / sqrt 2,
    the error of a model that knew each design's mean loss exactly (none predicting from the
    design alone can do better on average); ``image_noise_pp``: the part the images explain (RMS
    of the rows' bootstrap std, the two rows taken as independent); ``training_std_pp``: the
    rest, sqrt(loss_std^2 - image_noise^2) (0 when negative); ``float_diff_rms_pp``: RMS of the
    two trainings' float accuracy difference. nan without pairs.
    """
    diff = (pairs["loss_pp_replicate"] - pairs["loss_pp"]).to_numpy(np.float64)
    if not len(diff):
        return {k: math.nan for k in ("diff_rms_pp", "loss_std_pp", "image_noise_pp",
                                      "training_std_pp", "float_diff_rms_pp")} | {"pairs": 0}
    total = float(np.sqrt(np.mean(diff**2) / 2.0))
    image = float(np.sqrt(np.mean((pairs["loss_std_pp"]**2 + pairs["loss_std_pp_replicate"]**2)
                                  / 2.0)))
    floats = pairs["float_accuracy_pct_replicate"] - pairs["float_accuracy_pct"]
    return {"pairs": len(diff), "diff_rms_pp": float(np.sqrt(np.mean(diff**2))),
            "loss_std_pp": total, "image_noise_pp": image,
            "training_std_pp": math.sqrt(max(total**2 - image**2, 0.0)),
            "float_diff_rms_pp": float(np.sqrt(np.mean(floats**2)))}

"""Fit the CIFAR-10 precision penalty for NeuroSim's offset weight mapping, with its held-out error.

The shipped CIFAR-10 penalty (conf/penalty/crossbar_cifar10.yaml) was measured with the
differential mapping. With the offset mapping every ADC converts an unsigned partial sum that
carries the offset's large constant, so the same ADC bits lose far more accuracy
(docs/results/weight_encoding.md). This script fits `PrecisionPenalty` on that study's offset
evaluations (every setting but the lossless one; float and crossbar accuracy on the same test
images) and scores it by cross-validation grouped by network (scikit-learn `GroupKFold`, one
fold per network up to `FOLDS`): every held-out row is predicted by a fit that never saw its
network. It reports the fitted and the held-out RMSE apart, beside two references on the same
rows: predicting no loss, and the differential fit. `--write-config` writes the fit on all rows,
its held-out RMSE and its bound (the smallest whole pp above that) into the artifact
xpert_evo/fitted/penalty/crossbar_cifar10_offset.yaml (with OmegaConf, with this command, the
commit and the date), which conf/penalty/crossbar_cifar10_offset.yaml reads.

Run after `python bench/studies/weight_encoding.py`:
`python bench/calibrate/offset_penalty.py [--write-config]`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from xpert_evo.crossbar.penalty import PrecisionPenalty

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # precision_loss.py beside it
from common import REPO, RESULTS, bound_pp, load_conf, save_fit, write_stamped  # noqa: E402
from precision_loss import predicted_loss  # noqa: E402

STUDY = RESULTS / "weight_encoding.csv"
ARTIFACT = "penalty/crossbar_cifar10_offset.yaml"
"""The artifact of the fit (`xpert_evo.schema.fitted`) conf/penalty/crossbar_cifar10_offset.yaml
reads."""
FOLDS = 5
"""Most folds of the grouped cross-validation (fewer when fewer networks were measured)."""


def fit_rows() -> pd.DataFrame:
    """The study's offset evaluations in `PrecisionPenalty.fit`'s columns (lossless ADC rows,
    which carry no ADC bits, left out)."""
    study = pd.read_csv(STUDY)
    rows = study[(study["weight_encoding"] == "offset") & (study["setting"] != "lossless")]
    return rows.assign(nonideal_accuracy_pct=rows["accuracy_pct"],
                       reference_accuracy_pct=rows["float_accuracy_pct"],
                       num_classes=10).reset_index(drop=True)


def grouped_heldout(rows: pd.DataFrame) -> np.ndarray:
    """Each row's loss predicted by a fit on the other networks' rows (GroupKFold)."""
    groups = rows["checkpoint"].to_numpy()
    out = np.empty(len(rows))
    folds = GroupKFold(n_splits=min(FOLDS, len(set(groups))))
    for fit, test in folds.split(rows, groups=groups):
        penalty = PrecisionPenalty.fit(rows.iloc[fit], num_classes=10)
        out[test] = predicted_loss(penalty, rows.iloc[test])
    return out


def scores(name: str, evaluated_on: str, predicted: np.ndarray, measured: np.ndarray) -> dict:
    """RMSE and MAE (pp) of `predicted` against `measured`, and how many rows."""
    diff = predicted - measured
    return {"penalty": name, "evaluated_on": evaluated_on, "rows": len(diff),
            "rmse_pp": float(np.sqrt(np.mean(diff**2))), "mae_pp": float(np.mean(np.abs(diff))),
            "measured_loss_pp_mean": float(measured.mean())}


def main() -> None:
    """Fit, cross-validate, report; write the artifact with `--write-config`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-config", action="store_true")
    args = parser.parse_args()
    rows = fit_rows()
    networks = rows["checkpoint"].nunique()
    if networks < 2:
        raise SystemExit(f"{STUDY} holds {networks} network(s) with offset evaluations; the "
                         "grouped held-out error needs 2 or more: run "
                         "bench/studies/weight_encoding.py longer")
    measured = (rows["reference_accuracy_pct"] - rows["nonideal_accuracy_pct"]).to_numpy()
    fitted = PrecisionPenalty.fit(rows, num_classes=10)
    differential = PrecisionPenalty(**{k: v for k, v in load_conf("penalty", "crossbar_cifar10")
                                       .items() if k in PrecisionPenalty.__dataclass_fields__})
    table = pd.DataFrame([
        scores("offset fit", "fitted rows (all)", predicted_loss(fitted, rows), measured),
        scores("offset fit", f"held out ({min(FOLDS, networks)}-fold, grouped by network)",
               grouped_heldout(rows), measured),
        scores("differential fit (crossbar_cifar10.yaml)", "all rows",
               predicted_loss(differential, rows), measured),
        scores("none (predicts 0 pp)", "all rows", predicted_loss(None, rows), measured),
    ])
    heldout = float(table["rmse_pp"].iloc[1])
    bound = bound_pp(heldout)
    lines = [
        "", "# Precision penalty for the offset weight mapping (CIFAR-10)", "",
        f"{len(rows)} offset crossbar evaluations of {networks} networks "
        f"(docs/results/weight_encoding.csv; measured). Fitted parameters: a_in "
        f"{fitted.a_in:.3f}, k_in {fitted.k_in:.3f}, a_adc {fitted.a_adc:.3f}, k_adc "
        f"{fitted.k_adc:.3f}.", "",
        table.to_markdown(index=False, floatfmt=".2f"), "",
        f"Bound: the smallest whole pp above the held-out RMSE ({heldout:.2f} pp) is {bound} pp "
        "(`bound_pp`, the default `constraints.precision_loss_pp` with this penalty).", "",
    ]
    print(write_stamped(RESULTS / "offset_penalty.md", lines))
    if args.write_config:
        values = {**{k: round(float(v), 4) for k, v in asdict(fitted).items()
                     if k not in ("chance_pct", "n_fit", "heldout_rmse_pp", "heldout_rows")},
                  "n_fit": fitted.n_fit, "heldout_rmse_pp": round(heldout, 2),
                  "heldout_rows": len(rows), "bound_pp": bound}
        save_fit(ARTIFACT, "offset_evaluations", values, data=str(STUDY.relative_to(REPO)),
                 note="offset rows of the weight-encoding study (every setting but lossless); "
                      "held-out error from cross-validation grouped by network "
                      "(docs/results/offset_penalty.md)")


if __name__ == "__main__":
    main()

"""What `python -m xpert_evo.verify` writes into a run directory.

* ``verified.csv``: one row per verified design, predictions beside measured means and seed stds
  (`xpert_evo.training.verification.summarise`);
* ``verified_trainings.csv``: one row per training (design, seed);
* ``pareto.csv``: verified designs get ``accuracy_from`` = ``trained``, their accuracy column the
  measured counterpart of the objective (validation minus the measured crossbar loss, seed mean;
  ``_std`` its seed std), and the columns ``predicted_accuracy_pct`` and ``_std`` (the run's
  prediction, for every design), ``measured_val_pct``,
  ``measured_crossbar_pct``, ``measured_loss_pp`` and ``verified_seeds``;
* ``summary.md``: a "Verified designs (measured)" section, replaced on a rerun;
* ``run.json``: a ``verified`` block, and ``pareto.png/.pdf`` redrawn with the measured points
  (mean ± seed std) beside the predicted front.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xpert_evo.files import atomic_text, atomic_write
from xpert_evo.report.figures import plot_fronts
from xpert_evo.report.tables import RunTables, json_default, markdown_table
from xpert_evo.training.verification import BASELINE, PairedTest, SearchRunFiles

SECTION = "## Verified designs (measured)"
"""The heading of the section verify owns in ``summary.md``."""

PARETO_COLUMNS: dict[str, str] = {
    "measured_val_pct": "measured_val_pct", "measured_crossbar_pct": "measured_crossbar_pct",
    "measured_loss_pp": "measured_loss_pp", "verified_seeds": "seeds",
}
"""pareto.csv column <- verified.csv column, for verified designs."""


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return atomic_write(path, lambda fh: frame.to_csv(fh, index=False))


def headline(summary: pd.DataFrame, test: PairedTest, design: str, baseline_name: str) -> str:
    """The iso-accuracy claim in measured terms, with its paired test."""
    mine = summary.set_index("design").loc[design]
    base = summary.set_index("design").loc[BASELINE]
    ratio = base["edap"] / mine["edap"]

    def pct(row: pd.Series) -> str:
        std = row["measured_crossbar_pct_std"]
        return f"{row['measured_crossbar_pct']:.2f}" + ("" if np.isnan(std) else f" ± {std:.2f}")

    verdict = ("falls short of it beyond seed noise" if test.falls_short else
               "does not fall short of it beyond seed noise")
    spread = "" if np.isnan(test.std_diff_pp) else f" ± {test.std_diff_pp:.2f}"
    p = "no test with one seed" if np.isnan(test.p_value) else f"one-sided p = {test.p_value:.3f}"
    return (f"{design}: {ratio:.2f}x lower EDAP at {pct(mine)} % (measured crossbar accuracy, "
            f"{test.seeds} seeds) against {baseline_name}'s {pct(base)} % (measured, same seeds); "
            f"paired difference {test.mean_diff_pp:+.2f}{spread} pp, {p}: it {verdict}")


def update_pareto(run: SearchRunFiles, summary: pd.DataFrame) -> Path:
    """Write the measured figures of the verified front designs into the run's pareto.csv."""
    pareto = run.pareto.copy()
    acc = run.accuracy_column
    if "predicted_accuracy_pct" not in pareto:
        pareto["predicted_accuracy_pct"] = pareto[acc]
        pareto["predicted_accuracy_std"] = pareto[f"{acc}_std"]
    for column in PARETO_COLUMNS:
        if column not in pareto:
            pareto[column] = np.nan
    measured = summary[summary["design_id"] >= 0].set_index("design_id")
    rows = pareto["design"].isin(measured.index)
    ids = pareto.loc[rows, "design"]
    pareto.loc[rows, acc] = ids.map(measured["measured_net_pct"]).to_numpy()
    pareto.loc[rows, f"{acc}_std"] = ids.map(measured["measured_net_pct_std"]).to_numpy()
    pareto.loc[rows, "accuracy_from"] = "trained"
    pareto.loc[rows, "accuracy_measured"] = True
    for column, source in PARETO_COLUMNS.items():
        pareto.loc[rows, column] = ids.map(measured[source]).to_numpy()
    return _write_csv(pareto, run.run_dir / "pareto.csv")


def update_summary(run: SearchRunFiles, summary: pd.DataFrame, lines: Sequence[str],
                   fidelity_note: str) -> Path:
    """Replace (or add) the verified section of the run's summary.md."""
    path = run.run_dir / "summary.md"
    text = path.read_text() if path.is_file() else "# xpert_evo run summary\n"
    text = text.split(f"\n{SECTION}\n", 1)[0].rstrip("\n") + "\n"
    shown = summary[["design", "design_id", "edap", "predicted_net_pct", "predicted_std_pp",
                     "measured_net_pct", "measured_net_pct_std", "measured_val_pct",
                     "measured_crossbar_pct", "measured_crossbar_pct_std", "measured_loss_pp",
                     "predicted_loss_pp", "predicted_minus_measured_pp", "seeds"]]
    section = [
        "", SECTION, "",
        f"Trained stand-alone by `python -m xpert_evo.verify` at {fidelity_note}. "
        "`measured_net_pct` = validation accuracy minus the measured crossbar loss (float minus "
        "crossbar accuracy on the same test images): the measured counterpart of the predicted "
        "objective; `measured_crossbar_pct` is the accuracy of the design on the crossbar. Means "
        "over seeds, `_std` their seed std.", "",
        *[f"- {line}" for line in lines], "",
        markdown_table(shown), "",
    ]
    return atomic_write(path, lambda fh: fh.write((text + "\n".join(section)).encode()))


def update_meta(run: SearchRunFiles, summary: pd.DataFrame, lines: Sequence[str],
                fidelity_note: str) -> Path:
    """Record the verification in run.json (``verified``: budget, seeds, headlines and each
    design's predicted and measured figures), which `plot_fronts` draws."""
    columns = ["design", "design_id", "edap", "predicted_net_pct", "measured_net_pct",
               "measured_net_pct_std", "measured_crossbar_pct", "measured_crossbar_pct_std"]
    designs = summary[columns].astype(object).where(summary[columns].notna(), None)
    meta = {**run.meta, "verified": {
        "budget": fidelity_note, "seeds": int(summary["seeds"].max()),
        "headlines": list(lines), "designs": designs.to_dict("records")}}
    return atomic_text(run.run_dir / "run.json",
                       json.dumps(meta, indent=2, default=json_default) + "\n")


def write_verified(run: SearchRunFiles, summary: pd.DataFrame, seeds: pd.DataFrame,
                   lines: Sequence[str], fidelity_note: str) -> list[Path]:
    """Every file verify writes into the run directory (see the module docstring)."""
    paths = [_write_csv(summary, run.run_dir / "verified.csv"),
             _write_csv(seeds, run.run_dir / "verified_trainings.csv"),
             update_pareto(run, summary),
             update_summary(run, summary, lines, fidelity_note),
             update_meta(run, summary, lines, fidelity_note)]
    return paths + plot_fronts([RunTables.load(run.run_dir)], run.run_dir / "pareto.png")

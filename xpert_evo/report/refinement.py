"""The report of ``verify.rounds``: the predictor's error on verified front designs, before and
after each refit (``refinement.csv`` rows, `xpert_evo.search.front_rounds`), for ``run.json``
and a section of ``summary.md``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xpert_evo.report.tables import markdown_table

SECTION = "## Predictor refinement by verified trainings"
"""The heading of the section in ``summary.md``."""


def _errors(frame: pd.DataFrame) -> dict[str, float]:
    before = frame["error_before_pp"].to_numpy(dtype=float)
    after = frame["error_after_pp"].to_numpy(dtype=float)
    before, after = before[np.isfinite(before)], after[np.isfinite(after)]

    def rmse(e: np.ndarray) -> float:
        return float(np.sqrt(np.mean(e**2))) if len(e) else float("nan")

    return {"mean_error_before_pp": float(before.mean()) if len(before) else float("nan"),
            "rmse_before_pp": rmse(before),
            "mean_error_after_pp": float(after.mean()) if len(after) else float("nan"),
            "rmse_after_pp": rmse(after)}


def rounds_meta(verified: pd.DataFrame, rounds: int) -> dict[str, Any] | None:
    """Facts of the rounds for ``run.json`` (None when ``rounds`` is 0): the rounds, the designs
    verified, their trainings' seconds, and over all of them and per round the mean signed error
    (predicted minus measured clean validation %, pp: the winner's-curse bias) and the RMSE,
    before and after the refit that learned them."""
    if not rounds:
        return None
    frame = verified if len(verified) else pd.DataFrame(
        columns=["round", "error_before_pp", "error_after_pp", "train_s"])
    per_round = [{"round": int(r), "designs": int(len(part)),
                  "train_s": float(part["train_s"].sum()), **_errors(part)}
                 for r, part in frame.groupby("round")]
    return {"rounds": int(rounds), "designs": int(len(frame)),
            "train_s": float(frame["train_s"].sum()), **_errors(frame),
            "per_round": per_round}


def rounds_section(meta: Mapping[str, Any]) -> list[str]:
    """The summary.md section of the rounds (no lines without them)."""
    facts = meta.get("verify_rounds")
    if not facts:
        return []
    seeds = (meta.get("config", {}).get("verify") or {}).get("seeds")
    lines = [
        "", SECTION, "",
        f"`verify.rounds={facts['rounds']}`: after the search, each round trained front designs "
        f"the predictor had no measurement of ({facts['designs']} in all, {seeds} seeds each, "
        f"{facts['train_s']:.0f} s of training) at the source's budget, added them to the source "
        "as `front` rows, refitted the predictor and continued the search. Errors are predicted "
        "minus measured clean validation % (mean over seeds), in pp; a positive mean is the "
        "winner's-curse bias of designs picked on their predictions. Every design: "
        "`refinement.csv`.",
    ]
    if meta.get("front_source"):
        path = Path(meta["front_source"])
        lines += ["", f"The trainings are in `{path}`; a later run learns from them with "
                  f"`accuracy.source_dir={path.parent.parent}`."]
    table = [{"round": r["round"], "designs": r["designs"],
              "mean error before": r["mean_error_before_pp"],
              "RMSE before": r["rmse_before_pp"], "mean error after": r["mean_error_after_pp"],
              "RMSE after": r["rmse_after_pp"], "training s": r["train_s"]}
             for r in facts["per_round"]]
    table.append({"round": "all", "designs": facts["designs"],
                  "mean error before": facts["mean_error_before_pp"],
                  "RMSE before": facts["rmse_before_pp"],
                  "mean error after": facts["mean_error_after_pp"],
                  "RMSE after": facts["rmse_after_pp"], "training s": facts["train_s"]})
    return [*lines, "", markdown_table(pd.DataFrame(table).round(2)), ""]

"""Refinement by verified trainings (``verify.rounds=K``): NSGANetV2's archive loop, with
stand-alone trainings at the measured source's training budget.

After the search, each round:

1. picks ``verify.per_round`` feasible designs whose networks the predictor has no measurement
   of (its source's networks, online refinement's and earlier rounds' are left out), front by
   front and spread along EDAP (`xpert_evo.search.rounds.candidates`, the choice of online
   refinement);
2. trains each at ``verify.seeds`` seeds at the source's budget (a `FrontMeasure`:
   `xpert_evo.verify.front_measure` in the app, resumable through the ground-truth table) and
   adds the trainings to the source as ``front`` rows
   (`xpert_evo.training.verification.FrontSource`), so that later runs learn from them;
3. adds each network's mean validation accuracy over its seeds to the predictor's source and
   refits the predictor;
4. re-predicts the archive and the population, and continues the same pymoo run for one more of
   each configured budget (`SearchRun.extend`).

Each verified design's clean prediction before the refit, its measured mean and the refitted
prediction go to ``refinement.csv``: the error before is the winner's-curse bias of a front
picked on predictions, the error after shows how far one refit corrects it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xpert_evo.files import atomic_write
from xpert_evo.search.callbacks import repredict_search
from xpert_evo.search.loop import SearchResult, SearchRun
from xpert_evo.search.rounds import candidates, fmt_stats
from xpert_evo.space.genome import Genomes

if TYPE_CHECKING:  # the training package imports torch: only where a round trains
    from xpert_evo.training.verification import FrontSource

log = logging.getLogger(__name__)

FrontMeasure = Callable[[Genomes, Sequence[str], Sequence[int]], pd.DataFrame]
"""Trains designs (genomes, their names) at each seed, design by design, at the source's budget;
returns one ground-truth row per training (``channels``, ``seed``, ``val_accuracy_pct``, and
``wall_s`` in s when known)."""

REFINEMENT_FILE = "refinement.csv"
COLUMNS: tuple[str, ...] = (
    "round", "design", "channels", "input_bits", "adc_bits", "seeds", "predicted_before_pct",
    "predicted_std_pp", "measured_pct", "measured_std_pp", "predicted_after_pct",
    "error_before_pp", "error_after_pp", "train_s",
)
"""Columns of ``refinement.csv``, one row per verified design: the round (1..K), the design
(archive index, the run tables' ``design``), its genes, the seeds trained, the predictor's clean
validation % before the refit with its std, the measured mean and seed std, the prediction after
the refit, the errors (predicted minus measured, pp) before and after, the training seconds."""


@dataclass(frozen=True)
class VerifyRounds:
    """The ``verify:`` keys of the loop.

    Attributes:
        rounds: rounds after the search (0: none).
        per_round: designs verified per round.
        seeds: training seeds per design (0 .. seeds-1).
    """

    rounds: int
    per_round: int
    seeds: int


def _joined(rows: np.ndarray) -> list[str]:
    return ["-".join(map(str, row)) for row in np.asarray(rows).tolist()]


def seed_means(rows: pd.DataFrame, channels: np.ndarray) -> pd.DataFrame:
    """Per network of ``channels`` (N, L): mean and seed std of the validation % of its trainings
    in ``rows`` (matched by the ``channels`` text), the number of trainings, their seconds."""
    keys = _joined(channels)
    rows = rows.assign(channels=rows["channels"].astype(str))
    wall = rows["wall_s"] if "wall_s" in rows else pd.Series(np.nan, index=rows.index)
    grouped = rows.assign(wall_s=wall).groupby("channels")
    return pd.DataFrame({
        "mean": grouped["val_accuracy_pct"].mean(),
        "std": grouped["val_accuracy_pct"].std(ddof=1),
        "n": grouped["val_accuracy_pct"].count(),
        "train_s": grouped["wall_s"].sum(min_count=1),
    }).reindex(keys)


def verify_round(run: SearchRun, options: VerifyRounds, measure: FrontMeasure,
                 front: FrontSource | None = None) -> list[dict[str, Any]]:
    """One round (steps 1-3 of the module docstring, then the re-prediction); appends its rows to
    ``run.verified`` and ``refinement.csv`` and returns them."""
    number = run.stage + 1
    archive, space = run.archive, run.setup.space
    exclude = run.accuracy.is_measured(space.decode(archive.x).channels)
    picked = candidates(archive, run.setup, options.per_round, exclude)
    if not len(picked):
        log.warning("verify round %d: no feasible design left whose network is unmeasured; "
                    "nothing trained, the search goes on", number)
        return []
    genomes = space.decode(archive.x[picked])
    before, std, _ = run.accuracy.clean(genomes.channels)
    start = time.perf_counter()
    rows = measure(genomes, [f"design {i}" for i in picked], list(range(options.seeds)))
    seconds = time.perf_counter() - start
    if front is not None:
        front.append(rows, f"verify round {number}")
    means = seed_means(rows, genomes.channels)
    ok = np.isfinite(means["mean"].to_numpy(dtype=float))
    if not ok.all():
        log.warning("verify round %d: %d designs have no validation accuracy (a training budget "
                    "without a validation split); they are not learned from", number, (~ok).sum())
    stats = run.accuracy.add_measured(genomes.channels[ok], means["mean"].to_numpy(float)[ok])
    after = run.accuracy.clean(genomes.channels)[0]
    measured = means["mean"].to_numpy(dtype=float)
    records = pd.DataFrame({
        "round": number, "design": picked, "channels": _joined(genomes.channels),
        "input_bits": _joined(genomes.input_bits), "adc_bits": _joined(genomes.adc_bits),
        "seeds": means["n"].to_numpy(), "predicted_before_pct": before,
        "predicted_std_pp": std, "measured_pct": measured,
        "measured_std_pp": means["std"].to_numpy(dtype=float), "predicted_after_pct": after,
        "error_before_pp": before - measured, "error_after_pp": after - measured,
        "train_s": means["train_s"].to_numpy(dtype=float),
    }, columns=list(COLUMNS)).to_dict("records")
    run.verified.extend(records)
    frame = pd.DataFrame(run.verified, columns=list(COLUMNS))
    atomic_write(run.out_dir / REFINEMENT_FILE, lambda fh: frame.to_csv(fh, index=False))
    error = before[ok] - measured[ok]
    log.info(
        "verify round %d: %d designs trained at %d seeds in %.0f s (%s); predicted before the "
        "refit minus measured: mean %+.2f pp, RMSE %.2f pp; predictor refitted: %s",
        number, len(picked), options.seeds, seconds,
        ", ".join(f"{i}: {m:.2f} %" for i, m in zip(picked, measured, strict=True)),
        error.mean(), np.sqrt(np.mean(error**2)), fmt_stats(stats))
    repredict_search(run.algorithm, archive)
    run.algorithm.data["clock"].discount(seconds)
    return records


def verify_rounds(run: SearchRun, options: VerifyRounds, measure: FrontMeasure,
                  front: FrontSource | None = None) -> SearchResult:
    """Run the search (or what is left of it after a resume), then the rounds that remain of
    ``options.rounds``, each followed by one more stage of the search; returns the final
    result."""
    result = run.run()
    while run.stage < options.rounds:
        verify_round(run, options, measure, front)
        run.extend()
        log.info("verify round %d done; the search continues to %s", run.stage,
                 f"generation {run.n_gen_budget}" if run.n_gen_budget else "its next budget")
        result = run.run()
    return result

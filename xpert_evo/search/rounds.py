"""The rounds the search loop calls: true-proxy rounds and, with online refinement, training.

With a surrogate budget (NSGANetV2 scheme) the true proxy first scores ``budget.initial`` channel
configurations (the uniform-width anchors, the baseline's channels and random ones) and the
surrogate is fitted. Each time the search passes another ``1 / budget.rounds`` of its
termination budget, ``budget.per_round`` of the most promising unscored designs (spread along
the current feasible front, then the next fronts) are scored with the true proxy and the
surrogate is refitted; the last round runs when the search ends.

With online refinement (``accuracy.refine=true``) networks are trained too: ``refine.initial``
channel configurations before the search (the uniform-width anchors, then the baseline's
channels), then in every round the ``refine.per_round`` most promising untrained designs, chosen
the same way. Models learn the validation accuracy of the trained networks (the test accuracy is
only logged). With a proxy objective the trained-accuracy model is fitted on them and the
accuracy objective is in % from then on; with ``accuracy=measured`` (no proxy, no surrogate:
``refine.rounds`` rounds of their own) the source's predictor is refitted on its source plus
these networks, and with a user source the rows are appended to it (`SearchSetup.refine_source`).
Each trained design is logged to ``refine.csv`` with the accuracy the search predicted for it
before training, so the prediction error can be read off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xpert_evo.accuracy.model import AccuracyPredictor
from xpert_evo.accuracy.rows import row_keys
from xpert_evo.files import atomic_write
from xpert_evo.search.archive import HW_METRICS, Archive, nondominated
from xpert_evo.search.setup import SearchSetup
from xpert_evo.space.genome import Genomes

log = logging.getLogger(__name__)

REFINE_FILE = "refine.csv"
REFINE_COLUMNS = [
    "round", "design", "channels", "input_bits", "adc_bits", "predicted_pct", "val_accuracy_pct",
    "accuracy_pct", "nonideal_accuracy_pct", "penalty_predicted_nonideal_pct", "fidelity",
    "device", "wall_s",
]
_EDAP = HW_METRICS.index("edap")


def candidates(
    archive: Archive, setup: SearchSetup, k: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """Archive indices of up to ``k`` designs with distinct channels to score (or train) next.

    Feasible designs not in ``exclude`` (a mask over the archive; default: those whose clean
    value is a true proxy score or a trained network's); taken front by front, each front spread
    evenly along EDAP.
    """
    a = archive
    if exclude is None:
        exclude = np.isin(a.origin, ("proxy", "trained"))
    remaining = np.flatnonzero((a.cv <= 0) & ~exclude)
    channels = setup.space.decode(a.x).channels if len(a) else np.zeros((0, setup.space.n_layers))
    f = a.objectives()
    chosen: list[np.ndarray] = []
    chosen_keys = row_keys(np.zeros((0, channels.shape[1]), dtype=np.int64))
    n_chosen = 0
    while n_chosen < k and len(remaining):
        nd = remaining[nondominated(f[remaining])]
        remaining = np.setdiff1d(remaining, nd)
        nd = nd[np.argsort(a.hw[nd, _EDAP], kind="stable")]
        keys = row_keys(channels[nd])
        _, first = np.unique(keys, return_index=True)
        first = np.sort(first)
        nd, keys = nd[first], keys[first]
        fresh = ~np.isin(keys, chosen_keys)
        nd, keys = nd[fresh], keys[fresh]
        need = k - n_chosen
        if len(nd) > need:
            pick = np.unique(np.round(np.linspace(0, len(nd) - 1, need)).astype(np.int64))
            nd, keys = nd[pick], keys[pick]
        chosen.append(nd)
        chosen_keys = np.concatenate([chosen_keys, keys])
        n_chosen += len(nd)
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


class Rounds:
    """When the rounds are due and what each one measures, trains and refits.

    Args:
        setup: the run's ingredients (budget, refine budget, measure function).
        accuracy: the predictor the rounds score with and refit (a `RefinedPredictor` with
            online refinement).
        out_dir: where ``refine.csv`` is written.
        max_true_calls: a cap on the scored channel configurations a round may bring the
            predictor to (rounds then score fewer candidates); None = ``budget.per_round`` each.

    Attributes:
        done: rounds run so far.
        refined: one dict per network trained by online refinement (see `frame`).
    """

    def __init__(
        self,
        setup: SearchSetup,
        accuracy: AccuracyPredictor,
        out_dir: str | Path,
        max_true_calls: int | None = None,
    ) -> None:
        self.setup = setup
        self.accuracy = accuracy
        self.out_dir = Path(out_dir)
        self.max_true_calls = max_true_calls
        self.done = 0
        self.refined: list[dict[str, Any]] = []

    def initial(self, sample: np.ndarray) -> None:
        """Before the search: score ``sample`` (channels (N, L)) with the true proxy, fit the
        surrogate, and train the first networks of online refinement."""
        log.info("scoring %d channel configurations (%s)", len(sample), self.accuracy.kind)
        self.accuracy.score(sample)
        if self.setup.budget is not None:
            stats = self.accuracy.refit_surrogate()
            log.info("surrogate fitted on %d: %s", self.accuracy.n_scored, fmt_stats(stats))
        if self.setup.refine is not None and self.setup.refine.initial:
            first = self._initial_training(sample)
            self.train(first, np.full(first.n, -1), 0)

    def due(
        self,
        archive: Archive,
        progress: float,
        repredict: Callable[[], None],
        final: bool = False,
    ) -> list[dict[str, Any]]:
        """Run every round due at ``progress`` (the termination's fraction done, 0..1; all the
        remaining ones when ``final``); returns the surrogate fit statistics of each.

        ``repredict`` re-evaluates the archive and the population under the refitted models.
        """
        budget, refine = self.setup.budget, self.setup.refine
        total = budget.rounds if budget is not None else refine.rounds if refine else 0
        fits: list[dict[str, Any]] = []
        while self.done < total and (final or progress >= (self.done + 1) / total - 1e-9):
            fits.append(self._round(archive, repredict))
            self.done += 1
        return fits

    def _round(self, archive: Archive, repredict: Callable[[], None]) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        if self.setup.budget is not None:
            k = self.setup.budget.per_round
            if self.max_true_calls is not None:
                k = min(k, max(self.max_true_calls - self.accuracy.n_scored, 0))
            chosen = candidates(archive, self.setup, k)
            if len(chosen):
                self.accuracy.score(self.setup.space.decode(archive.x[chosen]).channels)
            stats = self.accuracy.refit_surrogate()
            log.info(
                "refit round %d: %d new true scores (%d total); surrogate %s",
                self.done + 1,
                len(chosen),
                self.accuracy.n_scored,
                fmt_stats(stats),
            )
        if self.setup.refine is not None:
            repredict()
            channels = self.setup.space.decode(archive.x).channels
            trained = self.accuracy.trained.lookup(channels)[0]
            picked = candidates(archive, self.setup, self.setup.refine.per_round, trained)
            if len(picked):
                genomes = self.setup.space.decode(archive.x[picked])
                self.train(genomes, picked, self.done + 1)
        repredict()
        return stats

    def _initial_training(self, sample: np.ndarray) -> Genomes:
        """The first ``refine.initial`` distinct channel rows of ``sample`` (anchors, baseline,
        random draws), with the baseline's peripheral genes.
        """
        _, first = np.unique(sample, axis=0, return_index=True)
        channels = sample[np.sort(first)][: self.setup.refine.initial]
        copies = self.setup.space.baseline[np.zeros(len(channels), dtype=np.int64)]
        return replace(copies, channels=channels)

    def train(self, genomes: Genomes, designs: np.ndarray, round_: int) -> pd.DataFrame:
        """Train and evaluate ``genomes`` (online refinement), refit the predictor on them.

        Args:
            genomes: the designs to train.
            designs: their archive indices (-1 for designs not in the archive).
            round_: refit round (0 = before the search).

        Returns:
            The new `frame` rows; they are also written to ``refine.csv``.
        """
        channels = genomes.channels
        predicted = (
            self.accuracy.clean(channels)[0] if self.accuracy.is_percent
            else np.full(genomes.n, np.nan)
        )
        log.info("refine round %d: training %d designs (%s)", round_, genomes.n,
                 self.setup.measured_description)
        rows = self.setup.measure(genomes)
        if self.setup.refine_source is not None:
            from xpert_evo.training.groundtruth import append_rows  # torch: only when training

            append_rows(rows.assign(net_id=-1, role="refine", note="online refinement"),
                        self.setup.refine_source)
        clean = rows["accuracy_pct"].to_numpy(dtype=float)
        val = rows.get("val_accuracy_pct", pd.Series(np.nan, index=rows.index))
        val = val.to_numpy(dtype=float)
        learned = np.where(np.isfinite(val), val, clean)  # the test % only without a val split
        nonideal = rows["nonideal_accuracy_pct"].to_numpy(dtype=float)
        penalty = self.setup.penalty
        loss = penalty.predict(genomes, clean) if penalty is not None else np.zeros(genomes.n)
        new = pd.DataFrame({
            "round": round_,
            "design": np.asarray(designs, dtype=np.int64),
            "channels": ["-".join(map(str, c)) for c in channels.tolist()],
            "input_bits": ["-".join(map(str, c)) for c in genomes.input_bits.tolist()],
            "adc_bits": ["-".join(map(str, c)) for c in genomes.adc_bits.tolist()],
            "predicted_pct": predicted,
            "val_accuracy_pct": val,
            "accuracy_pct": clean,
            "nonideal_accuracy_pct": nonideal,
            "penalty_predicted_nonideal_pct": clean - loss,
            "fidelity": rows.get("fidelity", ""),
            "device": rows.get("device", ""),
            "wall_s": rows.get("wall_s", np.nan),
        })
        self.refined.extend(new.to_dict("records"))
        self.accuracy.add_trained(channels, learned)
        stats = self.accuracy.refit_trained()
        error = np.abs(predicted - learned)
        log.info(
            "refine round %d: clean accuracy %s %%; predicted before training: %s; "
            "accuracy model refitted with %d trained networks: %s",
            round_,
            ", ".join(f"{v:.1f}" for v in learned),
            f"mean abs error {np.mean(error):.2f} pp" if np.isfinite(error).all() else "-",
            self.accuracy.n_trained,
            fmt_stats(stats),
        )
        frame = self.frame()
        atomic_write(self.out_dir / REFINE_FILE, lambda fh: frame.to_csv(fh, index=False))
        return new

    def frame(self) -> pd.DataFrame:
        """One row per network trained by online refinement: round (0 = before the search),
        design (archive index, -1 if not archived), channels / input_bits / adc_bits,
        predicted_pct (the search's clean-accuracy prediction before training; empty before the
        first fit), val_accuracy_pct (measured clean, validation split: what models learn; empty
        without one), accuracy_pct (measured clean, test split), nonideal_accuracy_pct (measured
        on the crossbar at the design's precisions), penalty_predicted_nonideal_pct (measured
        clean minus the precision penalty model's loss), fidelity, device, wall_s.
        """
        return pd.DataFrame(self.refined, columns=REFINE_COLUMNS)


def fmt_stats(stats: dict[str, Any]) -> str:
    """Fit statistics as ``key=value`` text for the log (floats to 3 decimals)."""
    return ", ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()
    )

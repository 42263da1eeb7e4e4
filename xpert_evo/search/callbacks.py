"""What happens after each generation, as pymoo callbacks of one `CallbackCollection`.

pymoo calls the collection at the end of every generation (after it updated the termination,
before it counts the generation done), in this order:

1. `ArchiveCallback`: the generation's evaluated designs go to the archive.
2. `RoundsCallback`: the rounds that are due run (`xpert_evo.search.rounds`: true proxy scores,
   surrogate refits, trainings), the archive and population are re-predicted, and the
   termination is updated again (rounds spend true proxy calls).
3. `HistoryCallback`: one history row (hypervolume, front size, spending), logged.
4. `CheckpointCallback`: the search state is written to ``checkpoint.pkl``.
5. `HookCallback`: the caller's ``on_generation(run, generation)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.callback import Callback, CallbackCollection
from pymoo.util.optimum import filter_optimum

from xpert_evo.search.archive import HW_METRICS, Archive
from xpert_evo.search.problem import ACCURACY_OUTPUTS, accuracy_of
from xpert_evo.search.rounds import Rounds
from xpert_evo.search.termination import budget_progress

if TYPE_CHECKING:
    from xpert_evo.search.loop import SearchRun

log = logging.getLogger(__name__)

_EDAP = HW_METRICS.index("edap")
_OUTPUTS = ["F", "G", *ACCURACY_OUTPUTS]


class ArchiveCallback(Callback):
    """Adds each generation's evaluated designs (``algorithm.off``) to the archive."""

    def __init__(self, archive: Archive) -> None:
        super().__init__()
        self.archive = archive

    def _update(self, algorithm: Algorithm) -> None:
        off = algorithm.off
        if off is None or not len(off):
            return
        self.archive.add(off.get("X"), int(algorithm.n_gen), off.get("hw"), accuracy_of(off),
                         off.get("CV")[:, 0])


class RoundsCallback(Callback):
    """Runs the rounds due at the search's progress (`budget_progress`), and every remaining one
    once the search has terminated; keeps the surrogate fit statistics of this generation's
    rounds in ``fits``.

    A round that refits a model re-evaluates the archive and the population under it, and
    re-ranks the population with the algorithm's survival.
    """

    def __init__(self, rounds: Rounds, archive: Archive) -> None:
        super().__init__()
        self.rounds = rounds
        self.archive = archive
        self.fits: list[dict[str, Any]] = []

    def _update(self, algorithm: Algorithm) -> None:
        termination = algorithm.termination

        def repredict() -> None:
            repredict_search(algorithm, self.archive)

        self.fits = self.rounds.due(self.archive, budget_progress(termination), repredict)
        termination.update(algorithm)
        if termination.has_terminated():
            self.fits += self.rounds.due(self.archive, 1.0, repredict, final=True)


def repredict_search(algorithm: Algorithm, archive: Archive) -> None:
    """Re-evaluate the archive and the population under refitted models; re-rank the latter."""
    problem = algorithm.problem
    if len(archive):
        out = problem.evaluate(archive.x, return_values_of=_OUTPUTS, return_as_dictionary=True)
        archive.set_accuracy(accuracy_of(out))
        archive.cv = np.maximum(out["G"], 0.0).sum(axis=1)
    pop = algorithm.pop
    if pop is None or len(pop) == 0:
        return
    out = problem.evaluate(pop.get("X"), return_values_of=_OUTPUTS, return_as_dictionary=True)
    cv = np.maximum(out["G"], 0.0).sum(axis=1)
    pop.set("CV", cv[:, None], **{k: out[k] for k in _OUTPUTS})
    algorithm.pop = algorithm.survival.do(
        problem, pop, n_survive=len(pop), algorithm=algorithm,
        random_state=algorithm.random_state,
    )
    algorithm.opt = filter_optimum(algorithm.pop, least_infeasible=True)


class HistoryCallback(Callback):
    """Appends one row per generation to ``run.history`` (see `SearchRun.history_frame`)."""

    def __init__(self, run: SearchRun, rounds: RoundsCallback) -> None:
        super().__init__()
        self.run = run
        self.rounds = rounds

    def _update(self, algorithm: Algorithm) -> None:
        run, fits = self.run, self.rounds.fits
        front = run.archive.front()
        hv = run.bounds.hypervolume(run.archive.objectives()[front]) if len(front) else 0.0
        best = float(run.archive.hw[front, _EDAP].min()) if len(front) else float("nan")
        row = {
            "generation": int(algorithm.n_gen),
            "n_evals": int(algorithm.evaluator.n_eval),
            "n_true_evals": run.accuracy.n_scored,
            "hypervolume": hv,
            "n_nondominated": len(front),
            "best_edap": best,
            "elapsed_s": algorithm.data["clock"].seconds(),
            "n_trained": int(getattr(run.accuracy, "n_trained", 0)),
            "refit": bool(fits),
            "kendall_tau": float(fits[-1].get("kendall_tau", np.nan)) if fits else np.nan,
        }
        run.history.append(row)
        n_gen = run.n_gen_budget
        log.info(
            "gen %s%s | evals %d | true %d | HV %.4f | front %d | best EDAP %.4g pJ*ns*mm2"
            " | %.1f s",
            row["generation"], f"/{n_gen}" if n_gen else "", row["n_evals"],
            row["n_true_evals"], hv, len(front), best, row["elapsed_s"],
        )


class CheckpointCallback(Callback):
    """Writes the search state to ``checkpoint.pkl`` (`SearchRun.checkpoint`)."""

    def __init__(self, run: SearchRun) -> None:
        super().__init__()
        self.run = run

    def _update(self, algorithm: Algorithm) -> None:
        self.run.checkpoint()


class HookCallback(Callback):
    """Calls ``hook(run, generation)`` once the generation's checkpoint is written."""

    def __init__(self, run: SearchRun, hook: Callable[[SearchRun, int], None]) -> None:
        super().__init__()
        self.run = run
        self.hook = hook

    def _update(self, algorithm: Algorithm) -> None:
        self.hook(self.run, int(algorithm.n_gen))


def generation_callbacks(
    run: SearchRun, hook: Callable[[SearchRun, int], None] | None = None
) -> CallbackCollection:
    """The callbacks of one search, in the order of the module docstring."""
    rounds = RoundsCallback(run.rounds, run.archive)
    callbacks: list[Callback] = [ArchiveCallback(run.archive), rounds,
                                 HistoryCallback(run, rounds), CheckpointCallback(run)]
    if hook is not None:
        callbacks.append(HookCallback(run, hook))
    return CallbackCollection(*callbacks)

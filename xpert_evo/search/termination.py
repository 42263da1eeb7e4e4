"""When a search stops: the configured budgets and the spending caps, as pymoo terminations.

`build_termination` combines them in one pymoo `TerminateIfAny`: first the configured budgets
(``algorithm.n_gen``, ``n_evals``, ``max_time_s``, themselves a `TerminateIfAny`), then a
`SpendTermination` for the exact spending caps of benchmarks (`SpendCaps`). pymoo updates it after
each generation; the rounds callback updates it once more after it spent true proxy calls
(`xpert_evo.search.callbacks`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.termination import TerminateIfAny, Termination
from pymoo.termination.max_eval import MaximumFunctionCallTermination
from pymoo.termination.max_gen import MaximumGenerationTermination

from xpert_evo.accuracy.rows import row_keys


@dataclass(frozen=True)
class SpendCaps:
    """Hard caps on what one search may spend, so that methods compared side by side get exactly
    the same budget (`bench/studies/compare_methods.py`). A generation that would go over a cap is
    cut to the designs the cap still pays for, and the run stops once a cap is spent.

    Attributes:
        true_calls: most distinct channel configurations scored (`AccuracyPredictor.n_scored`:
            true proxy calls of the initial sample, of the refit rounds, and without a surrogate
            of every new configuration the search evaluates); None = no cap. It must cover the
            uniform-width anchors and the baseline every run scores first. Calls an algorithm
            makes itself (xpert_gd's acceptance test with the surrogate on) are not cut.
        cost_evals: most cost-model genome evaluations: designs the search evaluates plus those
            an algorithm spends on its own (``algorithm.data["n_cost_evals"]``: xpert_gd's
            gradients); None = no cap. The fixed set-up (hypervolume bounds, the baseline) is
            not counted.
    """

    true_calls: int | None = None
    cost_evals: int | None = None


class SearchClock:
    """Search wall time in seconds, summed over resumed sessions: a pickled clock keeps the
    seconds counted so far and counts on from its unpickling."""

    def __init__(self, before_s: float = 0.0) -> None:
        self.before_s = float(before_s)
        self.started = time.perf_counter()

    def seconds(self) -> float:
        """Search time so far, s."""
        return self.before_s + time.perf_counter() - self.started

    def discount(self, seconds: float) -> None:
        """Leave ``seconds`` spent outside the search (the trainings of ``verify.rounds``) out of
        the search time."""
        self.before_s -= float(seconds)

    def __getstate__(self) -> dict[str, float]:
        return {"before_s": self.seconds()}

    def __setstate__(self, state: dict[str, float]) -> None:
        self.before_s = float(state["before_s"])
        self.started = time.perf_counter()


class SearchTimeTermination(Termination):
    """Stop after ``max_time_s`` seconds of search time (``algorithm.data['clock']``)."""

    def __init__(self, max_time_s: float) -> None:
        super().__init__()
        self.max_time_s = float(max_time_s)

    def _update(self, algorithm: Algorithm) -> float:
        clock = algorithm.data.get("clock")
        return (clock.seconds() if clock is not None else 0.0) / self.max_time_s


def cost_evals_left(algorithm: Algorithm, caps: SpendCaps) -> int | None:
    """Cost-model evaluations the cap still allows (None without a cap): the designs pymoo
    evaluated (distinct, archive-wide duplicate elimination) plus an algorithm's own
    (``algorithm.data["n_cost_evals"]``)."""
    if caps.cost_evals is None:
        return None
    spent = int(algorithm.evaluator.n_eval) + int(algorithm.data.get("n_cost_evals", 0))
    return max(caps.cost_evals - spent, 0)


def affordable(algorithm: Algorithm, pop: Any, caps: SpendCaps) -> int:
    """How many leading designs of the offspring ``pop`` the caps still pay for: one cost-model
    evaluation each, and, when every new channel configuration is scored (no surrogate), one true
    call per configuration not scored before."""
    n = len(pop)
    left = cost_evals_left(algorithm, caps)
    if left is not None:
        n = min(n, left)
    accuracy = algorithm.problem.accuracy
    if caps.true_calls is not None and not accuracy.use_surrogate and n:
        channels = algorithm.problem.space.decode(pop.get("X")).channels
        first = np.zeros(len(channels), dtype=bool)
        first[np.unique(row_keys(channels), return_index=True)[1]] = True
        new = first & ~accuracy.known(channels)
        paid = np.searchsorted(np.cumsum(new), caps.true_calls - accuracy.n_scored, side="right")
        n = min(n, int(paid))
    return n


class SpendTermination(Termination):
    """Stop once a `SpendCaps` cap is spent, or when a generation had no new design to evaluate
    (an algorithm that proposes only designs it evaluated before has nothing left to do)."""

    def __init__(self, caps: SpendCaps) -> None:
        super().__init__()
        self.caps = caps

    def _update(self, algorithm: Algorithm) -> float:
        if algorithm.off is not None and len(algorithm.off) == 0:
            return 1.0
        calls = self.caps.true_calls
        spent = cost_evals_left(algorithm, self.caps) == 0 or (
            calls is not None and algorithm.problem.accuracy.n_scored >= calls
        )
        return 1.0 if spent else 0.0


def build_termination(
    n_gen: int | None, n_evals: int | None, max_time_s: float | None, caps: SpendCaps
) -> TerminateIfAny:
    """Stop at whichever of the generation / evaluation / time budgets comes first (the first
    criterion, whose progress times the rounds), or once a spending cap is used up."""
    parts: list[Termination] = []
    if n_gen is not None:
        parts.append(MaximumGenerationTermination(n_gen))
    if n_evals is not None:
        parts.append(MaximumFunctionCallTermination(n_evals))
    if max_time_s is not None:
        parts.append(SearchTimeTermination(max_time_s))
    return TerminateIfAny(TerminateIfAny(*parts), SpendTermination(caps))


def budget_progress(termination: TerminateIfAny) -> float:
    """The fraction (0..1) of the configured budgets a `build_termination` termination has used:
    1 once it has terminated (whatever stopped it), else its first criterion's progress."""
    if termination.has_terminated():
        return 1.0
    return float(termination.criteria[0].perc)

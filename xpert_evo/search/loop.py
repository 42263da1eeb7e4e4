"""The search loop: pymoo's ask/tell generation by generation, the history and the result.

One run is a single pymoo algorithm driven generation by generation with ask/tell. After every
generation the evaluated designs go to the archive, the rounds that are due run
(`xpert_evo.search.rounds`: true-proxy scores, surrogate refits, online training), a history row
is logged and the state is checkpointed (`xpert_evo.search.checkpoint`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xpert_evo.accuracy.measured import MeasuredAccuracy
from xpert_evo.search.algorithms import TERMINATION_KEYS, build_algorithm, build_termination
from xpert_evo.search.archive import HW_METRICS, Archive, Bounds, row_keys
from xpert_evo.search.checkpoint import save_checkpoint
from xpert_evo.search.oracle import AccuracyOracle
from xpert_evo.search.problem import CoDesignProblem
from xpert_evo.search.rounds import Rounds, candidates
from xpert_evo.search.setup import SearchSetup

log = logging.getLogger(__name__)

_EDAP = HW_METRICS.index("edap")
_EXTRA = ["F", "G", "hw", "acc", "acc_std", "measured"]


@dataclass(frozen=True)
class SpendCaps:
    """Hard caps on what one search may spend, so that methods compared side by side get exactly
    the same budget (`bench/compare_methods.py`). A generation that would go over a cap is cut
    to the designs the cap still pays for, and the run stops once a cap is spent.

    Attributes:
        true_calls: most distinct channel configurations scored with the true accuracy proxy
            (`AccuracyOracle.n_measured`: the initial sample, the refit rounds, and without a
            surrogate every new configuration the search evaluates); None = no cap. It must
            cover the uniform-width anchors and the baseline every run scores first. Calls an
            algorithm makes itself (xpert_gd's acceptance test with the surrogate on) are not
            cut.
        cost_evals: most cost-model genome evaluations: designs the search evaluates plus those
            an algorithm spends on its own (``algorithm.data["n_cost_evals"]``: xpert_gd's
            gradients); None = no cap. The fixed set-up (hypervolume bounds, the baseline) is
            not counted.
    """

    true_calls: int | None = None
    cost_evals: int | None = None


@dataclass
class SearchResult:
    """What a finished (or stopped) search hands to the report.

    Attributes:
        setup: the run's ingredients.
        archive: every evaluated design, accuracy under the final surrogate.
        front: archive indices of the feasible non-dominated designs, by EDAP ascending.
        history: one row per generation (see `SearchRun.history_frame`).
        bounds: the fixed hypervolume normalisation.
        baseline_hw: the baseline's `HW_METRICS` values, shape (len(HW_METRICS),).
        baseline_accuracy: the baseline's accuracy (true proxy, estimator units).
        oracle: true scores and surrogate fit statistics.
        search_s: search wall time in seconds, summed over resumed sessions.
        refined: one row per network trained by online refinement (see `Rounds.frame`).
    """

    setup: SearchSetup
    archive: Archive
    front: np.ndarray
    history: pd.DataFrame
    bounds: Bounds
    baseline_hw: np.ndarray
    baseline_accuracy: float
    oracle: AccuracyOracle
    search_s: float
    refined: pd.DataFrame

    @property
    def n_evals(self) -> int:
        """Designs evaluated by the search (distinct genomes)."""
        return len(self.archive)


class SearchRun:
    """One search, started fresh (`start`) or from a checkpoint (`resume`), then `run`.

    Args:
        setup: the run's ingredients (`build_search`).
        out_dir: where ``checkpoint.pkl`` is written after every generation.
        on_generation: called as ``on_generation(run, generation)`` after each generation's
            checkpoint is written.
        caps: exact spending caps (benchmarks), or None for the configured termination only.
    """

    def __init__(
        self,
        setup: SearchSetup,
        out_dir: str | Path,
        on_generation: Callable[[SearchRun, int], None] | None = None,
        caps: SpendCaps | None = None,
    ) -> None:
        self.setup = setup
        self.out_dir = Path(out_dir)
        self.on_generation = on_generation
        self.caps = caps or SpendCaps()
        self.oracle = AccuracyOracle(
            setup.estimator,
            use_surrogate=setup.budget is not None,
            measured_model=(
                MeasuredAccuracy(setup.backbone, setup.measured_description)
                if setup.refine is not None and setup.estimator.score_kind != "predicted"
                else None
            ),
        )
        self.problem = CoDesignProblem(
            setup.space, setup.cost_model, self.oracle, setup.constraints, setup.penalty
        )
        self.archive = Archive(setup.space.n_var)
        self.algorithm: Any = None
        self.bounds: Bounds | None = None
        self.baseline_hw = np.zeros(len(HW_METRICS))
        self.baseline_accuracy = float("nan")
        self.history: list[dict[str, Any]] = []
        self.rounds = Rounds(setup, self.oracle, self.out_dir, self.caps.true_calls)
        self._session_start = time.perf_counter()
        self._search_s_before = 0.0

    # ------------------------------------------------------------------ start / resume

    def start(self) -> SearchRun:
        """Score the anchors (and the initial surrogate sample), fix the HV bounds, set up.

        Search time (``elapsed_s``, ``algorithm.max_time_s``) counts from here.
        """
        self._session_start = time.perf_counter()
        self._search_s_before = 0.0
        space, setup = self.setup.space, self.setup
        rng = np.random.default_rng([setup.seed, 20230330])
        widths = np.asarray(space.options["channels"], dtype=np.int64)
        anchors = np.repeat(widths[:, None], space.n_layers, axis=1)
        base_channels = space.baseline.channels
        sample = np.concatenate([anchors, base_channels])
        cap = self.caps.true_calls
        if cap is not None and cap < len(np.unique(sample, axis=0)):
            raise ValueError(
                f"a cap of {cap} true proxy calls cannot score the {len(sample)} uniform-width "
                "anchors and baseline every run starts from"
            )
        if setup.budget is not None:
            n_random = max(setup.budget.initial - len(sample), 0)
            draws = widths[rng.integers(0, len(widths), size=(n_random, space.n_layers))]
            sample = np.concatenate([sample, draws])
            sample = sample[: len(sample) if cap is None else cap]
        self.rounds.initial(sample)
        acc_anchor = self.oracle.accuracy(anchors)[0]
        grid = setup.cost_model.evaluate(space.uniform_grid(), breakdown=False)
        log_edap = np.log10(np.asarray(grid.edap, dtype=float))
        self.bounds = Bounds(
            ideal=np.array([-acc_anchor.max(), log_edap.min()]),
            nadir=np.array([-acc_anchor.min(), log_edap.max()]),
        )
        base = setup.cost_model.evaluate(space.baseline)
        self.baseline_hw = np.array([float(np.asarray(getattr(base, m))[0]) for m in HW_METRICS])
        self.baseline_accuracy = float(self.oracle.accuracy(base_channels)[0][0])
        self.algorithm = build_algorithm(
            setup.settings, self.archive, setup.seed, self.initial_population(rng)
        )
        self.algorithm.setup(self.problem)
        self.algorithm.data["search_s"] = self._search_s()
        return self

    def initial_population(self, rng: np.random.Generator) -> np.ndarray:
        """The first generation, encoded (pop_size, n_var): a quarter `SearchSpace.seeds` (at
        least the uniform-width anchors and the baseline's channels, all with the baseline's
        peripheral genes, so that even a short run has feasible designs to rank), the rest drawn
        uniformly from the space (the variety the search starts from; more seeds would hold the
        early generations near the baseline's precisions).
        """
        space, n = self.setup.space, self.setup.settings.pop_size
        n_seeds = min(max(len(space.options["channels"]) + 1, n // 4), n)
        seeds = space.seeds(n_seeds, rng)
        return np.concatenate([seeds, space.random(n - len(seeds), rng)])

    def resume(self, state: dict[str, Any]) -> SearchRun:
        """Continue from a `load_checkpoint` state; the setup must come from the same config.

        Termination settings may differ from the checkpoint's (to extend a run); everything else
        is taken from the checkpoint.
        """
        self.archive = state["archive"]
        self.algorithm = state["algorithm"]
        self.algorithm.problem = self.problem
        self.oracle.restore(state["oracle"])
        self.bounds = state["bounds"]
        self.baseline_hw, self.baseline_accuracy = state["baseline"]
        self.history = list(state["history"])
        self.rounds.refined = list(state["refined"])
        self.rounds.done = int(state["rounds_done"])
        self._search_s_before = float(self.algorithm.data.get("search_s", 0.0))
        self._session_start = time.perf_counter()
        saved = state["config"].get("algorithm", {})
        wanted = self.setup.config.get("algorithm", {})
        if any(saved.get(k) != wanted.get(k) for k in TERMINATION_KEYS):
            termination = build_termination(self.setup.settings)
            # pymoo updates termination before it advances n_iter, so score the last generation
            self.algorithm.n_iter -= 1
            termination.update(self.algorithm)
            self.algorithm.n_iter += 1
            self.algorithm.termination = termination
        return self

    # ------------------------------------------------------------------ the loop

    def run(self) -> SearchResult:
        """Run generations until the termination criterion holds; returns the result."""
        algo = self.algorithm
        while algo.has_next() and not self.caps_spent():
            algo.data["cost_evals_left"] = self.cost_evals_left()
            pop = self.within_caps(algo.ask())
            if pop is None or len(pop) == 0:
                break
            algo.evaluator.eval(self.problem, pop, algorithm=algo)
            algo.data["search_s"] = self._search_s()
            algo.tell(infills=pop)
            generation = int(pop.get("n_gen")[0])
            self.archive.add(
                pop.get("X"),
                generation,
                pop.get("hw"),
                pop.get("acc"),
                pop.get("acc_std"),
                pop.get("measured") > 0.5,
                pop.get("CV")[:, 0],
            )
            fits = self._due_rounds()
            algo.data["search_s"] = self._search_s()
            self._record(generation, fits)
            self.checkpoint()
            if self.on_generation is not None:
                self.on_generation(self, generation)
        if self.setup.budget is not None and self.rounds.done < self.setup.budget.rounds:
            last = self.history[-1]["generation"] if self.history else 0
            self._record(last, self._due_rounds(final=True))
            self.checkpoint()
        return self.result()

    @property
    def cost_evals(self) -> int:
        """Cost-model genome evaluations spent so far (see `SpendCaps.cost_evals`)."""
        return len(self.archive) + int(self.algorithm.data.get("n_cost_evals", 0))

    def cost_evals_left(self) -> int | None:
        """Cost-model evaluations the cap still allows (None without a cap); algorithms that
        spend evaluations of their own read it from ``algorithm.data["cost_evals_left"]``."""
        if self.caps.cost_evals is None:
            return None
        return max(self.caps.cost_evals - self.cost_evals, 0)

    def caps_spent(self) -> bool:
        """True once the cost-model or the true-proxy cap is used up."""
        calls = self.caps.true_calls
        return self.cost_evals_left() == 0 or (
            calls is not None and self.oracle.n_measured >= calls
        )

    def within_caps(self, pop: Any) -> Any:
        """The leading designs of the offspring ``pop`` the caps still pay for: one cost-model
        evaluation each, and, when every new channel configuration is scored with the true
        proxy (no surrogate), one true call per configuration not scored before."""
        if pop is None or not len(pop):
            return pop
        n = len(pop)
        left = self.cost_evals_left()
        if left is not None:
            n = min(n, left)
        calls = self.caps.true_calls
        if calls is not None and not self.oracle.use_surrogate:
            channels = self.setup.space.decode(pop.get("X")).channels
            first = np.zeros(len(channels), dtype=bool)
            first[np.unique(row_keys(channels), return_index=True)[1]] = True
            new = first & ~self.oracle.lookup(channels)[0]
            paid = np.searchsorted(np.cumsum(new), calls - self.oracle.n_measured, side="right")
            n = min(n, int(paid))
        return pop if n == len(pop) else pop[:n]

    def _search_s(self) -> float:
        return self._search_s_before + time.perf_counter() - self._session_start

    def _due_rounds(self, final: bool = False) -> list[dict[str, Any]]:
        term = self.algorithm.termination
        progress = 1.0 if term.has_terminated() else float(term.perc)
        return self.rounds.due(self.archive, progress, self._repredict, final)

    def candidates(self, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
        """Archive indices of up to ``k`` designs to score or train next (`rounds.candidates`)."""
        return candidates(self.archive, self.setup, k, exclude)

    def _repredict(self) -> None:
        """Re-evaluate the archive and the population under the refitted surrogate."""
        a = self.archive
        if len(a):
            out = self.problem.evaluate(a.x, return_values_of=_EXTRA, return_as_dictionary=True)
            a.accuracy = out["acc"]
            a.accuracy_std = out["acc_std"]
            a.measured = out["measured"] > 0.5
            a.cv = np.maximum(out["G"], 0.0).sum(axis=1)
        algo = self.algorithm
        if algo.pop is None or len(algo.pop) == 0:
            return
        pop = algo.pop
        out = self.problem.evaluate(
            pop.get("X"), return_values_of=_EXTRA, return_as_dictionary=True
        )
        cv = np.maximum(out["G"], 0.0).sum(axis=1)
        pop.set(
            "F", out["F"], "G", out["G"], "acc", out["acc"], "acc_std", out["acc_std"],
            "measured", out["measured"], "CV", cv[:, None],
        )
        algo.pop = algo.survival.do(
            self.problem, pop, n_survive=len(pop), algorithm=algo, random_state=algo.random_state
        )
        algo._set_optimum()

    # ------------------------------------------------------------------ bookkeeping

    def _record(self, generation: int, fits: list[dict[str, Any]]) -> None:
        front = self.archive.front()
        hv = self.bounds.hypervolume(self.archive.objectives()[front]) if len(front) else 0.0
        best = float(self.archive.hw[front, _EDAP].min()) if len(front) else float("nan")
        row = {
            "generation": generation,
            "n_evals": int(self.algorithm.evaluator.n_eval),
            "n_true_evals": self.oracle.n_measured,
            "hypervolume": hv,
            "n_nondominated": len(front),
            "best_edap": best,
            "elapsed_s": float(self.algorithm.data["search_s"]),
            "n_trained": self.oracle.n_trained,
            "refit": bool(fits),
            "kendall_tau": float(fits[-1].get("kendall_tau", np.nan)) if fits else np.nan,
        }
        self.history.append(row)
        n_gen = self.setup.settings.n_gen
        log.info(
            "gen %s%s | evals %d | true %d | HV %.4f | front %d | best EDAP %.4g pJ*ns*mm2"
            " | %.1f s",
            generation,
            f"/{n_gen}" if n_gen else "",
            row["n_evals"],
            row["n_true_evals"],
            hv,
            len(front),
            best,
            row["elapsed_s"],
        )

    def state(self) -> dict[str, Any]:
        """The picklable run state (the problem, cost model and estimator are rebuilt on load)."""
        return {
            "config": self.setup.config,
            "algorithm": self.algorithm,
            "archive": self.archive,
            "oracle": self.oracle.state(),
            "bounds": self.bounds,
            "baseline": (self.baseline_hw, self.baseline_accuracy),
            "history": self.history,
            "refined": self.rounds.refined,
            "rounds_done": self.rounds.done,
        }

    def checkpoint(self) -> Path:
        """Write ``checkpoint.pkl`` atomically; returns its path."""
        problem = self.algorithm.problem
        self.algorithm.problem = None
        try:
            return save_checkpoint(self.state(), self.out_dir)
        finally:
            self.algorithm.problem = problem

    def history_frame(self) -> pd.DataFrame:
        """Per-generation history: generation, n_evals, n_true_evals, hypervolume (normalised,
        fixed reference), n_nondominated, best_edap (pJ*ns*mm2), elapsed_s, n_trained, refit,
        kendall_tau.
        """
        return pd.DataFrame(self.history)

    def result(self) -> SearchResult:
        """The current state as a `SearchResult`."""
        return SearchResult(
            setup=self.setup,
            archive=self.archive,
            front=self.archive.front(),
            history=self.history_frame(),
            bounds=self.bounds,
            baseline_hw=self.baseline_hw,
            baseline_accuracy=self.baseline_accuracy,
            oracle=self.oracle,
            search_s=float(self.algorithm.data.get("search_s", 0.0)),
            refined=self.rounds.frame(),
        )

"""One search: set up pymoo's algorithm, termination and callbacks, and let pymoo run it.

pymoo owns the generation loop (`Algorithm.run`). `SearchRun` scores the anchors, fixes the
hypervolume bounds, scores the baseline with the same `AccuracyPredictor.predict` as every
design, and hands pymoo the problem, a `TerminateIfAny` of the configured budgets and the
spending caps (`xpert_evo.search.termination`), and the callbacks that keep the archive, run the
rounds, write the history and the checkpoint (`xpert_evo.search.callbacks`).

Resume (`SearchRun.resume`) uses pymoo's own checkpointing: the algorithm object is pickled
whole (population, RNG state, evaluator counts, termination) and later continued with
``run()``. The checkpoint is written by a callback, which pymoo calls before it counts the
generation done (``n_gen += 1`` at the end of `Algorithm.advance`), so a resume does that step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymoo.core.termination import TerminateIfAny

from xpert_evo.accuracy.model import AccuracyEstimate, AccuracyPredictor
from xpert_evo.accuracy.refined import search_predictor
from xpert_evo.search.algorithms import build_algorithm
from xpert_evo.search.archive import HW_METRICS, Archive, Bounds
from xpert_evo.search.callbacks import generation_callbacks
from xpert_evo.search.checkpoint import save_checkpoint
from xpert_evo.search.problem import CoDesignProblem
from xpert_evo.search.rounds import Rounds
from xpert_evo.search.setup import SearchSetup
from xpert_evo.search.termination import SearchClock, SpendCaps, build_termination

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    """What a finished (or stopped) search hands to the report.

    Attributes:
        setup: the run's ingredients.
        archive: every evaluated design, accuracy under the final models.
        front: archive indices of the feasible non-dominated designs, by EDAP ascending.
        history: one row per generation (see `SearchRun.history_frame`).
        bounds: the fixed hypervolume normalisation.
        baseline_hw: the baseline's `HW_METRICS` values, shape (len(HW_METRICS),).
        baseline_accuracy: the baseline's accuracy (one row), scored like every design: its
            ``net`` is what the iso-accuracy design must match.
        accuracy: the predictor the search asked (scores, fits, trained networks).
        search_s: search wall time in seconds, summed over resumed sessions (the trainings of
            ``verify.rounds`` excluded).
        refined: one row per network trained by online refinement (see `Rounds.frame`).
        verified: one row per design verified by ``verify.rounds`` (see
            `xpert_evo.search.front_rounds.COLUMNS`); empty without.
    """

    setup: SearchSetup
    archive: Archive
    front: np.ndarray
    history: pd.DataFrame
    bounds: Bounds
    baseline_hw: np.ndarray
    baseline_accuracy: AccuracyEstimate
    accuracy: AccuracyPredictor
    search_s: float
    refined: pd.DataFrame
    verified: pd.DataFrame = field(default_factory=pd.DataFrame)

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
        self.accuracy = search_predictor(
            setup.estimator, setup.penalty, setup.budget is not None, setup.refine is not None,
            setup.backbone, setup.measured_description,
        )
        self.problem = CoDesignProblem(
            setup.space, setup.cost_model, self.accuracy, setup.constraints
        )
        self.archive = Archive(setup.space.n_var)
        self.algorithm: Any = None
        self.bounds: Bounds | None = None
        self.baseline_hw = np.zeros(len(HW_METRICS))
        self.baseline_accuracy: AccuracyEstimate | None = None
        self.history: list[dict[str, Any]] = []
        self.rounds = Rounds(setup, self.accuracy, self.out_dir, self.caps.true_calls)
        self.stage = 0
        self.verified: list[dict[str, Any]] = []

    def start(self) -> SearchRun:
        """Score the anchors (and the initial surrogate sample), fix the HV bounds, score the
        baseline, set pymoo up. Search time (``elapsed_s``, ``algorithm.max_time_s``) counts
        from here.
        """
        clock = SearchClock()
        space, setup = self.setup.space, self.setup
        rng = np.random.default_rng([setup.seed, 20230330])
        widths = np.asarray(space.options["channels"], dtype=np.int64)
        anchors = np.repeat(widths[:, None], space.n_layers, axis=1)
        sample = np.concatenate([anchors, space.baseline.channels])
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
        acc_anchor = self.accuracy.clean(anchors)[0]
        grid = setup.cost_model.evaluate(space.uniform_grid(), breakdown=False)
        log_edap = np.log10(np.asarray(grid.edap, dtype=float))
        self.bounds = Bounds(
            ideal=np.array([-acc_anchor.max(), log_edap.min()]),
            nadir=np.array([-acc_anchor.min(), log_edap.max()]),
        )
        base = setup.cost_model.evaluate(space.baseline)
        self.baseline_hw = np.array([float(np.asarray(getattr(base, m))[0]) for m in HW_METRICS])
        self.baseline_accuracy = self.accuracy.predict(space.baseline)
        self.algorithm = build_algorithm(
            setup.settings, self.archive, setup.seed, self.initial_population(rng)
        )
        self.algorithm.data.update(clock=clock, spend_caps=self.active_caps())
        self.algorithm.setup(self.problem, termination=self.termination(),
                             callback=generation_callbacks(self, self.on_generation))
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

        The termination is rebuilt from this run's settings (which may extend the saved run's
        budgets) and brought up to the saved generation; everything else is the checkpoint's.
        """
        self.archive = state["archive"]
        self.accuracy.restore(state["accuracy"])
        self.bounds = state["bounds"]
        self.baseline_hw, self.baseline_accuracy = state["baseline"]
        self.history = list(state["history"])
        self.rounds.refined = list(state["refined"])
        self.rounds.done = int(state["rounds_done"])
        self.stage = int(state.get("stage", 0))
        self.verified = list(state.get("verified", []))
        algorithm = state["algorithm"]
        algorithm.problem = self.problem
        algorithm.data["spend_caps"] = self.active_caps()
        algorithm.termination = self.termination()
        algorithm.termination.update(algorithm)
        algorithm.n_gen += 1  # the step pymoo takes after the callback that wrote the checkpoint
        algorithm.callback = generation_callbacks(self, self.on_generation)
        self.algorithm = algorithm
        return self

    def termination(self) -> TerminateIfAny:
        """A fresh termination: the configured budgets, once per stage (after ``k`` rounds of
        ``verify.rounds`` the search runs to ``k + 1`` times each budget), then this run's
        spending caps."""
        s, times = self.setup.settings, self.stage + 1
        return build_termination(
            self.n_gen_budget,
            None if s.n_evals is None else s.n_evals * times,
            None if s.max_time_s is None else s.max_time_s * times, self.caps)

    @property
    def n_gen_budget(self) -> int | None:
        """The generation this stage of the search stops at (None without a generation budget)."""
        n_gen = self.setup.settings.n_gen
        return None if n_gen is None else n_gen * (self.stage + 1)

    def extend(self) -> SearchRun:
        """The next stage: continue the same pymoo run (population, RNG, archive-wide duplicate
        elimination) for one more of each configured budget, as pymoo continues an initialised
        algorithm whose termination has not been reached."""
        self.stage += 1
        self.algorithm.termination = self.termination()
        self.algorithm.termination.update(self.algorithm)
        return self

    def active_caps(self) -> SpendCaps | None:
        """This run's spending caps, or None when it has none (nothing to cut)."""
        return self.caps if self.caps != SpendCaps() else None

    def run(self) -> SearchResult:
        """Let pymoo run generations until the termination holds; returns the result."""
        self.algorithm.run()
        return self.result()

    @property
    def cost_evals(self) -> int:
        """Cost-model genome evaluations spent so far (see `SpendCaps.cost_evals`)."""
        return int(self.algorithm.evaluator.n_eval) + int(
            self.algorithm.data.get("n_cost_evals", 0))

    def state(self) -> dict[str, Any]:
        """The picklable run state (the problem, cost model and predictor are rebuilt on load;
        the predictor's caches and fitted data travel in ``accuracy``)."""
        return {
            "config": self.setup.config,
            "algorithm": self.algorithm,
            "archive": self.archive,
            "accuracy": self.accuracy.state(),
            "bounds": self.bounds,
            "baseline": (self.baseline_hw, self.baseline_accuracy),
            "history": self.history,
            "refined": self.rounds.refined,
            "rounds_done": self.rounds.done,
            "stage": self.stage,
            "verified": self.verified,
        }

    def checkpoint(self) -> Path:
        """Write ``checkpoint.pkl`` atomically; returns its path. The algorithm is pickled
        without its problem and callbacks (rebuilt on resume)."""
        algorithm = self.algorithm
        problem, callback = algorithm.problem, algorithm.callback
        algorithm.problem, algorithm.callback = None, None
        try:
            return save_checkpoint(self.state(), self.out_dir)
        finally:
            algorithm.problem, algorithm.callback = problem, callback

    def history_frame(self) -> pd.DataFrame:
        """Per-generation history: generation, n_evals, n_true_evals (distinct channel
        configurations scored), hypervolume (normalised, fixed reference), n_nondominated,
        best_edap (pJ*ns*mm2), elapsed_s, n_trained, refit, kendall_tau.
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
            accuracy=self.accuracy,
            search_s=self.algorithm.data["clock"].seconds(),
            refined=self.rounds.frame(),
            verified=pd.DataFrame(self.verified),
        )

"""The search loop: generations, surrogate refit rounds, history, checkpoints and resume.

One run is a single pymoo algorithm driven generation by generation with ask/tell. With a
surrogate budget (NSGANetV2 scheme) the true proxy first scores ``budget.initial`` channel
configurations (the uniform-width anchors, the baseline's channels and random ones), the surrogate
is fitted, and the algorithm evaluates designs with surrogate-predicted accuracy. Each time the
search passes another ``1 / budget.rounds`` of its termination budget, ``budget.per_round`` of the
most promising unmeasured designs (spread along the current feasible front, then the next fronts)
are scored with the true proxy, the surrogate is refitted and every archived design and the
population are re-predicted; the last round runs when the search ends.

With online refinement (``accuracy.refine=true``) networks are trained too: ``refine.initial``
channel configurations before the search (the uniform-width anchors, then the baseline's
channels), then in every refit round the ``refine.per_round`` most promising untrained designs,
chosen the same way. The measured-accuracy model is refitted on them and the accuracy objective is
in % from then on. Each trained design is logged to ``refine.csv`` with the accuracy the search
predicted for it before training, so the prediction error can be read off.

After every generation the whole state (algorithm incl. its RNG, archive, true scores, history) is
pickled atomically (temp file + ``os.replace``) to ``checkpoint.pkl`` in the output directory, so
an interrupted run loses at most the generation in progress and a resumed run with the same
config follows exactly the path of an uninterrupted one.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xpert_evo.accuracy.measured import MeasuredAccuracy
from xpert_evo.config import ConfigError
from xpert_evo.search.algorithms import TERMINATION_KEYS, build_algorithm, build_termination
from xpert_evo.search.archive import HW_METRICS, Archive, Bounds, nondominated, row_keys
from xpert_evo.search.oracle import AccuracyOracle
from xpert_evo.search.problem import CoDesignProblem
from xpert_evo.search.setup import SearchSetup
from xpert_evo.space.genome import Genomes

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pkl"
CHECKPOINT_VERSION = 2
REFINE_FILE = "refine.csv"
_EDAP = HW_METRICS.index("edap")
_EXTRA = ["F", "G", "hw", "acc", "acc_std", "measured"]
REFINE_COLUMNS = [
    "round", "design", "channels", "input_bits", "adc_bits", "predicted_pct", "accuracy_pct",
    "nonideal_accuracy_pct", "penalty_predicted_nonideal_pct", "fidelity", "device", "wall_s",
]


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
        refined: one row per network trained by online refinement (see `SearchRun.refine_frame`).
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


def atomic_pickle(obj: Any, path: Path) -> None:
    """Pickle ``obj`` to ``path`` atomically: a reader sees the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """Read ``<run_dir>/checkpoint.pkl``; raises `ConfigError` naming ``resume`` if unusable."""
    path = Path(run_dir).expanduser() / CHECKPOINT
    if not path.is_file():
        raise ConfigError(
            f"resume={str(run_dir)!r}: no {CHECKPOINT} there; fix: point resume at the run "
            "directory of an earlier run (e.g. runs/2024-01-31/12-00-00), or drop resume"
        )
    try:
        with path.open("rb") as fh:
            state = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as err:
        raise ConfigError(f"resume={str(run_dir)!r}: {CHECKPOINT} is unreadable ({err})") from err
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ConfigError(
            f"resume={str(run_dir)!r}: {CHECKPOINT} was written by an incompatible version"
        )
    return state


class SearchRun:
    """One search, started fresh (`start`) or from a checkpoint (`resume`), then `run`.

    Args:
        setup: the run's ingredients (`build_search`).
        out_dir: where ``checkpoint.pkl`` is written after every generation.
        on_generation: called as ``on_generation(run, generation)`` after each generation's
            checkpoint is written.
    """

    def __init__(
        self,
        setup: SearchSetup,
        out_dir: str | Path,
        on_generation: Callable[[SearchRun, int], None] | None = None,
    ) -> None:
        self.setup = setup
        self.out_dir = Path(out_dir)
        self.on_generation = on_generation
        self.oracle = AccuracyOracle(
            setup.estimator,
            use_surrogate=setup.budget is not None,
            measured_model=(
                MeasuredAccuracy(setup.backbone, setup.measured_description)
                if setup.refine is not None else None
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
        self.refined: list[dict[str, Any]] = []
        self.rounds_done = 0
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
        if setup.budget is not None:
            n_random = max(setup.budget.initial - len(sample), 0)
            draws = widths[rng.integers(0, len(widths), size=(n_random, space.n_layers))]
            sample = np.concatenate([sample, draws])
        log.info("scoring %d channel configurations with the true accuracy proxy", len(sample))
        self.oracle.measure(sample)
        if setup.budget is not None:
            stats = self.oracle.refit()
            log.info("surrogate fitted on %d: %s", self.oracle.n_measured, _fmt_stats(stats))
        if setup.refine is not None:
            first = self._initial_training(sample)
            self.train(first, np.full(first.n, -1), 0)
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
        self.algorithm = build_algorithm(setup.settings, self.archive, setup.seed)
        self.algorithm.setup(self.problem)
        self.algorithm.data["search_s"] = self._search_s()
        return self

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
        self.refined = list(state["refined"])
        self.rounds_done = int(state["rounds_done"])
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
        while algo.has_next():
            pop = algo.ask()
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
        if self.setup.budget is not None and self.rounds_done < self.setup.budget.rounds:
            last = self.history[-1]["generation"] if self.history else 0
            self._record(last, self._due_rounds(final=True))
            self.checkpoint()
        return self.result()

    def _search_s(self) -> float:
        return self._search_s_before + time.perf_counter() - self._session_start

    def _due_rounds(self, final: bool = False) -> list[dict[str, Any]]:
        budget = self.setup.budget
        fits: list[dict[str, Any]] = []
        if budget is None:
            return fits
        term = self.algorithm.termination
        while self.rounds_done < budget.rounds and (
            final
            or term.has_terminated()
            or term.perc >= (self.rounds_done + 1) / budget.rounds - 1e-9
        ):
            fits.append(self._refit_round(budget.per_round))
            self.rounds_done += 1
        return fits

    def _refit_round(self, k: int) -> dict[str, Any]:
        chosen = self.candidates(k)
        if len(chosen):
            self.oracle.measure(self.setup.space.decode(self.archive.x[chosen]).channels)
        stats = self.oracle.refit()
        log.info(
            "refit round %d: %d new true scores (%d total); surrogate %s",
            self.rounds_done + 1,
            len(chosen),
            self.oracle.n_measured,
            _fmt_stats(stats),
        )
        if self.setup.refine is not None:
            self._repredict()
            channels = self.setup.space.decode(self.archive.x).channels
            picked = self.candidates(self.setup.refine.per_round, self.oracle.trained(channels)[0])
            if len(picked):
                genomes = self.setup.space.decode(self.archive.x[picked])
                self.train(genomes, picked, self.rounds_done + 1)
        self._repredict()
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
        """Train and evaluate ``genomes`` (online refinement), refit the measured-accuracy model.

        Args:
            genomes: the designs to train.
            designs: their archive indices (-1 for designs not in the archive).
            round_: refit round (0 = before the search).

        Returns:
            The new `refine_frame` rows; they are also written to ``refine.csv``.
        """
        channels = genomes.channels
        predicted = (
            self.oracle.accuracy(channels)[0] if self.oracle.uses_measured
            else np.full(genomes.n, np.nan)
        )
        log.info("refine round %d: training %d designs (%s)", round_, genomes.n,
                 self.setup.measured_description)
        rows = self.setup.measure(genomes)
        clean = rows["accuracy_pct"].to_numpy(dtype=float)
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
            "accuracy_pct": clean,
            "nonideal_accuracy_pct": nonideal,
            "penalty_predicted_nonideal_pct": clean - loss,
            "fidelity": rows.get("fidelity", ""),
            "device": rows.get("device", ""),
            "wall_s": rows.get("wall_s", np.nan),
        })
        self.refined.extend(new.to_dict("records"))
        self.oracle.add_trained(channels, clean)
        stats = self.oracle.refit_measured()
        error = np.abs(predicted - clean)
        log.info(
            "refine round %d: clean accuracy %s %%; predicted before training: %s; "
            "measured-accuracy model on %d networks: %s",
            round_,
            ", ".join(f"{v:.1f}" for v in clean),
            f"mean abs error {np.mean(error):.2f} pp" if np.isfinite(error).all() else "-",
            self.oracle.n_trained,
            _fmt_stats(stats),
        )
        self.refine_frame().to_csv(self.out_dir / REFINE_FILE, index=False)
        return new

    def candidates(self, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
        """Archive indices of up to ``k`` designs with distinct channels to score (or train) next.

        Feasible designs not in ``exclude`` (a mask over the archive; default: those with a true
        proxy score); taken front by front, each front spread evenly along EDAP.
        """
        a = self.archive
        remaining = np.flatnonzero((a.cv <= 0) & ~(a.measured if exclude is None else exclude))
        channels = self.setup.space.decode(a.x).channels if len(a) else np.zeros((0, 0))
        f = a.objectives()
        chosen: list[np.ndarray] = []
        chosen_keys = np.zeros(0, dtype=np.uint64)
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
            "version": CHECKPOINT_VERSION,
            "config": self.setup.config,
            "algorithm": self.algorithm,
            "archive": self.archive,
            "oracle": self.oracle.state(),
            "bounds": self.bounds,
            "baseline": (self.baseline_hw, self.baseline_accuracy),
            "history": self.history,
            "refined": self.refined,
            "rounds_done": self.rounds_done,
        }

    def checkpoint(self) -> Path:
        """Write ``checkpoint.pkl`` atomically; returns its path."""
        path = self.out_dir / CHECKPOINT
        problem = self.algorithm.problem
        self.algorithm.problem = None
        try:
            atomic_pickle(self.state(), path)
        finally:
            self.algorithm.problem = problem
        return path

    def history_frame(self) -> pd.DataFrame:
        """Per-generation history: generation, n_evals, n_true_evals, hypervolume (normalised,
        fixed reference), n_nondominated, best_edap (pJ*ns*mm2), elapsed_s, n_trained, refit,
        kendall_tau.
        """
        return pd.DataFrame(self.history)

    def refine_frame(self) -> pd.DataFrame:
        """One row per network trained by online refinement: round (0 = before the search),
        design (archive index, -1 if not archived), channels / input_bits / adc_bits,
        predicted_pct (the search's clean-accuracy prediction before training; empty before the
        first fit), accuracy_pct (measured clean), nonideal_accuracy_pct (measured on the
        crossbar at the design's precisions), penalty_predicted_nonideal_pct (measured clean minus
        the precision penalty model's loss), fidelity, device, wall_s.
        """
        return pd.DataFrame(self.refined, columns=REFINE_COLUMNS)

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
            refined=self.refine_frame(),
        )


def _fmt_stats(stats: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()
    )

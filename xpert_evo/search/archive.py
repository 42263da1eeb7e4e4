"""Every design the search evaluated, its Pareto filter and the fixed-reference hypervolume."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from xpert_evo.accuracy.model import AccuracyEstimate
from xpert_evo.accuracy.rows import find_rows, row_keys

HW_METRICS: tuple[str, ...] = (
    "area_mm2",
    "energy_pj",
    "latency_ns",
    "edap",
    "tops_per_w",
    "tops_per_mm2",
)
"""Hardware metrics kept per design, in the column order of `Archive.hw`."""


def nondominated(f: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of a minimisation matrix ``f`` (N, M).

    Rows with identical objective vectors are all kept when that vector is non-dominated.
    """
    f = np.asarray(f, dtype=float)
    if len(f) == 0:
        return np.zeros(0, dtype=np.int64)
    front = NonDominatedSorting().do(f, only_non_dominated_front=True)
    return np.sort(np.asarray(front, dtype=np.int64))


@dataclass(frozen=True)
class Bounds:
    """Fixed objective normalisation for the hypervolume, derived once from the search space.

    Objectives are normalised as ``(f - ideal) / (nadir - ideal)`` and the hypervolume is taken
    against the fixed reference point 1.1 in every normalised objective.
    """

    ideal: np.ndarray
    nadir: np.ndarray
    ref: float = 1.1

    def normalise(self, f: np.ndarray) -> np.ndarray:
        """Objective matrix (N, 2) -> normalised (N, 2)."""
        span = np.maximum(self.nadir - self.ideal, 1e-12)
        return (np.asarray(f, dtype=float) - self.ideal) / span

    def hypervolume(self, f: np.ndarray) -> float:
        """Hypervolume of the objective rows ``f`` (N, 2) in normalised units (0 if none count)."""
        hv = HV(
            ref_point=np.full(len(self.ideal), self.ref), ideal=self.ideal, nadir=self.nadir,
            zero_to_one=True, norm_ref_point=False,
        )
        return float(hv(np.asarray(f, dtype=float)))


@dataclass
class Archive:
    """Columns of every evaluated design, one row per design (each genome at most once).

    The accuracy columns are the problem's `AccuracyEstimate` under the latest model (a surrogate
    refit or online refinement re-predicts them, `set_accuracy`), in the predictor's units.

    Attributes:
        x: encoded genomes (N, n_var) int.
        generation: generation in which the design was evaluated (1 = initial population).
        hw: hardware metrics (N, len(HW_METRICS)) in `HW_METRICS` units.
        clean: accuracy of the network without the crossbar.
        loss_pp: accuracy the crossbar costs at the design's bits, percentage points.
        net: the accuracy objective (clean - loss in %, clean on a proxy scale).
        std: standard deviation of ``clean``; 0 where it is a true proxy score or trained.
        origin: where ``clean`` comes from (str, one of `xpert_evo.accuracy.model.ORIGINS`).
        cv: constraint violation (0 = feasible), normalised by the budgets.
    """

    n_var: int
    x: np.ndarray = field(init=False)
    generation: np.ndarray = field(init=False)
    hw: np.ndarray = field(init=False)
    clean: np.ndarray = field(init=False)
    loss_pp: np.ndarray = field(init=False)
    net: np.ndarray = field(init=False)
    std: np.ndarray = field(init=False)
    origin: np.ndarray = field(init=False)
    cv: np.ndarray = field(init=False)
    keys: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.x = np.zeros((0, self.n_var), dtype=np.int64)
        self.generation = np.zeros(0, dtype=np.int64)
        self.hw = np.zeros((0, len(HW_METRICS)))
        self.set_accuracy(AccuracyEstimate(*(np.zeros(0) for _ in range(4)),
                                           origin=np.zeros(0, dtype=str)))
        self.cv = np.zeros(0)
        self.keys = row_keys(self.x)

    def __len__(self) -> int:
        return len(self.x)

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask (N,): which encoded genomes ``x`` (N, n_var) are already archived."""
        return find_rows(self.keys, x)[0]

    def accuracy(self) -> AccuracyEstimate:
        """The accuracy columns as one `AccuracyEstimate`."""
        return AccuracyEstimate(self.clean, self.loss_pp, self.net, self.std, self.origin)

    def set_accuracy(self, accuracy: AccuracyEstimate) -> None:
        """Replace the accuracy columns (N,) each, e.g. after a refit re-predicted them."""
        self.clean = np.asarray(accuracy.clean, dtype=float)
        self.loss_pp = np.asarray(accuracy.loss_pp, dtype=float)
        self.net = np.asarray(accuracy.net, dtype=float)
        self.std = np.asarray(accuracy.std, dtype=float)
        self.origin = np.asarray(accuracy.origin, dtype=str)

    def add(
        self,
        x: np.ndarray,
        generation: int,
        hw: np.ndarray,
        accuracy: AccuracyEstimate,
        cv: np.ndarray,
    ) -> None:
        """Append evaluated designs that are not archived yet (``accuracy`` row-aligned with
        ``x``)."""
        x = np.asarray(x, dtype=np.int64)
        new = ~self.contains(x)
        k = row_keys(x[new])
        _, first = np.unique(k, return_index=True)
        idx = np.flatnonzero(new)[np.sort(first)]
        old = self.accuracy()
        self.x = np.concatenate([self.x, x[idx]])
        self.generation = np.concatenate([self.generation, np.full(len(idx), generation)])
        self.hw = np.concatenate([self.hw, np.asarray(hw, dtype=float)[idx]])
        self.set_accuracy(AccuracyEstimate(*(
            np.concatenate([getattr(old, f), np.asarray(getattr(accuracy, f))[idx]])
            for f in ("clean", "loss_pp", "net", "std", "origin")
        )))
        self.cv = np.concatenate([self.cv, np.asarray(cv, dtype=float)[idx]])
        self.keys = np.concatenate([self.keys, row_keys(x[idx])])

    def objectives(self) -> np.ndarray:
        """Minimisation objectives (N, 2): [-net accuracy, log10(EDAP / (pJ*ns*mm2))]."""
        return np.column_stack([-self.net, np.log10(self.hw[:, HW_METRICS.index("edap")])])

    def front(self) -> np.ndarray:
        """Indices of the feasible non-dominated designs, sorted by EDAP ascending."""
        feasible = np.flatnonzero(self.cv <= 0)
        f = self.objectives()[feasible]
        idx = feasible[nondominated(f)]
        edap = self.hw[idx, HW_METRICS.index("edap")]
        return idx[np.lexsort((-self.net[idx], edap))]

"""Every design the search evaluated, its Pareto filter and the fixed-reference hypervolume."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

HW_METRICS: tuple[str, ...] = (
    "area_mm2",
    "energy_pj",
    "latency_ns",
    "edap",
    "tops_per_w",
    "tops_per_mm2",
)
"""Hardware metrics kept per design, in the column order of `Archive.hw`."""

def row_keys(x: np.ndarray) -> np.ndarray:
    """Exact key of each integer row of ``x`` (N, D) -> (N,): the row's bytes (``tobytes``) as one
    numpy void scalar, so keys sort, compare and ``np.isin`` like numbers and never collide.
    """
    x = np.ascontiguousarray(np.asarray(x, dtype=np.int64))
    return x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel()


def find_rows(keys: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the rows of ``x`` (N, D) sit in a table whose rows have the `row_keys` ``keys`` (M,).

    Returns:
        (found mask (N,), table index (N,), meaningful where found).
    """
    if len(keys) == 0 or len(x) == 0:
        return np.zeros(len(x), dtype=bool), np.zeros(len(x), dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    k = row_keys(x)
    pos = np.minimum(np.searchsorted(keys[order], k), len(keys) - 1)
    return keys[order][pos] == k, order[pos]


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

    Attributes:
        x: encoded genomes (N, n_var) int.
        generation: generation in which the design was evaluated (1 = initial population).
        hw: hardware metrics (N, len(HW_METRICS)) in `HW_METRICS` units.
        accuracy: accuracy (est.to_accuracy units: % or proxy scale) under the latest model.
        accuracy_std: surrogate standard deviation in the same units; 0 where measured.
        measured: True where the accuracy is a true proxy evaluation, not a surrogate prediction.
        cv: constraint violation (0 = feasible), normalised by the budgets.
    """

    n_var: int
    x: np.ndarray = field(init=False)
    generation: np.ndarray = field(init=False)
    hw: np.ndarray = field(init=False)
    accuracy: np.ndarray = field(init=False)
    accuracy_std: np.ndarray = field(init=False)
    measured: np.ndarray = field(init=False)
    cv: np.ndarray = field(init=False)
    keys: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.x = np.zeros((0, self.n_var), dtype=np.int64)
        self.generation = np.zeros(0, dtype=np.int64)
        self.hw = np.zeros((0, len(HW_METRICS)))
        self.accuracy = np.zeros(0)
        self.accuracy_std = np.zeros(0)
        self.measured = np.zeros(0, dtype=bool)
        self.cv = np.zeros(0)
        self.keys = row_keys(self.x)

    def __len__(self) -> int:
        return len(self.x)

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask (N,): which encoded genomes ``x`` (N, n_var) are already archived."""
        return find_rows(self.keys, x)[0]

    def add(
        self,
        x: np.ndarray,
        generation: int,
        hw: np.ndarray,
        accuracy: np.ndarray,
        accuracy_std: np.ndarray,
        measured: np.ndarray,
        cv: np.ndarray,
    ) -> None:
        """Append evaluated designs that are not archived yet."""
        x = np.asarray(x, dtype=np.int64)
        new = ~self.contains(x)
        k = row_keys(x[new])
        _, first = np.unique(k, return_index=True)
        idx = np.flatnonzero(new)[np.sort(first)]
        self.x = np.concatenate([self.x, x[idx]])
        self.generation = np.concatenate([self.generation, np.full(len(idx), generation)])
        self.hw = np.concatenate([self.hw, np.asarray(hw, dtype=float)[idx]])
        self.accuracy = np.concatenate([self.accuracy, np.asarray(accuracy, dtype=float)[idx]])
        self.accuracy_std = np.concatenate(
            [self.accuracy_std, np.asarray(accuracy_std, dtype=float)[idx]]
        )
        self.measured = np.concatenate([self.measured, np.asarray(measured, dtype=bool)[idx]])
        self.cv = np.concatenate([self.cv, np.asarray(cv, dtype=float)[idx]])
        self.keys = np.concatenate([self.keys, row_keys(x[idx])])

    def objectives(self) -> np.ndarray:
        """Minimisation objectives (N, 2): [-accuracy, log10(EDAP / (pJ*ns*mm2))]."""
        return np.column_stack([-self.accuracy, np.log10(self.hw[:, HW_METRICS.index("edap")])])

    def front(self) -> np.ndarray:
        """Indices of the feasible non-dominated designs, sorted by EDAP ascending."""
        feasible = np.flatnonzero(self.cv <= 0)
        f = self.objectives()[feasible]
        idx = feasible[nondominated(f)]
        edap = self.hw[idx, HW_METRICS.index("edap")]
        return idx[np.lexsort((-self.accuracy[idx], edap))]

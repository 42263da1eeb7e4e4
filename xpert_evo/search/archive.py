"""Every design the search evaluated, its Pareto filter and the fixed-reference hypervolume."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymoo.indicators.hv import HV

HW_METRICS: tuple[str, ...] = (
    "area_mm2",
    "energy_pj",
    "latency_ns",
    "edap",
    "tops_per_w",
    "tops_per_mm2",
)
"""Hardware metrics kept per design, in the column order of `Archive.hw`."""

_HASH_MULTIPLIERS = np.random.default_rng(20230330).integers(
    1, 2**63 - 1, size=4096, dtype=np.int64
).astype(np.uint64) | np.uint64(1)


def row_keys(x: np.ndarray) -> np.ndarray:
    """64-bit hash of each integer row of ``x`` (N, D) -> (N,) uint64.

    A random odd-multiplier linear hash: two different rows collide with probability ~2**-64,
    so with 1e5 designs a collision is about 1e-9 likely (it would only drop one offspring).
    """
    x = np.asarray(x, dtype=np.int64)
    with np.errstate(over="ignore"):
        h = (x.astype(np.uint64) * _HASH_MULTIPLIERS[: x.shape[1]]).sum(axis=1, dtype=np.uint64)
        h ^= h >> np.uint64(31)
        h *= np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
    return h


def nondominated(f: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of a 2-objective minimisation matrix ``f`` (N, 2).

    Rows with identical objective vectors are all kept when that vector is non-dominated.
    """
    f = np.asarray(f, dtype=float)
    if len(f) == 0:
        return np.zeros(0, dtype=np.int64)
    uniq, inverse = np.unique(f, axis=0, return_inverse=True)
    prev_min = np.minimum.accumulate(np.concatenate([[np.inf], uniq[:-1, 1]]))
    keep = uniq[:, 1] < prev_min
    return np.flatnonzero(keep[inverse.ravel()])


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
        fn = self.normalise(f)
        fn = fn[np.all(fn < self.ref, axis=1)]
        if len(fn) == 0:
            return 0.0
        return float(HV(ref_point=np.full(fn.shape[1], self.ref))(fn))


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
    _sorted_keys: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.x = np.zeros((0, self.n_var), dtype=np.int64)
        self.generation = np.zeros(0, dtype=np.int64)
        self.hw = np.zeros((0, len(HW_METRICS)))
        self.accuracy = np.zeros(0)
        self.accuracy_std = np.zeros(0)
        self.measured = np.zeros(0, dtype=bool)
        self.cv = np.zeros(0)
        self.keys = np.zeros(0, dtype=np.uint64)
        self._sorted_keys = self.keys

    def __len__(self) -> int:
        return len(self.x)

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask (N,): which encoded genomes ``x`` (N, n_var) are already archived."""
        if len(self._sorted_keys) == 0 or len(x) == 0:
            return np.zeros(len(x), dtype=bool)
        k = row_keys(x)
        pos = np.minimum(np.searchsorted(self._sorted_keys, k), len(self._sorted_keys) - 1)
        return self._sorted_keys[pos] == k

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
        self._sorted_keys = np.sort(self.keys)

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

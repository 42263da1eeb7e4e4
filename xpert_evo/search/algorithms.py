"""pymoo algorithms and operators for the integer-encoded co-design space, under spending caps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.algorithm import Algorithm
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.initialization import Initialization
from pymoo.core.population import Population
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from xpert_evo.accuracy.rows import row_keys
from xpert_evo.config import ConfigError, plain_config
from xpert_evo.search.archive import Archive
from xpert_evo.search.termination import affordable, cost_evals_left
from xpert_evo.search.xpert_gd import XPertGD, XPertGDSettings

TERMINATION_KEYS: tuple[str, ...] = ("n_gen", "n_evals", "max_time_s")
"""The keys that stop a search (at least one must be set); a resumed run may change them."""
ALGORITHMS: tuple[str, ...] = ("nsga2", "random", "xpert_gd")
"""The ``algorithm.name`` values (the keys each may set: `xpert_evo.schema.ALGORITHM_NODES`)."""


@dataclass(frozen=True)
class AlgorithmSettings:
    """The ``algorithm`` config node, checked.

    Attributes:
        name: ``nsga2``, ``random`` (uniform random search, the honest baseline) or
            ``xpert_gd`` (XPert's gradient search, `xpert_evo.search.xpert_gd`).
        pop_size: designs per generation (random search: designs sampled per generation).
        n_gen: stop after this many generations (None = no limit).
        n_evals: stop after this many design evaluations (None = no limit).
        max_time_s: stop after this much search wall time in seconds, summed over resumes.
        crossover_prob: probability that a mating pair is recombined (SBX).
        crossover_eta: SBX distribution index (small = offspring further from parents).
        mutation_eta: polynomial-mutation distribution index.
        mutation_prob_var: per-variable mutation probability (None = 1 / n_var).
        gd: the gradient search's settings (``xpert_gd`` only).
    """

    name: str
    pop_size: int
    n_gen: int | None = None
    n_evals: int | None = None
    max_time_s: float | None = None
    crossover_prob: float = 0.9
    crossover_eta: float = 3.0
    mutation_eta: float = 3.0
    mutation_prob_var: float | None = None
    gd: XPertGDSettings | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> AlgorithmSettings:
        """Build from the ``algorithm`` node; raises `ConfigError` naming the bad key."""
        node = dict(plain_config(cfg))
        name = node.get("name")
        if name not in ALGORITHMS:
            raise ConfigError(
                f"algorithm.name={name!r} is unknown; choose algorithm={'|'.join(ALGORITHMS)}"
            )
        for key in ("pop_size", "n_gen", "n_evals"):
            value = node.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigError(f"algorithm.{key}={value!r} must be a positive integer")
        if node.get("pop_size") is None:
            raise ConfigError("algorithm.pop_size is required (designs per generation)")
        if node.get("pop_size") < 2:
            raise ConfigError("algorithm.pop_size must be at least 2")
        if all(node.get(k) is None for k in TERMINATION_KEYS):
            raise ConfigError(
                "the search never stops: set algorithm.n_gen, algorithm.n_evals or "
                "algorithm.max_time_s"
            )
        for key in ("crossover_prob", "mutation_prob_var"):
            value = node.get(key)
            if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
                raise ConfigError(f"algorithm.{key}={value!r} must be a probability in [0, 1]")
        for key in ("crossover_eta", "mutation_eta"):
            value = node.get(key)
            if value is not None and not (isinstance(value, int | float) and value > 0):
                raise ConfigError(f"algorithm.{key}={value!r} must be a positive number")
        time_s = node.get("max_time_s")
        if time_s is not None and (not isinstance(time_s, int | float) or time_s <= 0):
            raise ConfigError(f"algorithm.max_time_s={time_s!r} must be a positive number")
        gd = XPertGDSettings.from_config(node) if name == "xpert_gd" else None
        own = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in node.items() if k in own}, gd=gd)


class ArchiveDuplicateElimination(DuplicateElimination):
    """Drop offspring equal to each other, to the population, or to any design ever evaluated.

    Equality is exact on the integer encoding (a 64-bit row hash); the archive check means no
    genome is evaluated twice, so the evaluation budget counts distinct designs.
    """

    def __init__(self, archive: Archive) -> None:
        super().__init__()
        self.archive = archive

    def _do(self, pop: Any, other: Any, is_duplicate: np.ndarray) -> np.ndarray:
        keys = row_keys(np.asarray(pop.get("X")))
        if other is None:
            _, first = np.unique(keys, return_index=True)
            repeated = np.ones(len(keys), dtype=bool)
            repeated[first] = False
            is_duplicate |= repeated | self.archive.contains(np.asarray(pop.get("X")))
        else:
            is_duplicate |= np.isin(keys, row_keys(np.asarray(other.get("X"))))
        return is_duplicate


class SpendCapped:
    """Mixin for a pymoo `Algorithm`: each generation's offspring are cut to the leading designs
    that the spending caps in ``data["spend_caps"]`` (a `SpendCaps`, or None) still pay for, and
    the cost-model evaluations left are published in ``data["cost_evals_left"]`` for algorithms
    that spend some themselves (xpert_gd)."""

    def infill(self) -> Population | None:
        """pymoo's `Algorithm.infill`, cut to what the caps pay for."""
        caps = self.data.get("spend_caps")
        if caps is None:
            return super().infill()
        self.data["cost_evals_left"] = cost_evals_left(self, caps)
        pop = super().infill()
        if pop is None:
            return pop
        n = affordable(self, pop, caps)
        return pop if n == len(pop) else pop[:n]


class CoDesignNSGA2(SpendCapped, NSGA2):
    """NSGA-II under the spending caps."""


class RandomSearch(SpendCapped, NSGA2):
    """Uniform random search in NSGA-II's clothes: after the initial population every
    generation samples ``pop_size`` fresh designs uniformly from the space (no mating); survival
    only keeps the best for bookkeeping.
    """

    def _infill(self) -> Any:
        uniform = Initialization(
            IntegerRandomSampling(), eliminate_duplicates=self.eliminate_duplicates
        )
        return uniform.do(
            self.problem, self.n_offsprings, algorithm=self, random_state=self.random_state
        )


class CappedXPertGD(SpendCapped, XPertGD):
    """XPert's gradient search under the spending caps."""


def build_algorithm(
    settings: AlgorithmSettings, archive: Archive, seed: int, initial: np.ndarray | None = None
) -> Algorithm:
    """NSGA-II with integer operators (or random search, or XPert's gradient search), archive-wide
    duplicate elimination.

    Operators: the initial population is ``initial`` (encoded genomes (N, n_var), pymoo's
    convention for a given start) or, without it, uniform integer sampling; SBX crossover and
    polynomial mutation on the option indices, rounded back to integers (`RoundingRepair`), as
    pymoo recommends for integer variables. XPert's gradient search makes its own designs.
    """
    common = {
        "pop_size": settings.pop_size,
        "sampling": IntegerRandomSampling() if initial is None else initial,
        "eliminate_duplicates": ArchiveDuplicateElimination(archive),
        "seed": seed,
    }
    if settings.name == "xpert_gd":
        return CappedXPertGD(settings.gd or XPertGDSettings(), archive, seed)
    if settings.name == "random":
        return RandomSearch(**common)
    return CoDesignNSGA2(
        crossover=SBX(
            prob=settings.crossover_prob,
            eta=settings.crossover_eta,
            vtype=float,
            repair=RoundingRepair(),
        ),
        mutation=PM(
            prob=1.0,
            prob_var=settings.mutation_prob_var,
            eta=settings.mutation_eta,
            vtype=float,
            repair=RoundingRepair(),
        ),
        **common,
    )

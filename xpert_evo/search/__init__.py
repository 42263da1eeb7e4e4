"""Multi-objective co-design search: problem, algorithms, surrogate rounds, checkpointed runs."""

from xpert_evo.search.algorithms import AlgorithmSettings, build_algorithm, build_termination
from xpert_evo.search.archive import HW_METRICS, Archive, Bounds, nondominated
from xpert_evo.search.checkpoint import load_checkpoint
from xpert_evo.search.loop import SearchResult, SearchRun, SpendCaps
from xpert_evo.search.oracle import AccuracyOracle
from xpert_evo.search.problem import CoDesignProblem, Constraints
from xpert_evo.search.setup import SearchSetup, build_search

__all__ = [
    "HW_METRICS",
    "AccuracyOracle",
    "AlgorithmSettings",
    "Archive",
    "Bounds",
    "CoDesignProblem",
    "Constraints",
    "SearchResult",
    "SearchRun",
    "SearchSetup",
    "SpendCaps",
    "build_algorithm",
    "build_search",
    "build_termination",
    "load_checkpoint",
    "nondominated",
]

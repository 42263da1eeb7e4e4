"""Multi-objective co-design search: problem, algorithms, callbacks, termination, checkpoints."""

from xpert_evo.search.algorithms import AlgorithmSettings, build_algorithm
from xpert_evo.search.archive import HW_METRICS, Archive, Bounds, nondominated
from xpert_evo.search.checkpoint import load_checkpoint
from xpert_evo.search.loop import SearchResult, SearchRun
from xpert_evo.search.problem import CoDesignProblem, Constraints
from xpert_evo.search.setup import SearchSetup, build_search
from xpert_evo.search.termination import SpendCaps, build_termination

__all__ = [
    "HW_METRICS",
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

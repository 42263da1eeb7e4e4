"""Why a search has an empty front: per constraint, how many evaluated designs met it and the
closest value any design reached."""

from __future__ import annotations

from xpert_evo.config import ConfigError
from xpert_evo.search.archive import HW_METRICS
from xpert_evo.search.loop import SearchResult


class NoFeasibleDesignError(ConfigError):
    """No evaluated design meets every constraint; the message names each constraint, how many
    designs met it and the closest value found."""


def constraint_lines(result: SearchResult) -> list[str]:
    """One phrase per active constraint: ``constraints.area_mm2=10.5: met by 0 of 36 designs,
    smallest found 11.2 mm^2``, from the archive (accuracies under the final models)."""
    setup, archive = result.setup, result.archive
    c = setup.constraints
    hw = archive.hw
    checks = [("area_mm2", c.area_mm2, hw[:, 0], "smallest", " mm^2")]
    if c.latency_ns is not None:
        checks.append(("latency_ns", c.latency_ns, hw[:, HW_METRICS.index("latency_ns")],
                       "smallest", " ns"))
    if c.accuracy_floor is not None:
        checks.append(("accuracy_floor", c.accuracy_floor, archive.net, "largest", ""))
    if c.precision_loss_pp is not None:
        checks.append(("precision_loss_pp", c.precision_loss_pp, archive.loss_pp, "smallest",
                       " pp"))
    lines = []
    for key, limit, values, best, unit in checks:
        met = values >= limit if best == "largest" else values <= limit
        value = values.max() if best == "largest" else values.min()
        lines.append(f"constraints.{key}={limit:g}: met by {int(met.sum())} of {len(values)} "
                     f"designs, {best} found {value:.4g}{unit}")
    smallest = float(setup.cost_model.smallest_area_mm2(setup.space.allowed()))
    lines[0] += f" (the smallest chip this space can make: {smallest:.4g} mm^2)"
    return lines


def check_feasible(result: SearchResult) -> None:
    """Raise `NoFeasibleDesignError` when the search's front is empty, saying why.

    Raises:
        NoFeasibleDesignError: no evaluated design meets every constraint.
    """
    if len(result.front) or not len(result.archive):
        return
    raise NoFeasibleDesignError(
        "no evaluated design meets every constraint, so the front is empty ("
        + "; ".join(constraint_lines(result))
        + "). Fix: relax the constraints no design meets (or that exclude each other); every "
        "evaluated design is in archive.csv"
    )

"""The co-design optimisation problem pymoo solves: two objectives, budget constraints."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from pymoo.core.problem import Problem

from xpert_evo.accuracy.model import AccuracyEstimate, AccuracyPredictor, origins
from xpert_evo.config import ConfigError, plain_config
from xpert_evo.hardware import CostModel
from xpert_evo.search.archive import HW_METRICS
from xpert_evo.space import SearchSpace


@dataclass(frozen=True)
class Constraints:
    """Design budgets; ``None`` switches a budget off.

    Attributes:
        area_mm2: largest allowed chip area in mm^2 (always on).
        latency_ns: largest allowed latency of one inference in ns.
        accuracy_floor: lowest allowed accuracy, in the accuracy estimator's units
            (% when measured accuracies calibrate the proxy, proxy score otherwise).
        precision_loss_pp: largest accuracy loss, in percentage points, that the design's input
            and ADC precisions may cost on the crossbar (the ``penalty`` model's prediction).
    """

    area_mm2: float
    latency_ns: float | None = None
    accuracy_floor: float | None = None
    precision_loss_pp: float | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Constraints:
        """Build from the ``constraints`` config node (its keys: `ConstraintsNode` of
        `xpert_evo.schema.nodes`); raises `ConfigError` naming a value that is not a finite
        positive number."""
        node = plain_config(cfg)
        values: dict[str, float | None] = {}
        for key in (f.name for f in fields(cls)):
            raw = node.get(key)
            if raw is None:
                values[key] = None
                continue
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
                raise ConfigError(f"constraints.{key}={raw!r} must be a finite number or null "
                                  "(null switches the constraint off)")
            if key != "accuracy_floor" and raw <= 0:
                raise ConfigError(f"constraints.{key}={raw} must be positive (or null to disable)")
            values[key] = float(raw)
        if values["area_mm2"] is None:
            raise ConfigError("constraints.area_mm2 is required: set the chip area budget in mm^2")
        return cls(**values)

    @property
    def n_constraints(self) -> int:
        """Number of inequality constraints the problem reports."""
        return (
            1
            + (self.latency_ns is not None)
            + (self.accuracy_floor is not None)
            + (self.precision_loss_pp is not None)
        )


class CoDesignProblem(Problem):
    """Maximise accuracy and minimise EDAP under area (and optional latency/accuracy) budgets.

    Variables: the `SearchSpace` integer encoding (option indices, ``vtype=int``).
    Objectives (both minimised): ``F = [-accuracy, log10(EDAP / (pJ*ns*mm2))]``.
    Constraints (``G <= 0`` feasible, normalised by the budget so they are unit-free):
    ``area/area_mm2 - 1``, then ``latency/latency_ns - 1``,
    ``(accuracy_floor - accuracy) / max(|accuracy_floor|, 1)`` and
    ``precision_loss/precision_loss_pp - 1`` when those budgets are on.

    Accuracy comes from one `AccuracyPredictor.predict` per population: the objective is its net
    accuracy (in %: the clean prediction minus the predicted crossbar loss; on a proxy scale, with
    no percentages to subtract from, the clean score, and the loss can only be bounded, by
    ``constraints.precision_loss_pp``).
    Extra outputs per design: ``hw`` (`HW_METRICS` columns), ``clean``, ``loss_pp``, ``net``,
    ``std`` and ``origin`` (indices into `ORIGINS`), the `AccuracyEstimate`'s fields.
    """

    def __init__(
        self,
        space: SearchSpace,
        cost_model: CostModel,
        accuracy: AccuracyPredictor,
        constraints: Constraints,
    ) -> None:
        super().__init__(
            n_var=space.n_var,
            n_obj=2,
            n_ieq_constr=constraints.n_constraints,
            xl=space.xl,
            xu=space.xu,
            vtype=int,
        )
        self.space = space
        self.cost_model = cost_model
        self.accuracy = accuracy
        self.constraints = constraints

    def _evaluate(self, x: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        genomes = self.space.decode(x)
        rep = self.cost_model.evaluate(genomes, breakdown=False)
        est = self.accuracy.predict(genomes)
        hw = np.column_stack([np.asarray(getattr(rep, m), dtype=float) for m in HW_METRICS])
        c = self.constraints
        g = [hw[:, 0] / c.area_mm2 - 1.0]
        if c.latency_ns is not None:
            g.append(hw[:, HW_METRICS.index("latency_ns")] / c.latency_ns - 1.0)
        if c.accuracy_floor is not None:
            g.append((c.accuracy_floor - est.net) / max(abs(c.accuracy_floor), 1.0))
        if c.precision_loss_pp is not None:
            g.append(est.loss_pp / c.precision_loss_pp - 1.0)
        out["F"] = np.column_stack([-est.net, np.log10(hw[:, HW_METRICS.index("edap")])])
        out["G"] = np.column_stack(g)
        out["hw"] = hw
        out["clean"] = est.clean
        out["loss_pp"] = est.loss_pp
        out["net"] = est.net
        out["std"] = est.std
        out["origin"] = est.origin_codes()


ACCURACY_OUTPUTS: tuple[str, ...] = ("clean", "loss_pp", "net", "std", "origin")
"""The problem's per-design accuracy outputs (the `AccuracyEstimate` fields)."""


def accuracy_of(values: Any) -> AccuracyEstimate:
    """The `AccuracyEstimate` in a pymoo population or a `Problem.evaluate` dictionary holding
    the problem's `ACCURACY_OUTPUTS`."""
    get = values.get
    clean, loss, net, std, codes = (np.asarray(get(k), dtype=float).reshape(-1)
                                    for k in ACCURACY_OUTPUTS)
    return AccuracyEstimate(clean, loss, net, std, origins(codes))

"""XPert's phase-1 co-search (Moitra et al., DAC 2023), re-implemented as a pymoo algorithm.

Every conv layer has, for every gene, a vector of architecture weights (logits) over that
gene's options. The design is the arg-max of each softmax (a one-hot gate per layer and gene).
Each step the loss

    loss(x) = latency(x) / latency(baseline) + area_weight * |area(x) / area_target - 1|

is pushed back through the gates with a straight-through estimator. The working estimator uses
the cost of every single-gene change: c[l, g, k] = loss(x with gene g of layer l set to option k)
(one vectorised cost-model batch of sum_g K_g L genomes), so the logits' gradient is
J_softmax^T c = p * (c - p . c). A design is *accepted* when its area is within
`area_tolerance` of the target and its accuracy is within a window of the baseline's, in the
objective's own units: with a % objective (the measured source), its predicted net accuracy minus
VGG16's predicted net accuracy lies in `accuracy_window_pp`; with a zero-cost proxy, its true proxy
score over the baseline's lies in `proxy_window`. The method returns the lowest-latency accepted
design.

`fixed_precision=True` (the default) keeps every layer's input and ADC bits at the baseline's, as
XPert's phase 1 does (it searches the architecture and the peripherals at the baseline's
precision; phase 2, the precision search, follows separately): the latency loss alone would
otherwise drive every layer to the lowest bits, whose crossbar loss no precision bound admits.

`degenerate=True` reproduces the public code's gate: its backward passes the same value for every
option (the gated cost of the chosen option), a constant vector, and a constant vector through the
softmax Jacobian is zero. The logits then move only by the `noise_std` perturbation each step,
so the search is a random walk filtered by the acceptance test.

Each generation takes `steps_per_gen` steps and hands the distinct new arg-max designs to the
search loop, which evaluates and archives them like any other algorithm's (the acceptance test
reads their latency and area from that evaluation). Cost-model genomes spent on gradients are
counted in `data["n_cost_evals"]`; a generation stops stepping before it would spend more than
`data["cost_evals_left"]` (set by the search loop under a cost cap, `SpendCaps`). True proxy
calls go through the problem's accuracy predictor (`score`: cached, never twice for the same
channels).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.population import Population
from pymoo.operators.survival.rank_and_crowding import RankAndCrowding

from xpert_evo.config import ConfigError, plain_config
from xpert_evo.search.archive import HW_METRICS, Archive
from xpert_evo.space import SearchSpace
from xpert_evo.space.genome import GENE_NAMES, Genomes

PRECISION_GENES: tuple[str, ...] = ("adc_bits", "input_bits")
"""The genes XPert's phase 1 holds at the baseline's values (`XPertGDSettings.fixed_precision`)."""

FROZEN_LOGIT = 1e3
"""A frozen gene's logit for the baseline's option (0 for the others): its arg-max never moves."""


@dataclass(frozen=True)
class XPertGDSettings:
    """Hyper-parameters of the gradient search (``conf/algorithm/xpert_gd.yaml``).

    Attributes:
        lr: SGD learning rate on the logits.
        momentum: SGD momentum.
        area_weight: weight of the area-distance penalty in the loss.
        area_target_fraction: area target as a fraction of ``constraints.area_mm2``.
        area_tolerance: accepted relative distance to the area target (XPert: 5 %).
        proxy_window: (low, high) accepted true-proxy score as fractions of the baseline's score;
            high None = no upper bound. Used when the accuracy is a proxy score.
        accuracy_window_pp: (low, high) accepted predicted net accuracy minus the baseline's, in
            pp; None = unbounded on that side. Used when the accuracy is a % (the default
            -1.0: within one point below VGG16, about the source predictor's error).
        steps_per_gen: gradient steps per generation of the search loop.
        fixed_precision: hold input and ADC bits at the baseline's (XPert's phase 1).
        degenerate: reproduce the public code's zero-gradient gate (a random walk).
        noise_std: standard deviation of the logits' random perturbation per step in degenerate
            mode (the working estimator takes pure gradient steps).
    """

    lr: float = 2.0
    momentum: float = 0.9
    area_weight: float = 1.0
    area_target_fraction: float = 0.9
    area_tolerance: float = 0.05
    proxy_window: tuple[float, float | None] = (0.98, None)
    accuracy_window_pp: tuple[float | None, float | None] = (-1.0, None)
    steps_per_gen: int = 20
    fixed_precision: bool = True
    degenerate: bool = False
    noise_std: float = 0.5

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> XPertGDSettings:
        """The settings in the ``algorithm`` node (other keys are the loop's; which keys the
        node may hold is `XPertGDNode`'s business); values checked."""
        names = {f.name for f in fields(cls)}
        node = {k: v for k, v in plain_config(cfg).items() if k in names}
        windows = {"proxy_window": tuple(node.get("proxy_window", (0.98, None))),
                   "accuracy_window_pp": tuple(node.get("accuracy_window_pp", (-1.0, None)))}
        settings = cls(**{**node, **windows})
        positive = ("lr", "area_weight", "area_target_fraction", "area_tolerance", "steps_per_gen")
        for key in positive:
            if not getattr(settings, key) > 0:
                raise ConfigError(f"algorithm.{key}={getattr(settings, key)!r} must be positive")
        for key in windows:
            if len(getattr(settings, key)) != 2:
                raise ConfigError(f"algorithm.{key} must be [low, high] (null = unbounded)")
        return settings


def spread(bounds: list[float], values: np.ndarray) -> None:
    """Widen the running [min, max] ``bounds`` in place by ``values``."""
    if len(values):
        bounds[0] = min(bounds[0], float(np.min(values)))
        bounds[1] = max(bounds[1], float(np.max(values)))


class XPertGD(Algorithm):
    """Gradient co-search over per-layer, per-gene softmax weights (see module docstring)."""

    def __init__(self, settings: XPertGDSettings, design_archive: Archive, seed: int) -> None:
        super().__init__(seed=seed)
        self.settings = settings
        self.design_archive = design_archive
        self.survival = RankAndCrowding()
        self.space: SearchSpace | None = None
        self.sizes: list[int] = []
        self.frozen: list[bool] = []
        self.logits: list[np.ndarray] = []
        self.velocity: list[np.ndarray] = []
        self.best: dict[str, Any] | None = None

    # ------------------------------------------------------------------ pymoo hooks
    def _setup(self, problem: Any, **kwargs: Any) -> None:
        self.space = problem.space
        self.sizes = [len(self.space.options[g]) for g in GENE_NAMES]
        rng = self.random_state
        self.logits = [rng.normal(size=(self.space.n_layers, k)) for k in self.sizes]
        self.frozen = [self.settings.fixed_precision and g in PRECISION_GENES for g in GENE_NAMES]
        for g, (gene, frozen) in enumerate(zip(GENE_NAMES, self.frozen, strict=True)):
            if frozen:
                self.logits[g] = FROZEN_LOGIT * np.eye(self.sizes[g])[self.baseline_index(gene)]
        self.velocity = [np.zeros_like(t) for t in self.logits]
        self.data.update({"n_cost_evals": 0, "n_accepted": 0, "n_candidates": 0, "n_in_area": 0,
                          "area_mm2_range": [math.inf, -math.inf],
                          "in_area_accuracy_range": [math.inf, -math.inf]})
        base = problem.cost_model.evaluate(self.space.baseline, breakdown=False)
        self.baseline_latency_ns = float(base.latency_ns[0])
        self.percent = bool(problem.accuracy.is_percent)
        self.baseline_score = float(self.window_values(self.space.baseline)[0])
        self.area_target_mm2 = problem.constraints.area_mm2 * self.settings.area_target_fraction

    def _infill(self) -> Population:
        proposed = []
        spent_before = self.data["n_cost_evals"]
        left = self.data.get("cost_evals_left")
        step_cost = 0 if self.settings.degenerate else len(self.neighbours(self.current()))
        for _ in range(self.settings.steps_per_gen):
            x = self.current()
            proposed.append(x)
            spent = self.data["n_cost_evals"] - spent_before + len(np.unique(proposed, axis=0))
            if left is not None and spent + step_cost > left:
                break
            self.gradient_step(x)
        x = np.unique(np.asarray(proposed), axis=0)
        x = x[~self.design_archive.contains(x)]
        return Population.new(X=x)

    def _advance(self, infills: Population | None = None, **kwargs: Any) -> None:
        if infills is not None and len(infills):
            self.accept(infills)
            merged = (
                infills
                if self.pop is None or self.pop is infills
                else Population.merge(self.pop, infills)
            )
            n = min(len(merged), 100)
            self.pop = self.survival.do(
                self.problem, merged, n_survive=n, algorithm=self, random_state=self.random_state
            )

    # the first generation is proposed and taken in like every other
    _initialize_infill = _infill
    _initialize_advance = _advance

    # ------------------------------------------------------------------ the method
    def current(self) -> np.ndarray:
        """The arg-max design as an encoded vector (n_var,)."""
        return np.concatenate([t.argmax(axis=1) for t in self.logits]).astype(np.int64)

    def loss(self, genomes: Genomes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(loss, latency_ns, area_mm2), each (N,), of genomes; counts cost-model evaluations."""
        rep = self.problem.cost_model.evaluate(genomes, breakdown=False)
        self.data["n_cost_evals"] += len(genomes)
        latency = np.asarray(rep.latency_ns, dtype=float)
        area = np.asarray(rep.area_mm2, dtype=float)
        distance = np.abs(area / self.area_target_mm2 - 1.0)
        return (
            latency / self.baseline_latency_ns + self.settings.area_weight * distance,
            latency,
            area,
        )

    def baseline_index(self, gene: str) -> np.ndarray:
        """The baseline's option index (L,) of ``gene`` in every layer."""
        options = list(self.space.options[gene])
        values = np.asarray(getattr(self.space.baseline, gene))[0]
        missing = sorted({int(v) for v in values} - set(options))
        if missing:
            raise ConfigError(
                f"space.baseline.{gene}={missing} is not among space.{gene}={options}: "
                "algorithm.fixed_precision=true holds the baseline's bits; add them to the space "
                "or set algorithm.fixed_precision=false")
        return np.array([options.index(int(v)) for v in values])

    def neighbours(self, x: np.ndarray) -> np.ndarray:
        """All single-gene changes of x, gene-major then layer then option: (sum_g K_g L, n_var),
        frozen genes left out."""
        n_layers = self.space.n_layers
        rows = []
        for g, k in enumerate(self.sizes):
            if self.frozen[g]:
                continue
            block = np.repeat(x[None, :], n_layers * k, axis=0)
            pos = g * n_layers + np.repeat(np.arange(n_layers), k)
            block[np.arange(len(block)), pos] = np.tile(np.arange(k), n_layers)
            rows.append(block)
        return np.concatenate(rows)

    def gradient_step(self, x: np.ndarray) -> None:
        """One momentum step of the logits at the arg-max design ``x`` (n_var,): straight-through
        gradients from the cost of every single-gene change, or, degenerate, noise only."""
        s = self.settings
        rng = self.random_state
        if s.degenerate:
            grads = [np.zeros_like(t) for t in self.logits]
        else:
            costs, _, _ = self.loss(self.space.decode(self.neighbours(x)))
            grads, start = [], 0
            for t, frozen in zip(self.logits, self.frozen, strict=True):
                if frozen:
                    grads.append(np.zeros_like(t))
                    continue
                c = costs[start : start + t.size].reshape(t.shape)
                start += t.size
                p = np.exp(t - t.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                grads.append(p * (c - (p * c).sum(axis=1, keepdims=True)))
        for t, v, g, frozen in zip(self.logits, self.velocity, grads, self.frozen, strict=True):
            if frozen:
                continue
            v *= s.momentum
            v -= s.lr * g
            t += v
            if s.degenerate:
                t += rng.normal(scale=s.noise_std, size=t.shape)

    def window(self) -> tuple[float | None, float | None]:
        """The accepted accuracy range (low, high) in the objective's units; None = open."""
        if self.percent:
            return tuple(None if v is None else self.baseline_score + v
                         for v in self.settings.accuracy_window_pp)
        return tuple(None if v is None else v * self.baseline_score
                     for v in self.settings.proxy_window)

    def outcome_lines(self) -> list[str]:
        """What the method returned and why, in numbers: its candidates' area against the target
        and their accuracy against the acceptance window."""
        d, s = self.data, self.settings
        low, high = self.window()
        in_area = (f"their accuracy {d['in_area_accuracy_range'][0]:.4g}-"
                   f"{d['in_area_accuracy_range'][1]:.4g}" if d["n_in_area"] else
                   "so no accuracy to test")
        lines = [
            f"xpert_gd: {d['n_candidates']} candidate designs, area {d['area_mm2_range'][0]:.4g}"
            f"-{d['area_mm2_range'][1]:.4g} mm2; {d['n_in_area']} within "
            f"{100 * s.area_tolerance:g} % of the {self.area_target_mm2:.4g} mm2 target, "
            f"{in_area} against the window [{low if low is None else f'{low:.4g}'}, "
            f"{high if high is None else f'{high:.4g}'}] (baseline {self.baseline_score:.4g}); "
            f"{d['n_accepted']} accepted"]
        if self.best is None:
            lines.append("xpert_gd returned no design: none of its candidates passed both tests")
        else:
            lines.append(f"xpert_gd returned the lowest-latency accepted design: "
                         f"{self.best['area_mm2']:.4g} mm2, accuracy {self.best['score']:.4g}, "
                         f"latency {self.best['latency_ns']:.4g} ns")
        return lines

    def window_values(self, genomes: Genomes) -> np.ndarray:
        """What the acceptance window reads (N,): the predicted net accuracy in % (the
        objective) when the accuracy is a %, else the true proxy score of the channels."""
        if self.percent:
            return self.problem.accuracy.predict(genomes).net
        return self.problem.accuracy.score(genomes.channels)

    def accept(self, pop: Population) -> None:
        """Apply XPert's acceptance test to evaluated designs; keep the lowest-latency one."""
        s = self.settings
        x = np.asarray(pop.get("X"), dtype=np.int64)
        genomes = self.space.decode(x)
        hw = np.asarray(pop.get("hw"), dtype=float)
        latency = hw[:, HW_METRICS.index("latency_ns")]
        area = hw[:, HW_METRICS.index("area_mm2")]
        in_area = np.abs(area / self.area_target_mm2 - 1.0) <= s.area_tolerance
        self.data["n_candidates"] += len(x)
        self.data["n_in_area"] += int(in_area.sum())
        spread(self.data["area_mm2_range"], area)
        if not in_area.any():
            return
        score = np.full(len(x), np.nan)
        score[in_area] = self.window_values(genomes[in_area])
        spread(self.data["in_area_accuracy_range"], score[in_area])
        low, high = self.window()
        ok = in_area.copy()
        if low is not None:
            ok &= score >= low
        if high is not None:
            ok &= score <= high
        self.data["n_accepted"] += int(ok.sum())
        if ok.any():
            i = int(np.flatnonzero(ok)[np.argmin(latency[ok])])
            if self.best is None or latency[i] < self.best["latency_ns"]:
                self.best = {
                    "x": x[i],
                    "latency_ns": float(latency[i]),
                    "area_mm2": float(area[i]),
                    "score": float(score[i]),
                }

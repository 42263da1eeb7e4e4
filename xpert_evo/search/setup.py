"""Everything a search needs, built from the composed config and checked before any work starts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xpert_evo.accuracy.model import ProxyScorer
from xpert_evo.accuracy.predictor import SourcePredictor
from xpert_evo.accuracy.surrogate import SurrogateBudget
from xpert_evo.accuracy.trained import MIN_FIT
from xpert_evo.config import ConfigError, plain_config, typed_counts
from xpert_evo.crossbar.layer_penalty import MODEL as LAYER_MODEL
from xpert_evo.crossbar.layer_penalty import LayerPenalty
from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.hardware import CostModel, HardwareConfig
from xpert_evo.hardware.layers import check_genes
from xpert_evo.schema import check_config
from xpert_evo.schema.nodes import MeasuredRefineNode, ProxyRefineNode
from xpert_evo.search.algorithms import AlgorithmSettings
from xpert_evo.search.problem import Constraints
from xpert_evo.space import SearchSpace
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import GENE_NAMES, Genomes
from xpert_evo.training.data import DATASETS

log = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1
"""Largest ``seed``: the surrogate passes it to scikit-learn, whose seeds are unsigned 32-bit."""

MeasureFn = Callable[[Genomes], pd.DataFrame]
"""Trains and evaluates genomes; returns one ground-truth row per genome (`accuracy_pct` clean,
`nonideal_accuracy_pct` on the crossbar), as `xpert_evo.training.groundtruth.measure` does."""


def surrogate_budget(accuracy_cfg: Mapping[str, Any]) -> SurrogateBudget | None:
    """The search's true-proxy budget from ``accuracy.budget`` (defaults 64 / 16 / 4); None when
    the accuracy config switches the surrogate off (``accuracy.surrogate: null``): then every new
    channel configuration is scored with the true proxy.
    """
    node = plain_config(accuracy_cfg) or {}
    if node.get("surrogate", {}) in (None, False, "none"):
        return None
    return SurrogateBudget.from_config(node.get("budget"))


@dataclass(frozen=True)
class RefineBudget:
    """Training budget of online refinement (``accuracy.refine=true``).

    Attributes:
        initial: networks trained before the search starts (uniform-width anchors first, then
            the baseline's channels, then the initial proxy sample).
        per_round: top new designs trained in each refit round.
        rounds: refit rounds, spread evenly over the search: the surrogate's
            (``accuracy.budget.rounds``) for a proxy objective, ``accuracy.refine_budget.rounds``
            for ``accuracy=measured``, which has no surrogate.
    """

    initial: int
    per_round: int
    rounds: int

    @classmethod
    def from_config(
        cls, accuracy_cfg: Mapping[str, Any], budget: SurrogateBudget | None
    ) -> RefineBudget | None:
        """The budget from ``accuracy.refine_budget`` when ``accuracy.refine`` is true, else None.
        ``accuracy_cfg`` is typed by its schema (`build_search` checks it first); the budget's
        keys and defaults are the schema's (`MeasuredRefineNode`, `ProxyRefineNode`).

        Raises:
            ConfigError: an unknown budget key, a value that is not an integer >= 0, too few
                initial trainings, or no round to refine in.
        """
        node = plain_config(accuracy_cfg) or {}
        if not node.get("refine", False):
            return None
        given = node.get("refine_budget")
        if node.get("proxy") == "measured":
            values = asdict(typed_counts(MeasuredRefineNode, given, "accuracy.refine_budget"))
            if values["rounds"] < 1 and values["initial"] < 1:
                raise ConfigError(
                    "accuracy.refine=true with accuracy.refine_budget.initial=0 and rounds=0 "
                    "trains nothing; set accuracy.refine_budget.rounds >= 1, or "
                    "accuracy.refine=false"
                )
            return cls(**values)
        values = asdict(typed_counts(ProxyRefineNode, given, "accuracy.refine_budget"))
        if values["initial"] < MIN_FIT:
            raise ConfigError(
                f"accuracy.refine_budget.initial={values['initial']} is too small to fit the "
                f"trained-accuracy model; use at least {MIN_FIT}"
            )
        if budget is None or budget.rounds < 1:
            raise ConfigError(
                "accuracy.refine=true trains designs in the surrogate's refit rounds, but there "
                "are none; fix: keep accuracy.surrogate on and set accuracy.budget.rounds >= 1, "
                "or set accuracy.refine=false"
            )
        return cls(**values, rounds=budget.rounds)


@dataclass
class SearchSetup:
    """The built, checked ingredients of one search run.

    Attributes:
        config: the composed config as plain containers (saved in checkpoints).
        seed: seed of every random choice of the search.
        backbone: conv geometry (input size, classes).
        space: option sets and baseline.
        hardware: hardware parameters.
        cost_model: analytic IMC cost model.
        constraints: budgets.
        settings: algorithm and termination settings.
        budget: surrogate budget, or None to score every new design with the true proxy.
        estimator: the accuracy source (`build_accuracy`): the source predictor, or a proxy with
            its surrogate; each search wraps it in its own predictor (`search_predictor`).
        top_k: designs listed in the summary table.
        penalty: the crossbar precision penalty model, or None (accuracy ignores precisions).
        refine: online-refinement budget, or None (no training during the search); at most
            ``refine.initial + refine.rounds * refine.per_round`` networks are trained.
        measure: trains and evaluates genomes for online refinement (None without refine).
        measured_description: what the trained accuracies are ("cifar10, e5-pc500-w0.25-b64").
        refine_source: with ``accuracy=measured`` and a user source (``accuracy.source_dir``),
            the file of that source online refinement appends its trainings to
            (``<source_dir>/<dataset>-<fidelity>/refine.csv``); None otherwise (the packaged
            source is never written to).
    """

    config: dict[str, Any]
    seed: int
    backbone: Backbone
    space: SearchSpace
    hardware: HardwareConfig
    cost_model: CostModel
    constraints: Constraints
    settings: AlgorithmSettings
    budget: SurrogateBudget | None
    estimator: SourcePredictor | ProxyScorer
    top_k: int = 10
    penalty: PrecisionPenalty | None = None
    refine: RefineBudget | None = None
    measure: MeasureFn | None = None
    measured_description: str = ""
    refine_source: Path | None = None


def build_penalty(node: Mapping[str, Any] | None) -> PrecisionPenalty | LayerPenalty | None:
    """The ``penalty`` config node as a `PrecisionPenalty` or (``layer_penalty_v1``) a
    `LayerPenalty` (None when ``penalty.model`` is null)."""
    node = dict(plain_config(node) or {})
    if node.get("model") is None:
        return None
    if node["model"] == LAYER_MODEL:
        return LayerPenalty.from_config(node)
    if node["model"] != "precision_penalty_v1":
        raise ConfigError(f"penalty.model={node['model']!r} is unknown; use precision_penalty_v1 "
                          f"or {LAYER_MODEL}")
    values = {f.name: node[f.name] for f in fields(PrecisionPenalty) if f.name in node}
    try:
        return PrecisionPenalty(**{k: None if v is None else float(v) for k, v in values.items()})
    except TypeError as err:
        raise ConfigError(f"penalty: {err}; see conf/penalty/*.yaml for the keys") from err


def require_data_root(data: Mapping[str, Any], why: str, fallback: str) -> None:
    """Refuse a ``data.root`` that does not exist, saying `why` the run needs it and the
    `fallback` that does without.

    Raises:
        ConfigError: the folder is missing (or not given).
    """
    root = data.get("root")
    if root is None or not Path(str(root)).expanduser().exists():
        raise ConfigError(
            f"data.root={root!r} does not exist, and {why}. Fix: pass data.root=/path/to/datasets "
            f"(or set XPERT_EVO_DATA), or {fallback}"
        )


def _check_data(data: Mapping[str, Any], trains: bool) -> None:
    """Refuse a missing data root when the run needs real images: to train (online refinement)
    or because the data-free fallback is off."""
    if data.get("allow_data_free", False) and not trains:
        return
    if trains and data.get("dataset") == "none":
        raise ConfigError(
            "accuracy.refine=true trains networks, which needs a data set, but data.dataset=none; "
            "fix: data.dataset=cifar10 (or tinyimagenet), or accuracy.refine=false"
        )
    why = "accuracy.refine=true trains networks on it" if trains else "this run needs it"
    fallback = ("set accuracy.refine=false" if trains
                else "data.allow_data_free=true to use the data-free fallback")
    require_data_root(data, f"{why} ({data.get('dataset')})", fallback)


def build_measure(config: Mapping[str, Any]) -> tuple[MeasureFn, str]:
    """The online-refinement measurement of a composed config, and its description.

    It trains each genome with the ``train:`` budget and evaluates it on the crossbar
    (``crossbar:``, ``hardware:``), appending rows to the ``ground_truth:`` table
    (`xpert_evo.training.groundtruth.measure`).

    Raises:
        ConfigError: an unknown or invalid key in ``train:`` or ``crossbar:``.
    """
    from xpert_evo.crossbar.quantise import CrossbarSpec
    from xpert_evo.training.groundtruth import measure
    from xpert_evo.training.train import TrainSpec

    try:
        spec = TrainSpec.from_config(config.get("train"))
        CrossbarSpec.from_config(config.get("crossbar"), config.get("hardware"))
    except (ValueError, TypeError) as err:
        raise ConfigError(f"train / crossbar config: {err}") from err
    node = {
        key: config.get(key) for key in ("data", "train", "crossbar", "hardware", "ground_truth")
    }
    node.update(seed=config.get("seed", 0), cache_dir=(config.get("accuracy") or {}).get(
        "cache_dir"))
    dataset = (config.get("data") or {}).get("dataset", "cifar10")

    def measure_genomes(genomes: Genomes) -> pd.DataFrame:
        return measure(genomes, node)

    return measure_genomes, f"{dataset}, {spec.fidelity()}"


def build_search(
    cfg: Mapping[str, Any],
    estimator: SourcePredictor | ProxyScorer | None = None,
    measure: MeasureFn | None = None,
) -> SearchSetup:
    """Check the composed config and build the search ingredients; no search work is done.

    Args:
        cfg: the composed Hydra config (or an equivalent plain mapping).
        estimator: an accuracy estimator to use instead of building the configured one
            (tests, benchmarks).
        measure: the online-refinement measurement to use instead of training the configured
            way (tests); only used with ``accuracy.refine=true``.

    Raises:
        ConfigError: unknown key or mistyped value (`check_config`), empty option set, area
            budget below the smallest chip the space can make, missing data root when data are
            required, bad algorithm settings.
        GeneError: a gene value of ``space`` the hardware cannot build (`check_genes`).
    """
    config = plain_config(cfg)
    check_config(config)
    seed = config.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed={seed!r} must be an integer from 0 to {MAX_SEED}")
    data = config.get("data") or {}
    dataset = data.get("dataset", "cifar10")
    if dataset not in (*DATASETS, "none"):
        raise ConfigError(f"data.dataset={dataset!r} is not a data set this search knows; "
                          f"allowed: {', '.join(DATASETS)}, none (data-free proxies)")
    try:
        backbone = Backbone(
            input_size=int(data.get("input_size", 32)),
            num_classes=int(data.get("num_classes", 10)),
        )
    except ValueError as err:
        raise ConfigError(f"data.input_size / data.num_classes: {err}") from err
    space = SearchSpace.from_config(config.get("space") or {}, backbone.n_conv)
    constraints = Constraints.from_config(config.get("constraints") or {})
    settings = AlgorithmSettings.from_config(config.get("algorithm") or {})
    report = config.get("report") or {}
    hardware = HardwareConfig.from_config(config.get("hardware") or {})
    check_genes(hardware, space.options, "space")
    check_genes(hardware, {g: getattr(space.baseline, g)[0] for g in GENE_NAMES}, "space.baseline")
    cost_model = CostModel(hardware, backbone)
    smallest = float(cost_model.smallest_area_mm2(space.allowed()))
    if constraints.area_mm2 < smallest:
        raise ConfigError(
            f"constraints.area_mm2={constraints.area_mm2:g} is below the smallest chip this "
            f"search space can make ({smallest:.4g} mm^2); fix: raise constraints.area_mm2 to at "
            "least that, or allow smaller options in space.*"
        )
    penalty = build_penalty(config.get("penalty"))
    if constraints.precision_loss_pp is not None and penalty is None:
        raise ConfigError(
            "constraints.precision_loss_pp needs a precision penalty model; fix: choose "
            "penalty=crossbar_cifar10, or set constraints.precision_loss_pp=null"
        )
    bound = constraints.precision_loss_pp
    error = None if penalty is None else penalty.heldout_rmse_pp
    if bound is not None and error is not None and bound <= error:
        log.warning(
            "constraints.precision_loss_pp=%g pp is within the precision penalty's held-out error "
            "(RMSE %.2f pp on %d crossbar evaluations): the bound cannot tell designs apart "
            "reliably; the penalty's own bound_pp is %s", bound, error,
            penalty.heldout_rows, (config.get("penalty") or {}).get("bound_pp"))
    budget = surrogate_budget(config.get("accuracy") or {})
    refine = RefineBudget.from_config(config.get("accuracy") or {}, budget)
    trains = refine is not None and measure is None
    description = ""
    if refine is not None:
        configured, description = build_measure(config)
        measure = measure or configured
    _check_data(data, trains=trains)
    fitted_on = (config.get("penalty") or {}).get("dataset")
    if penalty is not None and fitted_on not in (None, dataset):
        raise ConfigError(
            f"penalty.dataset={fitted_on}: this precision-loss fit holds for {fitted_on}, not for "
            f"data.dataset={dataset}. Fit one on {dataset} crossbar evaluations "
            "(bench/calibrate/precision_loss.py) and select it with penalty=<name>, or run "
            "without the crossbar loss: penalty=none constraints.precision_loss_pp=null"
        )
    measured_with = (config.get("penalty") or {}).get("weight_encoding")
    if penalty is not None and measured_with not in (None, hardware.weight_encoding):
        raise ConfigError(
            f"penalty.weight_encoding={measured_with}: this precision-loss fit was measured with "
            f"the {measured_with} weight mapping, not hardware.weight_encoding="
            f"{hardware.weight_encoding}; the two lose very different accuracy at the same ADC "
            "bits (docs/results/weight_encoding.md). Fix: choose the penalty measured with "
            f"{hardware.weight_encoding} (penalty=<name>, see conf/penalty/), or run without "
            "the crossbar loss: penalty=none constraints.precision_loss_pp=null"
        )
    if estimator is None:
        from xpert_evo.accuracy import build_accuracy

        try:
            estimator = build_accuracy(
                config.get("accuracy"), config.get("data"), backbone, seed, cache_dir=None
            )
        except (ValueError, TypeError) as err:
            raise ConfigError(f"accuracy / data config: {err}") from err
    check_predictor_range(space, estimator)
    floor = constraints.accuracy_floor
    if floor is not None and floor > 100 and getattr(estimator, "is_percent", False):
        raise ConfigError(
            f"constraints.accuracy_floor={floor:g} is above 100, and accuracy is in % here "
            f"({estimator.label}); allowed: a floor up to 100, or null"
        )
    refine_source = None
    if refine is not None and isinstance(estimator, SourcePredictor):
        refine_source = _refine_source(config, estimator)
    return SearchSetup(
        config=config,
        seed=seed,
        backbone=backbone,
        space=space,
        hardware=hardware,
        cost_model=cost_model,
        constraints=constraints,
        settings=settings,
        budget=budget,
        estimator=estimator,
        top_k=int(report.get("top_k", 10)),
        penalty=penalty,
        refine=refine,
        measure=measure if refine is not None else None,
        measured_description=description,
        refine_source=refine_source,
    )


def check_predictor_range(
    space: SearchSpace, estimator: SourcePredictor | ProxyScorer
) -> None:
    """Refuse channel counts (``space.channels``, ``space.baseline.channels``) that the accuracy
    predictor of ``accuracy=measured`` never saw in its source networks: its answer there would
    be an extrapolation that nothing checked.

    Raises:
        ConfigError: naming the key, the value and the channel counts the source holds.
    """
    if not isinstance(estimator, SourcePredictor):
        return
    allowed = sorted({int(c) for c in np.unique(estimator.channels)})
    for key, values in (("space.channels", space.options["channels"]),
                        ("space.baseline.channels", space.baseline.channels.ravel())):
        outside = [int(v) for v in values if int(v) not in allowed]
        if outside:
            source = f"{estimator.dataset} networks at {estimator.fidelity}"
            raise ConfigError(
                f"{key}={[int(v) for v in values]}: {outside[0]} channels is outside what the "
                f"accuracy predictor was trained on ({source}); allowed: "
                f"{', '.join(map(str, allowed))} (or an accuracy proxy: accuracy=naswot)"
            )


def _refine_source(config: Mapping[str, Any], estimator: SourcePredictor) -> Path | None:
    """Where online refinement adds its trainings to a measured source (None: the packaged
    source, which is not written to); refuses training at another budget than the source's.
    """
    from xpert_evo.training.data import DataSpec
    from xpert_evo.training.source import source_dir
    from xpert_evo.training.train import TrainSpec

    spec = TrainSpec.from_config(config.get("train"))
    fidelity = estimator.fidelity
    if fidelity != spec.fidelity():
        raise ConfigError(
            f"accuracy.refine=true trains at the train: budget {spec.fidelity()}, but the "
            f"accuracy source is at {fidelity}; its predictor cannot mix the two. Fix: set the "
            f"train.* keys to that budget, or choose a source at {spec.fidelity()} "
            "(accuracy.fidelity=...)"
        )
    root = (config.get("accuracy") or {}).get("source_dir")
    if not root:
        return None
    data = DataSpec.from_config(config.get("data"))
    return source_dir(root, data, spec) / "refine.csv"

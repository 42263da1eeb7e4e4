"""Everything a search needs, built from the composed config and checked before any work starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xpert_evo.accuracy.penalty import PrecisionPenalty
from xpert_evo.backbone import Backbone
from xpert_evo.hardware import CostModel, HardwareConfig
from xpert_evo.search.algorithms import AlgorithmSettings
from xpert_evo.search.oracle import AccuracyEstimator
from xpert_evo.search.problem import Constraints
from xpert_evo.space import ConfigError, SearchSpace, check_keys, plain_config

TOP_KEYS: tuple[str, ...] = (
    "seed",
    "resume",
    "data",
    "constraints",
    "space",
    "hardware",
    "accuracy",
    "algorithm",
    "report",
    "penalty",
)
PENALTY_KEYS: tuple[str, ...] = (
    "model", "a_in", "k_in", "a_adc", "k_adc", "chance_pct", "max_loss_pp", "n_fit", "rmse_pp",
    "source",
)
REPORT_KEYS: tuple[str, ...] = ("top_k",)


@dataclass(frozen=True)
class SurrogateBudget:
    """True-proxy budget of the surrogate-assisted search (NSGANetV2 scheme).

    Attributes:
        initial: channel configurations scored with the true proxy before the search starts.
        per_round: new configurations scored with the true proxy in each refit round.
        rounds: refit rounds, spread evenly over the search (the last one at its end).
    """

    initial: int
    per_round: int
    rounds: int

    @classmethod
    def from_config(cls, accuracy_cfg: Mapping[str, Any]) -> SurrogateBudget | None:
        """The budget from ``accuracy.budget`` (defaults 64 / 16 / 4); None when the accuracy
        config switches the surrogate off (``accuracy.surrogate: null``): then every new channel
        configuration is scored with the true proxy.
        """
        node = plain_config(accuracy_cfg) or {}
        if node.get("surrogate", {}) in (None, False, "none"):
            return None
        budget = {"initial": 64, "per_round": 16, "rounds": 4, **(node.get("budget") or {})}
        values = {}
        for key in ("initial", "per_round", "rounds"):
            value = budget.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"accuracy.budget.{key}={value!r} must be an integer >= 0")
            values[key] = value
        if values["initial"] < 2:
            raise ConfigError(
                f"accuracy.budget.initial={values['initial']} is too small to fit a surrogate; "
                "use at least 2 (typically 50-200)"
            )
        return cls(**values)


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
        estimator: accuracy estimator (true proxy + surrogate).
        top_k: designs listed in the summary table.
        penalty: the crossbar precision penalty model, or None (accuracy ignores precisions).
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
    estimator: AccuracyEstimator
    top_k: int = 10
    penalty: PrecisionPenalty | None = None


def build_penalty(node: Mapping[str, Any] | None) -> PrecisionPenalty | None:
    """The ``penalty`` config node as a `PrecisionPenalty` (None when ``penalty.model`` is null)."""
    node = dict(plain_config(node) or {})
    check_keys(node, PENALTY_KEYS, "penalty")
    if node.get("model") is None:
        return None
    if node["model"] != "precision_penalty_v1":
        raise ConfigError(f"penalty.model={node['model']!r} is unknown; use precision_penalty_v1")
    values = {k: node[k] for k in PENALTY_KEYS if k not in ("model", "source") and k in node}
    try:
        return PrecisionPenalty(**{k: float(v) for k, v in values.items()})
    except TypeError as err:
        raise ConfigError(f"penalty: {err}; see conf/penalty/*.yaml for the keys") from err


def _check_data(data: Mapping[str, Any]) -> None:
    if data.get("allow_data_free", False):
        return
    root = data.get("root")
    if root is None or not Path(str(root)).expanduser().exists():
        raise ConfigError(
            f"data.root={root!r} does not exist, and this run needs the data set "
            f"({data.get('dataset')}). Fix: pass data.root=/path/to/datasets (or set "
            "XPERT_EVO_DATA), or data.allow_data_free=true to use the data-free fallback"
        )


def build_search(
    cfg: Mapping[str, Any], estimator: AccuracyEstimator | None = None
) -> SearchSetup:
    """Check the composed config and build the search ingredients; no search work is done.

    Args:
        cfg: the composed Hydra config (or an equivalent plain mapping).
        estimator: an accuracy estimator to use instead of building the configured one
            (tests, benchmarks).

    Raises:
        ConfigError: unknown key, empty option set, area budget below the smallest chip the space
            can make, missing data root when data are required, bad algorithm settings.
    """
    config = plain_config(cfg)
    check_keys(config, TOP_KEYS, "<top level>")
    seed = config.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r} must be an integer")
    data = config.get("data") or {}
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
    check_keys(report, REPORT_KEYS, "report")
    hardware = HardwareConfig.from_config(config.get("hardware") or {})
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
    budget = SurrogateBudget.from_config(config.get("accuracy") or {})
    _check_data(data)
    if estimator is None:
        from xpert_evo.accuracy import build_accuracy

        try:
            estimator = build_accuracy(
                config.get("accuracy"), config.get("data"), backbone, seed, cache_dir=None
            )
        except (ValueError, TypeError) as err:
            raise ConfigError(f"accuracy / data config: {err}") from err
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
    )

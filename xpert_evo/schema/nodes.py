"""Dataclass schemas of the config nodes (Hydra structured configs).

`SearchConfig` is the schema of ``python -m xpert_evo`` (conf/config.yaml lists ``base_search``
first in its ``defaults``); it types every node, so each group's YAML files are presets of that
node's schema. ``algorithm`` and ``accuracy`` have one schema per option, named first in each
option's ``defaults`` (``base_nsga2``, ``base_proxy``, ...; `xpert_evo.schema.register`).
OmegaConf checks types and refuses unknown keys when Hydra composes the config; ranges and
cross-key checks stay in the code that builds the search (`xpert_evo.search.setup`). Field
comments give units; every key is documented in docs/configuration.md. A value shown here is the
default a preset may leave out; ``MISSING`` (``???``) means every preset must set it.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from xpert_evo.hardware.config import HardwareConfig
from xpert_evo.training.train import TrainSpec


@dataclass
class DataNode:
    """``data:``: which data set, where it lies, and the network geometry it implies."""

    dataset: str = "cifar10"  # cifar10 | tinyimagenet | none (checked after composition)
    root: str = "data"  # folder with the data set or its .zip archive
    input_size: int = 32  # image side, pixels
    num_classes: int = 10  # classifier outputs
    allow_data_free: bool = True  # no data: a proxy scores a noise batch
    download: bool = False  # allow downloading the data set


@dataclass
class ConstraintsNode:
    """``constraints:``: design budgets (null switches one off; finite and > 0 checked later)."""

    area_mm2: float | None = MISSING  # chip area budget, mm^2
    latency_ns: float | None = None  # latency per inference, ns
    accuracy_floor: float | None = None  # in the accuracy objective's units
    precision_loss_pp: float | None = None  # predicted crossbar accuracy loss, pp


@dataclass
class GroundTruthNode:
    """``ground_truth:``: the table of measured accuracies."""

    path: str | None = None  # CSV; null: <cache>/ground_truth.csv
    keep_checkpoints: bool = True  # keep trained weights for reuse


@dataclass
class ReportNode:
    """``report:``: what the summary lists."""

    top_k: int = 10  # front designs in summary.md and on the terminal


@dataclass
class VerifyOptions:
    """What a verification trains and tests (docs/verification.md): the ``verify:`` node of
    ``python -m xpert_evo.verify``; the search's adds its own keys (`VerifyNode`). Ranges and
    role names are checked by `xpert_evo.verify.check_options`."""

    roles: list[str] = field(default_factory=list)  # front roles; [] = none
    seeds: int = 3  # training seeds per design
    baseline: bool = True  # also train the baseline at the same seeds
    alpha: float = 0.05  # one-sided paired t-test level
    walk_budget: int = 3  # further front designs to verify, at most
    n_jobs: int = 1  # trainings at once (processes)


@dataclass
class VerifyNode(VerifyOptions):
    """``verify:`` of the search: stand-alone training of front designs after the search
    ([] roles = off) and the verified rounds during it."""

    test_images: int | None = None  # crossbar test images (null = whole test split)
    rounds: int = 0  # verify-refit-search rounds after the search (0 = none)
    per_round: int = 4  # front designs verified per round


@dataclass
class BaselineNode:
    """``space.baseline:``: the reference design; per gene one value or one per conv layer."""

    name: str = "baseline"
    channels: Any = MISSING  # output channels
    col_share: Any = MISSING  # columns sharing one ADC
    adc_type: Any = MISSING  # flash | sar
    adc_bits: Any = MISSING  # ADC bits
    input_bits: Any = MISSING  # input bits


@dataclass
class SpaceNode:
    """``space:``: option sets per gene (emptiness, duplicates and buildability checked later)."""

    channels: list[int] = MISSING  # output channels per conv layer
    col_share: list[int] = MISSING  # columns sharing one ADC (m)
    adc_type: list[str] = MISSING  # flash | sar
    adc_bits: list[int] = MISSING  # ADC resolution, bits
    input_bits: list[int] = MISSING  # input precision, bits
    baseline: BaselineNode = field(default_factory=BaselineNode)


@dataclass
class AlgorithmNode:
    """``algorithm=random``: what every algorithm sets (termination: null = no limit)."""

    name: str = MISSING  # nsga2 | random | xpert_gd
    pop_size: int = 100  # designs per generation
    n_gen: int | None = None  # generations
    n_evals: int | None = None  # design evaluations
    max_time_s: float | None = None  # search seconds, summed over resumes


@dataclass
class NSGA2Node(AlgorithmNode):
    """``algorithm=nsga2``: plus the variation operators."""

    crossover_prob: float = 0.9  # SBX probability
    crossover_eta: float = 3.0  # SBX distribution index
    mutation_eta: float = 3.0  # polynomial mutation index
    mutation_prob_var: float | None = None  # per variable (null = 1 / n_var)


@dataclass
class XPertGDNode(AlgorithmNode):
    """``algorithm=xpert_gd``: plus the gradient search's settings (`XPertGDSettings`)."""

    lr: float = 2.0
    momentum: float = 0.9
    area_weight: float = 1.0
    area_target_fraction: float = 0.9
    area_tolerance: float = 0.05
    proxy_window: list[float | None] = field(default_factory=lambda: [0.98, None])
    accuracy_window_pp: list[float | None] = field(default_factory=lambda: [-1.0, None])
    fixed_precision: bool = True
    steps_per_gen: int = 20
    degenerate: bool = False
    noise_std: float = 0.5


@dataclass
class PenaltyNode:
    """``penalty:``: a fitted crossbar precision penalty (all null with ``penalty=none``)."""

    fitted: str | None = None  # artifact of the fitted constants (`xpert_evo.schema.fitted`)
    model: str | None = None  # precision_penalty_v1 | layer_penalty_v1 | null (off)
    dataset: str | None = None  # data set it was fitted on
    weight_encoding: str | None = None  # weight mapping it was measured with
    a_in: float | None = None
    k_in: float | None = None
    a_adc: float | None = None
    k_adc: float | None = None
    form: str | None = None  # layer_penalty_v1: its form (xpert_evo.crossbar.layer_penalty)
    alpha: list[float] | None = None  # layer_penalty_v1: input-bit term per layer feature
    beta: list[float] | None = None  # layer_penalty_v1: ADC-bit term per layer feature
    gamma: float | None = None  # layer_penalty_v1: exponent on the summed layer terms
    std_floor_pp: float | None = None  # layer_penalty_v1: std of a prediction at 0 pp, pp
    std_slope: float | None = None  # layer_penalty_v1: std per pp of predicted loss
    xbar_rows: int | None = None  # layer_penalty_v1: crossbar rows of its row-group feature
    chance_pct: float | None = None  # %
    max_loss_pp: float | None = None  # pp
    n_fit: int | None = None  # evaluations fitted
    rmse_pp: float | None = None  # pp
    heldout_rmse_pp: float | None = None  # pp
    heldout_rows: int | None = None
    bound_pp: float | None = None  # default constraints.precision_loss_pp, pp
    source: str | None = None


@dataclass
class CountsNode:
    """``accuracy.budget``: true proxy calls (integers >= 0, checked later)."""

    initial: int = MISSING
    per_round: int = MISSING
    rounds: int = MISSING


@dataclass
class ProxyRefineNode:
    """``accuracy.refine_budget`` of a proxy objective (its rounds are the surrogate's; integers
    >= 0, checked later)."""

    initial: int = 5  # networks trained before the search
    per_round: int = 2  # networks trained per refit round


@dataclass
class MeasuredRefineNode:
    """``accuracy.refine_budget`` of ``accuracy=measured`` (integers >= 0, checked later)."""

    initial: int = 0  # networks trained before the search
    per_round: int = 2  # networks trained per round
    rounds: int = 4  # rounds, spread evenly over the search


@dataclass
class SurrogateNode:
    """``accuracy.surrogate``: the model fitted on true proxy scores."""

    model: str = "extra_trees"
    n_members: int = 32
    cv_folds: int = 5


@dataclass
class AccuracyNode:
    """The keys of every accuracy objective."""

    proxy: str = MISSING  # measured | naswot | synflow | params
    batch_size: int = 128  # images in the proxy batch
    cache_dir: str | None = None
    num_threads: int | None = None
    calibration: str | None = None
    calibration_fidelity: str | None = None
    refine: bool = False
    budget: CountsNode | None = None  # true proxy calls (proxies; experiments set it for all)


@dataclass
class ProxyAccuracyNode(AccuracyNode):
    """``accuracy=naswot|synflow|params``."""

    surrogate: SurrogateNode | None = None
    refine_budget: ProxyRefineNode = field(default_factory=ProxyRefineNode)


@dataclass
class MeasuredAccuracyNode(AccuracyNode):
    """``accuracy=measured``: the predictor of the measured source."""

    source_dir: str | None = None
    fidelity: str | None = None
    model: str = "auto"
    transfer: dict[str, str | None] = field(default_factory=dict)
    surrogate: Any = None  # null: measured accuracies need no surrogate
    refine_budget: MeasuredRefineNode = field(default_factory=MeasuredRefineNode)


@dataclass
class CrossbarNode:
    """``crossbar:``: hardware-aware evaluation of trained networks (`CrossbarSpec`)."""

    per_channel: bool = True
    input_percentile: float = 99.99  # percentile of activations
    adc_percentile: float = 99.9  # percentile of |partial sums|
    calib_images: int = 256
    test_images: int | None = 1000
    batch_size: int = 100
    max_elements: int = 1 << 24  # largest intermediate tensor, elements


def _schema_of(cls: type, name: str) -> type:
    """A mutable dataclass schema (Hydra merges presets into it; ``cls`` may be frozen) with the
    fields (names, types, defaults) of ``cls``; a field without a default is ``MISSING``."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        default = MISSING if f.default is dataclasses.MISSING else f.default
        specs.append((f.name, hints[f.name], field(default=default)))
    schema = dataclasses.make_dataclass(name, specs)
    schema.__module__ = __name__
    return schema


HardwareNode = _schema_of(HardwareConfig, "HardwareNode")
"""``hardware:``: the `HardwareConfig` fields, each required but ``fitted`` (a preset sets them
all)."""

TrainNode = _schema_of(TrainSpec, "TrainNode")
"""``train:``: the `TrainSpec` fields, with its defaults."""


@dataclass
class SearchConfig:
    """The top level of ``python -m xpert_evo`` (conf/config.yaml); groups fill their nodes."""

    seed: int = 0  # 0 .. 2^32 - 1 (checked later)
    resume: str | None = None  # run directory to continue
    data: DataNode = field(default_factory=DataNode)
    constraints: ConstraintsNode = field(default_factory=ConstraintsNode)
    ground_truth: GroundTruthNode = field(default_factory=GroundTruthNode)
    report: ReportNode = field(default_factory=ReportNode)
    verify: VerifyNode = field(default_factory=VerifyNode)
    space: SpaceNode = MISSING
    hardware: HardwareNode = MISSING
    accuracy: Any = MISSING  # the option's own: MeasuredAccuracyNode | ProxyAccuracyNode
    algorithm: Any = MISSING  # the option's own: AlgorithmNode | NSGA2Node | XPertGDNode
    penalty: PenaltyNode = MISSING
    train: TrainNode = MISSING
    crossbar: CrossbarNode = MISSING

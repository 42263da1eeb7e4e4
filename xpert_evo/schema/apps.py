"""Dataclass schemas of the other commands' configs: ``python -m xpert_evo.train``
(conf/train.yaml lists ``base_train``), ``python -m xpert_evo.source`` (conf/source.yaml,
``base_source``), ``python -m xpert_evo.precision`` (conf/precision.yaml, ``base_precision``) and
``python -m xpert_evo.verify`` (conf/verify.yaml, ``base_verify``). Their group nodes
(``hardware``, ``train``, ``crossbar``, ``space``) and the ``ground_truth`` node are the search's
(`xpert_evo.schema.nodes`), and so is the ``data`` node of train, source and precision. Ranges
and cross-key checks stay in the code that reads the nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from xpert_evo.schema.nodes import (
    CrossbarNode,
    DataNode,
    GroundTruthNode,
    HardwareNode,
    SpaceNode,
    TrainNode,
    VerifyOptions,
)


@dataclass
class GenomeNode:
    """``genome:`` of the train command: one design; a gene is one value for every conv layer or
    a list with one per layer (checked against the backbone when it is built)."""

    channels: Any = None  # output channels per conv layer; null: the design comes from design=
    col_share: Any = 8  # columns sharing one ADC
    adc_type: Any = "flash"  # flash | sar
    adc_bits: Any = 6  # ADC bits
    input_bits: Any = 8  # input bits


@dataclass
class TrainConfig:
    """The top level of ``python -m xpert_evo.train`` (conf/train.yaml)."""

    design: str | None = None  # run directory or design CSV; null: genome.*
    design_row: int = 0  # row of a CSV with one design per row
    genome: GenomeNode = field(default_factory=GenomeNode)
    seed: int = 0  # weights, batch order, augmentation
    cache_dir: str | None = None  # null: $XPERT_EVO_CACHE or ~/.cache/xpert_evo
    data: DataNode = field(default_factory=DataNode)
    crossbar_eval: bool = True  # also measure the accuracy on the crossbar
    ground_truth: GroundTruthNode = field(default_factory=GroundTruthNode)
    hardware: HardwareNode = MISSING
    train: TrainNode = MISSING
    crossbar: CrossbarNode = MISSING


@dataclass
class SourceNode:
    """``source:`` of the source command: where the rows go, this process's shard, the plan
    (`xpert_evo.training.source.SourcePlan`)."""

    dir: str | None = None  # null: <cache>/sources
    shard: int = 0  # this process trains plan jobs i with i % n_shards == shard
    n_shards: int = 1
    n_networks: int = 120  # networks in the plan
    seed: int = 2026  # seeds the plan's sample
    noise_networks: int = 5  # the first networks also trained at noise_seeds
    noise_seeds: list[int] = field(default_factory=lambda: [1, 2])
    heldout_seeds: list[int] = field(default_factory=lambda: [1])


@dataclass
class SourceConfig:
    """The top level of ``python -m xpert_evo.source`` (conf/source.yaml)."""

    source: SourceNode = field(default_factory=SourceNode)
    cache_dir: str | None = None  # null: $XPERT_EVO_CACHE or ~/.cache/xpert_evo
    data: DataNode = field(default_factory=DataNode)
    space: SpaceNode = MISSING
    train: TrainNode = MISSING


@dataclass
class PrecisionNode:
    """``precision:`` of the precision-loss table command: where the rows go, this process's
    shard, which source networks and settings (`xpert_evo.crossbar.loss_table`)."""

    dir: str | None = None  # null: <cache>/precision_loss
    source_dir: str | None = None  # folder of <dataset>-<fidelity> sources; null: the packaged ones
    training: str | None = None  # conf/training preset of the source; null: the default source's
    shard: int = 0  # this process measures networks i with i % n_shards == shard
    n_shards: int = 1
    n_networks: int = 40  # the source's first networks (by plan id, seed 0)
    net_ids: list[int] | None = None  # these plan ids instead; null: the first n_networks
    train_seed: int = 0  # the networks' training seed; > 0: a replicate table (<table>-seed<k>)
    settings: int = 8  # precision settings per network (even: random, odd: one-layer sweeps)
    front: str | None = None  # a search's pareto.csv: front settings drawn from its designs' bits
    front_settings: int = 2  # front settings per network (with a front)
    images: int = 2000  # test images per evaluation
    seed: int = 0  # seeds the settings
    sweep_input_bits: int | None = None  # a sweep's other layers; null: the largest searched
    sweep_adc_bits: int | None = None  # a sweep's other layers; null: the largest searched
    num_threads: int | None = None  # torch CPU threads; null: every core
    device: str = "auto"  # auto | cpu | cuda | ...


@dataclass
class PrecisionConfig:
    """The top level of ``python -m xpert_evo.precision`` (conf/precision.yaml)."""

    precision: PrecisionNode = field(default_factory=PrecisionNode)
    cache_dir: str | None = None  # null: $XPERT_EVO_CACHE or ~/.cache/xpert_evo
    data: DataNode = field(default_factory=DataNode)
    space: SpaceNode = MISSING
    hardware: HardwareNode = MISSING
    crossbar: CrossbarNode = MISSING


@dataclass
class VerifyDataNode:
    """``data:`` of the verify command: where the data set lies (the data set itself and its
    geometry are the run's)."""

    root: str = "data"  # folder with the data set or its .zip archive
    download: bool = False  # allow downloading the data set


@dataclass
class VerifyConfig:
    """The top level of ``python -m xpert_evo.verify`` (conf/verify.yaml)."""

    run_dir: str = MISSING  # a directory written by python -m xpert_evo
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    cache_dir: str | None = None  # null: $XPERT_EVO_CACHE or ~/.cache/xpert_evo
    data: VerifyDataNode = field(default_factory=VerifyDataNode)
    ground_truth: GroundTruthNode = field(default_factory=GroundTruthNode)
    crossbar: CrossbarNode = MISSING

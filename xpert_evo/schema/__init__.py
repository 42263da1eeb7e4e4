"""Typed configs: the dataclass schemas of `xpert_evo.schema.nodes` registered in Hydra's
`ConfigStore`, and the check that applies them to a config that did not come through Hydra (a
checkpoint's, a test's plain dict).

Registered names (``conf/<group>/*.yaml`` list theirs first in ``defaults``):

- primary: ``base_search`` -> `SearchConfig` (conf/config.yaml);
- ``algorithm``: ``base_random``, ``base_nsga2``, ``base_xpert_gd`` -> `AlgorithmNode`,
  `NSGA2Node`, `XPertGDNode`;
- ``accuracy``: ``base_measured``, ``base_proxy`` -> `MeasuredAccuracyNode`, `ProxyAccuracyNode`;
- ``hardware``, ``penalty``, ``space``, ``crossbar``, ``training`` (package ``train``): typed by
  the fields of `SearchConfig` (`HardwareNode`, `PenaltyNode`, `SpaceNode`, `CrossbarNode`,
  `TrainNode`), so their YAML files stay plain presets (calibration scripts rewrite the fitted
  ones).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from xpert_evo.config import ConfigError
from xpert_evo.schema.nodes import (
    AlgorithmNode,
    CrossbarNode,
    HardwareNode,
    MeasuredAccuracyNode,
    NSGA2Node,
    PenaltyNode,
    ProxyAccuracyNode,
    SearchConfig,
    SpaceNode,
    TrainNode,
    XPertGDNode,
)

ALGORITHM_NODES: dict[str, type] = {
    "nsga2": NSGA2Node, "random": AlgorithmNode, "xpert_gd": XPertGDNode,
}
"""``algorithm.name`` -> the schema of its node."""

GROUP_NODES: dict[str, type] = {
    "hardware": HardwareNode, "penalty": PenaltyNode, "space": SpaceNode,
    "crossbar": CrossbarNode, "train": TrainNode,
}
"""Top-level key filled by a config group with a single schema -> that schema."""


def register() -> None:
    """Store every schema in Hydra's `ConfigStore` (idempotent); call before composing."""
    cs = ConfigStore.instance()
    cs.store(name="base_search", node=SearchConfig)
    for name, node in ALGORITHM_NODES.items():
        cs.store(group="algorithm", name=f"base_{name}", node=node)
    cs.store(group="accuracy", name="base_measured", node=MeasuredAccuracyNode)
    cs.store(group="accuracy", name="base_proxy", node=ProxyAccuracyNode)


def error_line(err: OmegaConfBaseException) -> str:
    """OmegaConf's type or unknown-key error as one line naming the full key and the fix."""
    key = getattr(err, "full_key", None) or ""
    message = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
    kind = getattr(err, "object_type", None)
    if isinstance(err, ConfigKeyError | ConfigAttributeError) and dataclasses.is_dataclass(kind):
        allowed = [f.name for f in dataclasses.fields(kind)]
        return (f"unknown config key {key}; allowed keys there are {allowed} (fix the spelling "
                "or remove it)")
    return f"config key {key}: {message} (give a value of that type)"


def check_config(config: Mapping[str, Any]) -> None:
    """Check a plain search config (a checkpoint's, a test's) against `SearchConfig`: known keys,
    values of the declared types. The group nodes that depend on the option chosen are checked
    against the schema of that option (``algorithm.name``, ``accuracy.proxy``). Missing keys are
    not an error here (the code that reads them has defaults).

    Raises:
        ConfigError: the first unknown key or mistyped value, named in full (``algorithm.pop_siz``).
    """
    nodes: dict[str, type] = {k: v for k, v in GROUP_NODES.items() if k in config}
    algorithm = config.get("algorithm") or {}
    nodes["algorithm"] = ALGORITHM_NODES.get(algorithm.get("name"), AlgorithmNode)
    accuracy = config.get("accuracy") or {}
    nodes["accuracy"] = (MeasuredAccuracyNode if accuracy.get("proxy") == "measured"
                         else ProxyAccuracyNode)
    try:
        schema = OmegaConf.structured(SearchConfig)
        for key, node in nodes.items():
            schema[key] = OmegaConf.structured(node)
        OmegaConf.merge(schema, OmegaConf.create(dict(config)))
    except OmegaConfBaseException as err:
        raise ConfigError(error_line(err)) from err

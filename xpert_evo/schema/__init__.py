"""Typed configs: the dataclass schemas of `xpert_evo.schema.nodes` and `xpert_evo.schema.apps`
registered in Hydra's `ConfigStore`, Hydra's compose API for the code that needs a preset
(`compose`, `group_node`), the one-line report of a config mistake, and the check that applies
the schemas to a config that did not come through Hydra (a checkpoint's, a test's plain dict).

Registered names (each YAML file lists its schema first in ``defaults``):

- primary: ``base_search`` -> `SearchConfig` (conf/config.yaml), ``base_train`` -> `TrainConfig`
  (conf/train.yaml), ``base_source`` -> `SourceConfig` (conf/source.yaml), ``base_precision`` ->
  `PrecisionConfig` (conf/precision.yaml), ``base_verify`` -> `VerifyConfig` (conf/verify.yaml);
- ``algorithm``: ``base_random``, ``base_nsga2``, ``base_xpert_gd`` -> `AlgorithmNode`,
  `NSGA2Node`, `XPertGDNode`;
- ``accuracy``: ``base_measured``, ``base_proxy`` -> `MeasuredAccuracyNode`, `ProxyAccuracyNode`;
- ``hardware``: ``base_hardware`` -> `HardwareNode` (also at the root, for a hardware file of
  one's own composed alone: ``python -m xpert_evo.cost hardware=FILE.yaml``); ``penalty``:
  ``base_penalty`` -> `PenaltyNode`; ``training`` (package ``train``): ``base_training`` ->
  `TrainNode`; ``crossbar``: ``base_crossbar`` -> `CrossbarNode`; ``space``: ``base_space`` ->
  `SpaceNode`. The fitted constants of the hardware and penalty presets come from artifacts
  (`xpert_evo.schema.fitted`).

Every command registers them (`register`) before Hydra composes its config.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobRuntime
from hydra.errors import (
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
    SearchPathException,
)
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from xpert_evo.config import ConfigError, conf_dir, error_line, plain_config
from xpert_evo.schema.apps import PrecisionConfig, SourceConfig, TrainConfig, VerifyConfig
from xpert_evo.schema.fitted import register_resolver
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

__all__ = ["check_config", "compose", "error_line", "group_node", "hydra_error_line", "one_line",
           "register", "run_main"]

ALGORITHM_NODES: dict[str, type] = {
    "nsga2": NSGA2Node, "random": AlgorithmNode, "xpert_gd": XPertGDNode,
}
"""``algorithm.name`` -> the schema of its node."""

GROUP_NODES: dict[str, type] = {
    "hardware": HardwareNode, "penalty": PenaltyNode, "space": SpaceNode,
    "crossbar": CrossbarNode, "train": TrainNode,
}
"""Top-level key filled by a config group with a single schema -> that schema."""

GROUP_SCHEMAS: dict[str, type] = {
    "hardware": HardwareNode, "penalty": PenaltyNode, "training": TrainNode,
    "crossbar": CrossbarNode, "space": SpaceNode,
}
"""Config group -> the schema its presets list as ``base_<group>``."""

HYDRA_INPUT_ERRORS: tuple[type[Exception], ...] = (
    ConfigCompositionException,
    OverrideParseException,
    SearchPathException,
)
"""Hydra's errors about the command line or a config file (unknown config group, option or key,
a value of the wrong type, an unparsable override; `MissingConfigException` is a composition
error)."""


def register() -> None:
    """Store every schema in Hydra's `ConfigStore` and the ``xpert_evo.fitted`` resolver
    (idempotent); call before composing."""
    cs = ConfigStore.instance()
    cs.store(name="base_search", node=SearchConfig)
    cs.store(name="base_train", node=TrainConfig)
    cs.store(name="base_source", node=SourceConfig)
    cs.store(name="base_precision", node=PrecisionConfig)
    cs.store(name="base_verify", node=VerifyConfig)
    cs.store(name="base_hardware", node=HardwareNode)
    for group, node in GROUP_SCHEMAS.items():
        cs.store(group=group, name=f"base_{group}", node=node)
    for name, node in ALGORITHM_NODES.items():
        cs.store(group="algorithm", name=f"base_{name}", node=node)
    cs.store(group="accuracy", name="base_measured", node=MeasuredAccuracyNode)
    cs.store(group="accuracy", name="base_proxy", node=ProxyAccuracyNode)
    register_resolver()


def one_line(err: BaseException) -> str:
    """An error's message on one line (its non-empty lines joined by spaces)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines) or type(err).__name__


def hydra_error_line(err: Exception) -> str:
    """A Hydra composition error as one line naming the key (and, for an unknown option of a
    group, the group's options; for a key or value the schema refuses, OmegaConf's reason and the
    allowed keys, `error_line`)."""
    text = one_line(err).split(" Config search path:")[0]
    if isinstance(err, MissingConfigException) and err.options and err.missing_cfg_file:
        group, _, name = err.missing_cfg_file.rpartition("/")
        first = str(err).strip().splitlines()[0]
        options = [o for o in err.options if not o.startswith("base_")]  # schemas, not options
        return f"{group}={name}: no such config ({first}); allowed: {', '.join(options)}"
    if isinstance(err, OverrideParseException):
        return f"cannot parse the override {err.override!r}: {text}"
    cause = err.__cause__ or err.__context__  # a preset's error is chained implicitly
    if isinstance(cause, OmegaConfBaseException):
        where = re.match(r"In '([^']+)'", text)  # the config file that holds the key
        return error_line(cause) + (f" (in {where[1]})" if where else "")
    return f"{text} ({one_line(cause)})" if cause is not None and str(cause).strip() else text


def compose(
    config_name: str | None = None, overrides: Sequence[str] = (), config_dir: Path | None = None,
    hydra_config: bool = False,
) -> DictConfig:
    """The config Hydra composes from ``config_dir`` (default: conf/, `conf_dir`), with the schemas
    registered; also inside a running Hydra app, whose own Hydra is put back afterwards.

    Args:
        config_name: the primary config (``config``, ``train``, ...); None: only ``overrides``.
        overrides: Hydra overrides, e.g. ``["+training@train=low_fidelity"]``.
        config_dir: an absolute folder of configs.
        hydra_config: also return the ``hydra`` node, whose ``runtime.choices`` name the option
            each config group got (e.g. ``penalty: crossbar_cifar10_offset``).

    Raises:
        ConfigError: Hydra or the schema refuses it (one line, `hydra_error_line`).
    """
    register()
    hydra = GlobalHydra.instance()
    running = hydra.hydra
    hydra.clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir or conf_dir()), version_base="1.3",
                                   job_name=JobRuntime.instance().get("name")):
            return hydra_compose(config_name=config_name, overrides=list(overrides),
                                 return_hydra_config=hydra_config)
    except HydraException as err:
        raise ConfigError(hydra_error_line(err)) from err
    finally:
        if running is not None:
            GlobalHydra.instance().initialize(running)


def group_node(
    group: str, option: str, package: str | None = None, config_dir: Path | None = None
) -> dict[str, Any]:
    """The node one option of a config group fills, composed alone through its schema and
    resolved (fitted constants included), as plain data: ``group_node("training",
    "low_fidelity", "train")`` is the ``train:`` node of conf/training/low_fidelity.yaml.

    Args:
        group: the config group (``hardware``, ``penalty``, ``training``, ...).
        option: its config (the file name without ``.yaml``).
        package: where the group puts its node (default: the group's name).
        config_dir: the config folder (default conf/).

    Raises:
        ConfigError: no such option, or the schema refuses it.
    """
    package = package or group
    cfg = compose(None, [f"+{group}@{package}={option}"], config_dir)
    try:
        return plain_config(OmegaConf.select(cfg, package))
    except OmegaConfBaseException as err:
        raise ConfigError(error_line(err)) from err


def run_main(task: Callable[[], None]) -> None:
    """Run a ``@hydra.main`` function with Hydra's input errors (`HYDRA_INPUT_ERRORS`: an unknown
    config group, option or key, a value of the wrong type) reported in one line, exit code 2.
    ``HYDRA_FULL_ERROR=1`` keeps Hydra's tracebacks."""
    asked = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then raises its errors instead of exiting 1
    try:
        task()
    except HYDRA_INPUT_ERRORS as err:
        if asked == "1":
            raise
        sys.stderr.write(f"error: {hydra_error_line(err)}\n")
        sys.exit(2)
    except AssertionError as err:  # OmegaConf.update asserts when a key's parent node is null
        if asked == "1" or not _raised_in_omegaconf(err):
            raise
        sys.stderr.write(f"error: {null_parent_line(sys.argv[1:])}\n")
        sys.exit(2)
    finally:
        if asked is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = asked


def _raised_in_omegaconf(err: BaseException) -> bool:
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and "omegaconf" in tb.tb_frame.f_code.co_filename


def null_parent_line(overrides: Sequence[str]) -> str:
    """The message for an override of a key whose parent node is null in the composed config
    (``accuracy.budget.initial=12`` where the chosen accuracy option has ``budget: null``): it
    names the nested overrides given, since OmegaConf's assertion does not."""
    nested = [o.split("=", 1)[0].lstrip("+~") for o in overrides
              if "=" in o and o.split("=", 1)[0].count(".") >= 2 and not o.startswith("hydra.")]
    keys = ", ".join(nested) if nested else "a nested key"
    return (f"cannot set {keys}: a node above the key is null in this configuration (e.g. "
            "accuracy.budget with accuracy=measured, which makes no proxy calls); set the whole "
            "node (key={...}) or choose the option that has the key")


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

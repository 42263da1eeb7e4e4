"""Config files and nodes: where the YAML lives, the error every bad key raises, plain-Python
conversion, and typed nodes: a config node checked by OmegaConf against the dataclass it builds
(`typed`), its errors in one line naming the full key and the fix (`error_line`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    InterpolationResolutionError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

T = TypeVar("T")


def conf_dir(*parts: str) -> Path:
    """The folder of the YAML configs (the Hydra config root), or a path inside it.

    In a source checkout (editable install, or the repository on ``PYTHONPATH``) that is the
    top-level ``conf/``, the place to edit. An installed wheel ships the same files as package
    data in ``xpert_evo/conf/`` (pyproject.toml maps the package ``xpert_evo.conf`` onto
    ``conf/``), found next to this module. Every config path is built here.

    Args:
        parts: path components below the config root, e.g. ``conf_dir("hardware")``.
    """
    package = Path(__file__).resolve().parent
    shipped = package / "conf"
    root = shipped if shipped.is_dir() else package.parent / "conf"
    return root.joinpath(*parts)


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and the fix."""


def plain_config(value: Any) -> Any:
    """OmegaConf containers -> plain Python lists/dicts, interpolations resolved; anything else
    unchanged.

    Raises:
        ConfigError: an interpolation that cannot be resolved or gives a value of the wrong
            type (e.g. a fitted constant, `xpert_evo.schema.fitted`), the key named.
    """
    if isinstance(value, DictConfig | ListConfig):
        try:
            return OmegaConf.to_container(value, resolve=True)
        except OmegaConfBaseException as err:
            raise ConfigError(error_line(err)) from err
    return value


def error_line(err: OmegaConfBaseException) -> str:
    """OmegaConf's type, unknown-key or missing-value error as one line naming the full key and
    the fix (for an unknown key, the keys allowed there)."""
    key = getattr(err, "full_key", None) or ""
    message = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
    kind = getattr(err, "object_type", None)
    if isinstance(err, ConfigKeyError | ConfigAttributeError) and dataclasses.is_dataclass(kind):
        allowed = [f.name for f in dataclasses.fields(kind)]
        return (f"unknown config key {key}; allowed keys there are {allowed} (fix the spelling "
                "or remove it)")
    if isinstance(err, MissingMandatoryValue):
        return f"config key {key} is missing (give it a value)"
    if isinstance(err, InterpolationResolutionError) and not isinstance(err, ValidationError):
        return f"config key {key}: {message}"
    return f"config key {key}: {message} (give a value of that type)"


def typed(
    cls: type[T], node: Mapping[str, Any] | None, key: str, error: type[ConfigError] = ConfigError
) -> T:
    """The dataclass ``cls`` built from config node ``node``, which OmegaConf checks against the
    fields of ``cls`` first: no unknown key, every value of (or convertible to) its field's type,
    every field without a default given. The class's own checks (ranges, choices) then run in
    its constructor.

    Args:
        cls: a dataclass (frozen or not) whose fields are the node's keys.
        node: a dict or DictConfig; None is an empty node.
        key: where the node sits in the config (``train``), so messages name the full key.
        error: the `ConfigError` subclass raised.

    Raises:
        error: an unknown key, a mistyped or a missing value, in one line (`error_line`).
    """
    schema = OmegaConf.structured(cls)
    OmegaConf.set_readonly(schema, False)  # a frozen dataclass makes a read-only node
    root = OmegaConf.create({key: schema})
    OmegaConf.set_readonly(root[key], False)
    try:
        if isinstance(node, DictConfig):  # resolved where it sits (interpolations may leave it)
            node = OmegaConf.to_container(node, resolve=True)
        merged = OmegaConf.merge(root, {key: node or {}})
        values = OmegaConf.to_container(merged[key], resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        raise error(error_line(err)) from err
    return cls(**values)


def typed_counts(cls: type[T], node: Mapping[str, Any] | None, key: str) -> T:
    """`typed` for a dataclass of counts (a budget of proxy calls or trainings): each field
    also an integer >= 0.

    Raises:
        ConfigError: an unknown key, a value that is not an integer (`typed`), or one below 0
            (``<key>.<field>=-1 must be an integer >= 0``).
    """
    counts = typed(cls, node, key)
    for f in dataclasses.fields(counts):
        value = getattr(counts, f.name)
        if value < 0:
            raise ConfigError(f"{key}.{f.name}={value!r} must be an integer >= 0")
    return counts


def original_path(path: str) -> Path:
    """A path from the command line, relative to where the user started the app (Hydra apps
    may run elsewhere); unchanged outside a Hydra app."""
    import hydra

    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    try:
        return Path(hydra.utils.get_original_cwd()) / p
    except ValueError:
        return p

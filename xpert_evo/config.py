"""Reading config nodes: the error every bad key raises, plain-Python conversion, key checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and the fix."""


def plain_config(value: Any) -> Any:
    """OmegaConf containers -> plain Python lists/dicts; anything else unchanged."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a hard dependency
        return value
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def check_keys(node: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Raise `ConfigError` naming the first key of ``node`` that is not in ``allowed``."""
    allowed = tuple(allowed)
    for key in node:
        if key not in allowed:
            raise ConfigError(
                f"unknown config key {where}.{key}; allowed keys of {where} are "
                f"{list(allowed)} (fix the spelling or remove it)"
            )


def check_counts(
    defaults: Mapping[str, int], node: Mapping[str, Any] | None, prefix: str
) -> dict[str, int]:
    """``node`` over ``defaults``: only their keys, each an integer >= 0 (`ConfigError` naming
    ``<prefix>.<key>`` otherwise)."""
    values = {**defaults, **(node or {})}
    check_keys(values, tuple(defaults), prefix)
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{prefix}.{key}={value!r} must be an integer >= 0")
    return values

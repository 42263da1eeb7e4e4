"""Config files and nodes: where the YAML lives, the error every bad key raises, plain-Python
conversion, key checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


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

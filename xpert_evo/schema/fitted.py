"""Fitted constants: artifact files that config presets point to, and the resolver that reads them.

A calibration script (bench/calibrate/) writes the constants it fits into an artifact under
``xpert_evo/fitted/`` (package data, so an installed wheel has them) with `OmegaConf.save`, never
into the presets by hand or by regex. An artifact holds one or more fits, each with where its
constants come from::

    fits:
      <fit name>:
        fitted_by: python bench/calibrate/offset_penalty.py --write-config   # the command
        commit: ca3a9c7                  # the git commit it ran at
        date: '2026-12-04'               # the day it ran
        data: docs/results/weight_encoding.csv   # the data file it was fitted on
        note: ...                        # anything else a reader needs (may be empty)
        constants: {a_in: -13.887, ...}  # name -> value

A preset names its artifact in its ``fitted`` key and takes each fitted value with the
``xpert_evo.fitted`` resolver, so the composed config holds the numbers and the schema types them::

    fitted: penalty/crossbar_cifar10_offset.yaml
    a_in: ${xpert_evo.fitted:a_in}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from xpert_evo.config import ConfigError, error_line

FITTED = Path(__file__).resolve().parents[1] / "fitted"
"""The folder of the artifacts (``xpert_evo/fitted/``); a preset's ``fitted`` key is relative to
it (or an absolute path)."""

RESOLVER = "xpert_evo.fitted"
"""The name presets call: ``${xpert_evo.fitted:<key>}``."""


@dataclass
class Fit:
    """One fit: the constants it produced and where they come from."""

    fitted_by: str = MISSING  # the command that fitted them
    commit: str = MISSING  # git commit the command ran at ("(+ uncommitted changes)" if dirty)
    date: str = MISSING  # YYYY-MM-DD
    data: str = MISSING  # the data file(s) fitted on, relative to the repository
    note: str = ""  # anything else a reader needs: selection of rows, rounding, conversions
    constants: dict[str, Any] = field(default_factory=dict)  # name -> value


@dataclass
class FittedArtifact:
    """An artifact file: its fits by name (each constant in exactly one of them)."""

    fits: dict[str, Fit] = field(default_factory=dict)


def artifact_path(name: str | Path) -> Path:
    """The file of artifact ``name`` (relative to `FITTED`, or absolute)."""
    path = Path(name)
    return path if path.is_absolute() else FITTED / path


def read_artifact(name: str | Path) -> FittedArtifact:
    """Artifact ``name``, checked against `FittedArtifact` (an empty one if the file is not there).

    Raises:
        ConfigError: the file does not hold an artifact (the message names the key).
    """
    path = artifact_path(name)
    if not path.is_file():
        return FittedArtifact()
    try:
        node = OmegaConf.merge(OmegaConf.structured(FittedArtifact), OmegaConf.load(path))
        return OmegaConf.to_object(node)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{path}: {error_line(err)}") from err


def fitted_constants(name: str | Path) -> dict[str, Any]:
    """Every constant of artifact ``name``, over all its fits.

    Raises:
        ConfigError: no such artifact, or a constant that two fits give.
    """
    path = artifact_path(name)
    if not path.is_file():
        raise ConfigError(f"fitted={name}: no artifact at {path} (its calibration script in "
                          "bench/calibrate/ writes it with --write-config)")
    return dict(_constants(path, path.stat().st_mtime_ns))


@lru_cache(maxsize=32)
def _constants(path: Path, mtime_ns: int) -> dict[str, Any]:
    """`fitted_constants` of the file as it was at ``mtime_ns`` (a rewritten file is read again);
    presets resolve one key at a time, so the file is read once, not once per key."""
    constants: dict[str, Any] = {}
    for fit_name, fit in read_artifact(path).fits.items():
        twice = sorted(set(constants) & set(fit.constants))
        if twice:
            raise ConfigError(f"{path}: {twice} appear in two fits (the second is {fit_name})")
        constants.update(fit.constants)
    return constants


def write_fit(name: str | Path, fit_name: str, fit: Fit) -> Path:
    """Put ``fit`` into artifact ``name`` under ``fit_name`` (replacing a fit of that name, keeping
    the others; a constant another fit holds moves to this one), with `OmegaConf.save`. Returns
    the file written."""
    artifact = read_artifact(name)
    for other in artifact.fits.values():
        for key in fit.constants:
            other.constants.pop(key, None)
    fits = {k: v for k, v in artifact.fits.items() if v.constants and k != fit_name}
    path = artifact_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.structured(FittedArtifact({**fits, fit_name: fit})), path)
    return path


def fitted_value(key: str, *, _parent_: DictConfig) -> Any:
    """The resolver ``${xpert_evo.fitted:<key>}``: constant ``key`` of the artifact that the node's
    ``fitted`` key names.

    Raises:
        ConfigError: the node has no ``fitted`` key, or its artifact lacks ``key``.
    """
    name = _parent_.get("fitted")
    if not name:
        raise ConfigError(f"${{{RESOLVER}:{key}}} needs a fitted: key beside it naming the "
                          f"artifact (a file in {FITTED})")
    constants = fitted_constants(name)
    if key not in constants:
        raise ConfigError(f"fitted={name}: no constant {key} in {artifact_path(name)}; it holds "
                          f"{sorted(constants)}")
    return constants[key]


def register_resolver() -> None:
    """Make ``${xpert_evo.fitted:<key>}`` resolvable (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, fitted_value)

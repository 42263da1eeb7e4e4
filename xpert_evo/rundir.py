"""Run directories: a name no other run gets, claimed before Hydra writes into it.

* The default ``hydra.run.dir`` (and ``hydra.sweep.dir``) ends in ``${xpert_evo.run_tag:}``, a
  random tag drawn once per process, so runs started in the same second get different folders
  (``runs/2024-01-31/12-00-00-1a2b3c``).
* `RunDirGuard`, a Hydra callback, claims the run directory before Hydra writes anything there
  (Hydra creates the folder, opens the log and writes ``.hydra/*.yaml`` in ``run_job``, after
  ``on_run_start`` and before the task). A folder that holds a run is refused, exit code 2,
  untouched; the claim is an exclusive ``mkdir`` of ``.hydra/``, so of two runs forced into one
  new folder exactly one gets it.
* `release_run_dir` removes what a refused run wrote (``.hydra/``, its log) and the folders it
  created, as long as the run wrote no output of its own.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from xpert_evo.report.sweep import STATUS_FILE
from xpert_evo.search.checkpoint import CHECKPOINT, PREVIOUS

RUN_TAG_RESOLVER = "xpert_evo.run_tag"
"""OmegaConf resolver of the per-process run tag (`run_tag`), used by conf/config.yaml."""

OUTPUT_MARKERS: tuple[str, ...] = (CHECKPOINT, PREVIOUS, "pareto.csv", "archive.csv", STATUS_FILE)
"""Files only a search run writes: a folder holding one of them holds a run."""

LOG_FILE = "app.log"
"""Hydra's log of ``python -m xpert_evo`` (the job is named after ``xpert_evo/app.py``)."""

_TAG = secrets.token_hex(3)


class RunDirError(Exception):
    """The run directory cannot be used (holds a run, or cannot be created)."""


def run_tag() -> str:
    """Six hex digits drawn once per process: the same for every lookup of one run's
    directory, different (but for a 1 in 16.7 million chance) for two runs."""
    return _TAG


def register_resolvers() -> None:
    """Register ``${xpert_evo.run_tag:}`` (idempotent); call before Hydra composes a config.
    Its value is cached in the config, so a multirun's jobs see the parent's tag."""
    if not OmegaConf.has_resolver(RUN_TAG_RESOLVER):
        OmegaConf.register_new_resolver(RUN_TAG_RESOLVER, run_tag, use_cache=True)


def held_by_run(run_dir: Path, hydra_subdir: str | None = ".hydra") -> list[str]:
    """Which run markers (Hydra's ``.hydra/`` and log, `OUTPUT_MARKERS`) ``run_dir`` holds."""
    names = [*([hydra_subdir] if hydra_subdir else []), LOG_FILE, *OUTPUT_MARKERS]
    return [name for name in names if (run_dir / name).exists()]


@dataclass(frozen=True)
class Claim:
    """What claiming a run directory created.

    Attributes:
        run_dir: the absolute run directory.
        created: folders that did not exist before, outermost first (the run dir last).
        subdir: Hydra's output subdir (``.hydra``) made by the claim, or None.
    """

    run_dir: Path
    created: tuple[Path, ...]
    subdir: Path | None


_CLAIMS: dict[Path, Claim] = {}


def claim_run_dir(run_dir: str | Path, hydra_subdir: str | None = ".hydra") -> Claim:
    """Create ``run_dir`` (if needed) and take it for this run by creating ``hydra_subdir`` in it.

    Raises:
        RunDirError: the folder holds a run (or another run claimed it first), or cannot be
            created; the message names ``hydra.run.dir`` and the path.
    """
    path = Path(run_dir).absolute()
    held = held_by_run(path, hydra_subdir)
    if held:
        raise _refused(path, ", ".join(held))
    created = tuple(reversed([p for p in (path, *path.parents) if not p.exists()]))
    subdir = path / hydra_subdir if hydra_subdir else None
    try:
        path.mkdir(parents=True, exist_ok=True)
        if subdir is not None:
            try:
                subdir.mkdir()
            except FileExistsError as err:
                raise _refused(path, f"{hydra_subdir}, made by another run just now") from err
    except OSError as err:
        raise RunDirError(
            f"hydra.run.dir={str(path)!r}: cannot create it ({err.strerror}: {err.filename}); "
            "fix: make the folder writable, or choose another hydra.run.dir"
        ) from err
    claim = Claim(path, created, subdir)
    _CLAIMS[path] = claim
    return claim


def _refused(path: Path, held: str) -> RunDirError:
    return RunDirError(
        f"hydra.run.dir={str(path)!r} already holds a run ({held}); nothing was written there. "
        "Fix: choose a new hydra.run.dir (or keep the default, unique one); to continue that "
        "run pass resume=<its directory>"
    )


def release_run_dir(run_dir: str | Path) -> bool:
    """Undo the `claim_run_dir` of a run that was refused: close and delete its log, remove
    ``.hydra/`` and every folder the claim created (when empty). Does nothing when the run was
    not claimed in this process or wrote anything else (its outputs stay).

    Returns:
        True when the run directory was removed.
    """
    path = Path(run_dir).absolute()
    claim = _CLAIMS.get(path)
    if claim is None:
        return False
    logs = [h for h in logging.root.handlers if isinstance(h, logging.FileHandler)
            and Path(h.baseFilename).parent == path]
    own = {p.name for p in (claim.subdir, *(Path(h.baseFilename) for h in logs)) if p}
    if any(p.name not in own for p in path.iterdir()):
        return False
    del _CLAIMS[path]
    for handler in logs:
        logging.root.removeHandler(handler)
        handler.close()
        Path(handler.baseFilename).unlink(missing_ok=True)
    if claim.subdir is not None:
        shutil.rmtree(claim.subdir, ignore_errors=True)
    for folder in reversed(claim.created):
        try:
            folder.rmdir()
        except OSError:
            break
    return not path.exists()


def release_claims() -> list[Path]:
    """`release_run_dir` on every directory this process claimed (a run that failed before its
    task started, e.g. when Hydra could not write its own files); returns those directories."""
    claimed = list(_CLAIMS)
    for path in claimed:
        release_run_dir(path)
    return claimed


class RunDirGuard(Callback):
    """Hydra callback: `claim_run_dir` on ``hydra.run.dir`` before Hydra writes into it; a
    refused directory ends the run with one line and exit code 2, nothing written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim the run directory, or exit 2."""
        try:
            claim_run_dir(str(config.hydra.run.dir), config.hydra.output_subdir)
        except RunDirError as err:
            sys.stderr.write(f"error: {err}\n")
            sys.exit(2)

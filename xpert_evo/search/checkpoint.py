"""Checkpoints: the whole search state written after every generation, and read back to resume.

The state (algorithm incl. its RNG, archive, true scores, history, rounds) is pickled atomically
to ``checkpoint.pkl`` in the run directory, so an interrupted run loses at most the generation in
progress and a resumed run with the same config follows exactly the path of an uninterrupted one.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from xpert_evo.config import ConfigError
from xpert_evo.files import atomic_write

CHECKPOINT = "checkpoint.pkl"
CHECKPOINT_VERSION = 3


def save_checkpoint(state: dict[str, Any], run_dir: str | Path) -> Path:
    """Pickle a run ``state`` (see `SearchRun.state`) atomically to ``<run_dir>/checkpoint.pkl``."""
    state = {"version": CHECKPOINT_VERSION, **state}
    return atomic_write(
        Path(run_dir) / CHECKPOINT,
        lambda fh: pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL),
    )


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """Read ``<run_dir>/checkpoint.pkl``; raises `ConfigError` naming ``resume`` if unusable."""
    path = Path(run_dir).expanduser() / CHECKPOINT
    if not path.is_file():
        raise ConfigError(
            f"resume={str(run_dir)!r}: no {CHECKPOINT} there; fix: point resume at the run "
            "directory of an earlier run (e.g. runs/2024-01-31/12-00-00), or drop resume"
        )
    try:
        with path.open("rb") as fh:
            state = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as err:
        raise ConfigError(f"resume={str(run_dir)!r}: {CHECKPOINT} is unreadable ({err})") from err
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ConfigError(
            f"resume={str(run_dir)!r}: {CHECKPOINT} was written by an incompatible version"
        )
    return state

"""Checkpoints: the whole search state written after every generation, and read back to resume.

The state (the pymoo algorithm incl. its RNG, the archive, the predictor's caches and fitted
data, history, rounds) is pickled to ``checkpoint.pkl`` in the run directory, so an interrupted
run loses at most the generation in progress and a resumed run with the same config follows
exactly the path of an uninterrupted one.

A checkpoint file is one header line, ``XPERT_EVO_CHECKPOINT <version> sha256:<hex> <bytes>``,
then the pickled state; reading checks the format version, the length and the checksum, then the
state's shape, before anything is used. Each write goes to a temporary file first; only then does
the previous checkpoint become ``checkpoint.prev.pkl`` and the new one ``checkpoint.pkl``, so the
last two generations' checkpoints are kept and a resume falls back to the older one when the
newer is corrupt or missing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from pathlib import Path
from typing import Any

from xpert_evo.config import ConfigError
from xpert_evo.files import atomic_path
from xpert_evo.search.archive import Archive

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pkl"
PREVIOUS = "checkpoint.prev.pkl"
"""The checkpoint before the last one (kept so that a corrupt newest file loses one generation)."""
CHECKPOINT_VERSION = 5
MAGIC = "XPERT_EVO_CHECKPOINT"
STATE_KEYS: tuple[str, ...] = (
    "config", "algorithm", "archive", "accuracy", "bounds", "baseline", "history", "refined",
    "rounds_done",
)
"""Keys of a search state (`SearchRun.state`)."""


def encode_checkpoint(state: dict[str, Any]) -> bytes:
    """A state as checkpoint bytes: the header line (version, sha256, length), then the pickle."""
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(payload).hexdigest()
    return f"{MAGIC} {CHECKPOINT_VERSION} sha256:{digest} {len(payload)}\n".encode() + payload


def save_checkpoint(state: dict[str, Any], run_dir: str | Path) -> Path:
    """Write a run ``state`` (see `SearchRun.state`) to ``<run_dir>/checkpoint.pkl``.

    The new file is complete on disk before the old ``checkpoint.pkl`` becomes
    ``checkpoint.prev.pkl``; a kill or a full disk at any moment leaves at least one whole
    checkpoint. Returns the path of the new checkpoint.
    """
    run_dir = Path(run_dir)
    data = encode_checkpoint(state)
    current = run_dir / CHECKPOINT
    with atomic_path(current) as tmp:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if current.exists():
            os.replace(current, run_dir / PREVIOUS)
    return current


def decode_checkpoint(data: bytes) -> dict[str, Any]:
    """The state in checkpoint bytes; raises `ValueError` saying what is wrong with them."""
    header, newline, payload = data.partition(b"\n")
    fields = header[:200].decode("ascii", errors="replace").split()
    if not newline or len(fields) != 4 or fields[0] != MAGIC:
        raise ValueError("not an xpert_evo search checkpoint (no checkpoint header; "
                         f"checkpoints before format version {CHECKPOINT_VERSION} had none)")
    if fields[1] != str(CHECKPOINT_VERSION):
        raise ValueError(f"format version {fields[1]}, this xpert_evo reads version "
                         f"{CHECKPOINT_VERSION} (start a new run)")
    if fields[3] != str(len(payload)):
        raise ValueError(f"truncated: {len(payload)} of {fields[3]} bytes")
    if fields[2] != f"sha256:{hashlib.sha256(payload).hexdigest()}":
        raise ValueError("checksum mismatch: the file is corrupt")
    try:
        state = pickle.loads(payload)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as err:
        raise ValueError(f"unreadable pickle ({err})") from err
    check_state(state)
    return state


def check_state(state: object) -> None:
    """Raise `ValueError` unless ``state`` has the shape of a search state."""
    if not isinstance(state, dict):
        raise ValueError(f"holds a {type(state).__name__}, not a search state")
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise ValueError(f"not a search state (no {', '.join(missing)})")
    history = state["history"]
    if not (isinstance(history, list) and history and all(
            isinstance(row, dict) and "generation" in row for row in history)):
        raise ValueError("not a search state (history holds no generation)")
    if not isinstance(state["archive"], Archive) or not isinstance(state["config"], dict):
        raise ValueError("not a search state (archive or config of the wrong type)")


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """The newest usable checkpoint of ``run_dir``: ``checkpoint.pkl``, or when that is missing
    or fails its checks, ``checkpoint.prev.pkl`` (logged with the reason).

    Raises:
        ConfigError: naming ``resume`` and why neither file can be used.
    """
    where = Path(run_dir).expanduser()
    paths = [where / name for name in (CHECKPOINT, PREVIOUS)]
    if not any(p.is_file() for p in paths):
        raise ConfigError(
            f"resume={str(run_dir)!r}: no {CHECKPOINT} there; fix: point resume at the run "
            "directory of an earlier run (e.g. runs/2024-01-31/12-00-00-1a2b3c), or drop resume"
        )
    problems = []
    for path in paths:
        try:
            state = decode_checkpoint(path.read_bytes())
        except FileNotFoundError:
            problems.append(f"{path.name}: missing")
        except (OSError, ValueError) as err:
            problems.append(f"{path.name}: {err}")
        else:
            if problems:
                log.warning("resume=%s: %s; resuming from %s (generation %d) instead", run_dir,
                            "; ".join(problems), path.name, state["history"][-1]["generation"])
            return state
    raise ConfigError(f"resume={str(run_dir)!r}: no usable checkpoint ({'; '.join(problems)}); "
                      "fix: point resume at another run, or start a new run")

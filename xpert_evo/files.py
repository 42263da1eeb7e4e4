"""Writing a file so that a reader, or a crash, never sees half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` atomically: a reader sees the old file or the new one, never a part.

    ``write`` fills a binary file handle (``lambda fh: pickle.dump(obj, fh)``,
    ``frame.to_csv(fh, index=False)``, ``np.savez(fh, ...)``, ``torch.save(obj, fh)``); the
    bytes go to a temporary file in the same folder, are flushed to disk, and the file is
    renamed into place. The folder is created if missing. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path

"""Writing a file so that a reader, or a crash, never sees half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_UMASK = os.umask(0o022)
os.umask(_UMASK)
"""The process's umask: a written file gets the permissions a plain ``open`` would give it."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file next to ``path`` for a writer that takes a file name; renamed onto
    ``path`` when the block ends without an error, removed otherwise.

    The temporary name keeps ``path``'s suffix (``.pareto-x1y2.csv``), so writers that choose a
    format by suffix still work. The folder is created if missing. An `OSError` (disk full, no
    write permission) is re-raised naming ``path``, not the temporary file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix or ".tmp",
                                    dir=path.parent)
        os.close(fd)
        os.chmod(name, 0o666 & ~_UMASK)
    except OSError as err:
        raise _naming(err, path) from err
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise _naming(err, path) from err
    finally:
        tmp.unlink(missing_ok=True)


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` as the same kind of error about ``path`` (when it has an errno to carry)."""
    if err.errno is None:
        return err
    return OSError(err.errno, err.strerror, str(path))


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` atomically: a reader sees the old file or the new one, never a part.

    ``write`` fills a binary file handle (``lambda fh: pickle.dump(obj, fh)``,
    ``frame.to_csv(fh, index=False)``, ``np.savez(fh, ...)``, ``torch.save(obj, fh)``); the
    bytes go to a temporary file in the same folder, are flushed to disk, and the file is
    renamed into place (`atomic_path`). Returns ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def atomic_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (`atomic_write`); returns ``path``."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))

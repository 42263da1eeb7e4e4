"""What the commands that read a user's CSV share (`python -m xpert_evo.predict`,
`python -m xpert_evo.cost`): reading the file, checking its integer cells, writing the result.

Every problem is a `TableError` whose one-line message names the file, or the row (1 = the first
data row) and the column of the cell, and the allowed values; the commands print it with
`refuse` and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from xpert_evo.files import atomic_write

SNIFF_BYTES = 1 << 16
"""How much of an input is searched for NUL bytes (64 KiB): text never holds one, and almost
every binary format (zip, pickle, npz, PNG) has one in its first block."""

EXACT = 2.0**53
"""Integers a float64 cell holds exactly; a larger one is refused as out of range without
being converted (every allowed range is far smaller)."""


class TableError(ValueError):
    """A user table, cell or output path a command cannot use; the message is one line naming
    the file, or the row and column, and the allowed values."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one `error:` line and exit code 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        """Print `message` as one line naming the argument and exit with code 2."""
        self.exit(refuse(f"{message} (see {self.prog} --help)"))


def refuse(message: object) -> int:
    """Print ``message`` as one ``error:`` line on stderr and return the exit code 2."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    return 2


def read_csv(path: str | Path, **options: object) -> pd.DataFrame:
    """The rows of a user's CSV file (``options`` go to `pandas.read_csv`).

    Raises:
        TableError: the file is missing, a folder, empty, binary or not UTF-8, not a CSV table,
            or has a header but no data rows.
    """
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: no such file")
    if not path.is_file():
        raise TableError(f"{path}: not a file")
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
        if not head.strip():
            raise TableError(f"{path}: the file is empty; expected a CSV with a header row and "
                             "data rows")
        if b"\0" in head:
            raise TableError(f"{path}: a binary file, not a CSV text file")
        frame = pd.read_csv(path, encoding="utf-8", **options)
    except UnicodeDecodeError:
        raise TableError(f"{path}: not UTF-8 text (a binary file, or a CSV saved in another "
                         "encoding such as latin-1: save it as UTF-8)") from None
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: no header row (only blank lines)") from None
    except pd.errors.ParserError as err:
        raise TableError(f"{path}: not a CSV table: {err}") from None
    except OSError as err:
        raise TableError(f"{path}: cannot read it ({err.strerror})") from None
    if frame.empty:
        raise TableError(f"{path}: a header but no data rows")
    return frame


def allowed_text(allowed: range | Sequence[int]) -> str:
    """Allowed values as text: ``"2..16"`` for a range of step 1, else ``"1, 2, 4"``."""
    if isinstance(allowed, range) and allowed.step == 1:
        return f"{allowed.start}..{allowed.stop - 1}"
    return ", ".join(str(int(v)) for v in allowed)


def integers(
    cells: pd.Series | Sequence[object],
    allowed: range | Sequence[int],
    where: Callable[[int], str],
    why: Callable[[int], str] | None = None,
) -> np.ndarray:
    """The cells as int64, each an integer in ``allowed`` (a range, or the allowed values).

    A cell may be an int, or text or a float holding an integer ("64", "64.0"); "64.9", "inf",
    text, blanks and values outside ``allowed`` are refused. Vectorised over the cells (the cost
    command checks a million rows this way).

    Args:
        cells: the cells, in order.
        allowed: the values allowed.
        where: index of a cell -> where it is, e.g. ``"data.csv: row 3, column 'cin'"``.
        why: an integer outside ``allowed`` -> why it is refused (default "V is out of range"
            for a range, "V is not allowed" for a list of values).

    Raises:
        TableError: ``<where>: <what is wrong>; allowed: <allowed_text>`` for the first bad cell.
    """
    series = cells if isinstance(cells, pd.Series) else pd.Series(list(cells), dtype=object)
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    whole = np.isfinite(values) & (values == np.round(values))
    if isinstance(allowed, range) and allowed.step == 1:
        inside = (values >= allowed.start) & (values < allowed.stop)
    else:
        inside = np.isin(values, np.asarray(list(allowed), dtype=np.float64))
    bad = ~(whole & inside)
    if not bad.any():
        return values.astype(np.int64)
    i = int(np.flatnonzero(bad)[0])
    cell = series.iloc[i]
    cell = cell.item() if isinstance(cell, np.generic) else cell
    if pd.isna(cell) or not str(cell).strip():
        what = "blank cell"
    elif not whole[i]:
        what = f"{cell!r} is not an integer"
    elif abs(values[i]) >= EXACT:
        what = f"{cell!r} is out of range"
    elif why is not None:
        what = why(int(values[i]))
    else:
        refused = "out of range" if isinstance(allowed, range) else "not allowed"
        what = f"{int(values[i])} is {refused}"
    raise TableError(f"{where(i)}: {what}; allowed: {allowed_text(allowed)}")


def check_out(path: str | Path) -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    Raises:
        TableError: ``path`` is a folder or not a regular file, or its folder is not a folder
            or not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise TableError(f"--out {path}: a folder; give a file name")
    if path.exists() and not path.is_file():
        raise TableError(f"--out {path}: not a regular file (a device, pipe or socket)")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise TableError(f"--out {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TableError(f"--out {path}: the folder {folder} is not writable")
    return path


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` (no index) to ``path`` atomically (`xpert_evo.files.atomic_write`): a
    reader sees the old file or the whole new one; on failure the old file is kept.

    Raises:
        TableError: the file cannot be written (the path and the reason named).
    """
    path = check_out(path)
    try:
        return atomic_write(path.resolve(), lambda fh: frame.to_csv(fh, index=False))
    except OSError as err:
        raise TableError(f"--out {path}: cannot write it ({err.strerror})") from None

"""Integer rows as exact keys, and a table of values keyed by channel configuration.

The search asks for the accuracy of whole populations; every cache on that path (the source
predictor's predictions, the true proxy scores, the trained networks) is a `RowTable`, looked up
for a whole batch in one vectorised call.
"""

from __future__ import annotations

import numpy as np


def row_keys(x: np.ndarray) -> np.ndarray:
    """Exact key of each integer row of ``x`` (N, D) -> (N,): the row's bytes (``tobytes``) as one
    numpy void scalar, so keys sort, compare and ``np.isin`` like numbers and never collide.
    """
    x = np.ascontiguousarray(np.asarray(x, dtype=np.int64))
    return x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel()


def find_rows(keys: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the rows of ``x`` (N, D) sit in a table whose rows have the `row_keys` ``keys`` (M,).

    Returns:
        (found mask (N,), table index (N,), meaningful where found).
    """
    if len(keys) == 0 or len(x) == 0:
        return np.zeros(len(x), dtype=bool), np.zeros(len(x), dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    k = row_keys(x)
    pos = np.minimum(np.searchsorted(keys[order], k), len(keys) - 1)
    return keys[order][pos] == k, order[pos]


class RowTable:
    """Values (M, K) keyed by distinct integer rows (M, L), e.g. channel configurations.

    Attributes:
        rows: the keyed rows (M, L), in the order they were added.
        values: their values (M, K), float.
    """

    def __init__(self, n_values: int = 1) -> None:
        self.n_values = n_values
        self.clear()

    def __len__(self) -> int:
        return len(self.values)

    def lookup(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask (N,), values (N, K), NaN where not found) of rows (N, L)."""
        found, index = find_rows(self.keys, np.asarray(rows, dtype=np.int64))
        values = np.full((len(found), self.values.shape[1]), np.nan)
        values[found] = self.values[index[found]]
        return found, values

    def add(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Append distinct rows (N, L) that are not in the table yet, with values (N, K); a row
        already held keeps its first value."""
        rows = np.atleast_2d(np.asarray(rows, dtype=np.int64))
        values = np.asarray(values, dtype=float).reshape(len(rows), -1)
        found, _ = self.lookup(rows)
        _, first = np.unique(rows, axis=0, return_index=True)
        new = np.zeros(len(rows), dtype=bool)
        new[first] = True
        new &= ~found
        if not new.any():
            return
        held = self.rows if len(self) else np.zeros((0, rows.shape[1]), dtype=np.int64)
        self.rows = np.concatenate([held, rows[new]])
        self.values = np.concatenate([self.values, values[new]])
        self.keys = row_keys(self.rows)

    def clear(self) -> None:
        """Forget every row (a refitted model's old answers are stale)."""
        self.rows = np.zeros((0, 0), dtype=np.int64)
        self.values = np.zeros((0, self.n_values))
        self.keys = np.zeros(0)

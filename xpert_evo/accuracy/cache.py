"""Proxy scores cached in memory and in an SQLite file, so no architecture is scored twice.

A key names everything a score depends on: proxy name and version, the batch identity (data set,
format, batch size, seed, or data-free noise), input size, classes, initialisation seed and the
channel tuple. The disk file survives across runs; every write is one SQLite transaction, so a
crash or a concurrent run never leaves a half-written entry. A cache that cannot be written
(read-only file or folder, full disk) raises `CacheError` naming the file; a rolled-back write
when the cache is opened finds a read-only one before any architecture is scored.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_FILE = "proxy_scores.sqlite"
"""File name of the disk cache inside the cache directory."""


class CacheError(OSError):
    """The score cache file cannot be opened, read or written; the message names it."""


def cache_key(
    proxy: str,
    version: int,
    batch_identity: str,
    input_size: int,
    num_classes: int,
    seed: int,
    channels: Sequence[int],
) -> str:
    """The string naming one proxy score, e.g. `naswot@1|cifar10/...|s32|c10|seed0|64,64,...`."""
    chans = ",".join(str(int(c)) for c in channels)
    return f"{proxy}@{version}|{batch_identity}|s{input_size}|c{num_classes}|seed{seed}|{chans}"


class ScoreCache:
    """Scores by key, in memory and (when `path` is given) in an SQLite file.

    Attributes:
        path: the SQLite file, or None for a memory-only cache.
        memory_hits: lookups answered from memory.
        disk_hits: lookups answered from the file (then kept in memory too).
        misses: lookups nobody could answer (the caller computes and `put`s them).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._memory: dict[str, float] = {}
        self.memory_hits = 0
        self.disk_hits = 0
        self.misses = 0
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = self._connect()
            except (OSError, sqlite3.Error) as err:
                raise self._error("open", err) from err
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL)")
                conn.commit()
                # a write that is rolled back: a read-only file or folder fails here, not mid-search
                conn.execute("INSERT OR REPLACE INTO scores (key, score) VALUES ('.probe', 0)")
                conn.rollback()
            except sqlite3.Error as err:
                raise self._error("write", err) from err
            finally:
                conn.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60.0)

    def _error(self, doing: str, err: Exception) -> CacheError:
        return CacheError(
            f"proxy score cache {self.path}: cannot {doing} it ({err}); fix: make it writable, "
            "or point accuracy.cache_dir (or $XPERT_EVO_CACHE) at a writable folder"
        )

    def get_many(self, keys: Iterable[str]) -> dict[str, float]:
        """The cached scores among `keys`; counts one hit or miss per distinct key."""
        wanted = list(dict.fromkeys(keys))
        found = {k: self._memory[k] for k in wanted if k in self._memory}
        self.memory_hits += len(found)
        rest = [k for k in wanted if k not in found]
        if rest and self.path is not None:
            conn = self._connect()
            try:
                for start in range(0, len(rest), 500):
                    chunk = rest[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        f"SELECT key, score FROM scores WHERE key IN ({marks})", chunk
                    ).fetchall()
                    for key, score in rows:
                        found[key] = float(score)
                        self._memory[key] = float(score)
                        self.disk_hits += 1
            except sqlite3.Error as err:
                raise self._error("read", err) from err
            finally:
                conn.close()
        self.misses += sum(1 for k in rest if k not in found)
        return found

    def put_many(self, scores: Mapping[str, float]) -> None:
        """Store scores in memory and, in one transaction, on disk."""
        self._memory.update({k: float(v) for k, v in scores.items()})
        if self.path is not None and scores:
            conn = self._connect()
            try:
                with conn:
                    conn.executemany(
                        "INSERT OR REPLACE INTO scores (key, score) VALUES (?, ?)",
                        [(k, float(v)) for k, v in scores.items()],
                    )
            except sqlite3.Error as err:
                raise self._error("write", err) from err
            finally:
                conn.close()

    def stats(self) -> dict[str, int]:
        """Hit and miss counts so far, and the number of scores held in memory."""
        return {
            "memory_hits": self.memory_hits,
            "disk_hits": self.disk_hits,
            "misses": self.misses,
            "in_memory": len(self._memory),
        }

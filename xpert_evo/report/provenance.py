"""Where a results file came from: the command, the git commit, the date and the machine."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository root (the commit is read from here)."""


def stamp(extra: str = "") -> str:
    """One provenance line: "produced by `python <argv>` at commit <sha>[ (+ uncommitted
    changes)], <date time>, <host> (<cores> cores[, extra])"."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = " (+ uncommitted changes)" if git("status", "--porcelain",
                                              "--untracked-files=no") else ""
    more = f", {extra}" if extra else ""
    return (f"produced by `python {' '.join(sys.argv)}` at commit {commit}{dirty}, "
            f"{dt.datetime.now():%Y-%m-%d %H:%M}, {platform.node()} ({os.cpu_count()} "
            f"cores{more})")

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
PACKAGE = Path(__file__).resolve().parents[1]
CODE = ("*.py", "*.yaml", "*.toml", "xpert_evo", "conf")
"""What the "(+ uncommitted changes)" flag looks at: code, configuration and the packaged data,
not the results files that the scripts themselves write into the tree."""


def command() -> str:
    """The running command as typed: ``python -m xpert_evo.sweep ...`` for a module of this
    package (Python puts the module's file path in ``sys.argv[0]``), else ``python <argv>``."""
    args = list(sys.argv)
    main = Path(args[0]).resolve() if args and args[0] else None
    if main is not None and main.is_relative_to(PACKAGE) and main.suffix == ".py":
        parts = main.relative_to(PACKAGE.parent).with_suffix("").parts
        args[0] = "-m " + ".".join(parts[:-1] if parts[-1] == "__main__" else parts)
    return "python " + " ".join(args)


def stamp(extra: str = "") -> str:
    """One provenance line: "produced by `python <argv>` at commit <sha>[ (+ uncommitted
    changes)], <date time>, <host> (<cores> cores[, extra])"; the flag means that `CODE`
    differs from the commit."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = " (+ uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no",
                                              "--", *CODE) else ""
    more = f", {extra}" if extra else ""
    return (f"produced by `{command()}` at commit {commit}{dirty}, "
            f"{dt.datetime.now():%Y-%m-%d %H:%M}, {platform.node()} ({os.cpu_count()} "
            f"cores{more})")

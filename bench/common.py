"""What the bench scripts share: where their files go, the app's configuration (composed by Hydra
through the schemas), stamped results files and fitted-constant artifacts.

The scripts sit one folder down by kind (`calibrate/`: fit what the package ships; `studies/`:
results that answer a question; `timing/`: speed and memory) and import this module after
putting bench/ on the path::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
    from common import RESULTS, write_stamped  # noqa: E402
"""

from __future__ import annotations

import datetime as dt
import math
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from xpert_evo.report.provenance import CODE, command, stamp
from xpert_evo.schema import compose, group_node
from xpert_evo.schema.fitted import Fit, write_fit

REPO = Path(__file__).resolve().parents[1]
"""The repository root."""

DOCS = REPO / "docs"
"""The documentation folder: figures the docs show (`*.png`) go here."""

RESULTS = DOCS / "results"
"""Where every script writes its results files (stamped `.md`, `.csv`, plots it links)."""

DATASETS = REPO.parent / "shared" / "datasets"
"""The default `--data-root`: the data sets beside the repository (`../shared/datasets`)."""


def app_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The configuration `python -m xpert_evo <overrides>` composes (conf/config.yaml with
    Hydra ``key=value`` overrides), without a run directory."""
    return compose("config", overrides)


def load_conf(group: str, name: str = "default") -> dict[str, Any]:
    """The node of one shipped preset, ``conf/<group>/<name>.yaml``, composed by Hydra through
    its schema (fitted constants resolved), as plain data."""
    return group_node(group, name)


def bound_pp(heldout_rmse_pp: float) -> int:
    """A penalty's default precision bound (``bound_pp``, the default
    ``constraints.precision_loss_pp``): the smallest whole pp above its held-out RMSE (pp), so the
    bound never sits within the model's error."""
    return math.floor(heldout_rmse_pp) + 1


def save_fit(artifact: str, fit_name: str, constants: Mapping[str, Any], data: str,
             note: str = "") -> Path:
    """Write fitted ``constants`` into ``artifact`` (`xpert_evo.schema.fitted`, e.g.
    ``penalty/crossbar_cifar10_offset.yaml``) as fit ``fit_name``, with where they come from:
    the running command, the git commit (flagged when the code differs from it) and today's
    date, the ``data`` file they were fitted on and a ``note``. Returns the file written."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", *CODE)
    commit = (git("rev-parse", "--short", "HEAD") or "unknown") + (
        " (+ uncommitted changes)" if dirty else "")
    fit = Fit(fitted_by=command(), commit=commit, date=f"{dt.date.today():%Y-%m-%d}", data=data,
              note=note, constants=dict(constants))
    path = write_fit(artifact, fit_name, fit)
    print(f"wrote {', '.join(constants)} into {path}")
    return path


def write_stamped(path: Path, lines: Sequence[str], extra: str = "") -> str:
    """Write a results file: the provenance line (`stamp`: command, commit, date, machine and
    ``extra``) as an HTML comment, then ``lines``, one per line. Returns the text written."""
    text = "\n".join([f"<!-- {stamp(extra)} -->", *lines])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def replace_section(path: Path, name: str, lines: Sequence[str], extra: str = "") -> None:
    """Rewrite the part of a hand-written document (the README) that a script owns: everything
    between the lines ``<!-- <name>: begin ... -->`` and ``<!-- <name>: end -->`` becomes the
    provenance line (`stamp`, as in `write_stamped`) and ``lines``.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    text = path.read_text()
    begin, end = f"<!-- {name}: begin", f"<!-- {name}: end -->"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"{path} has no '{begin} ... -->' ... '{end}' section")
    head = text[:start] + f"{begin}; {stamp(extra)} -->"
    path.write_text("\n".join([head, *lines, text[stop:]]))

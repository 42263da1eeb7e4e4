"""What the bench scripts share: where their files go, the app's configuration, stamped results.

The scripts sit one folder down by kind (`calibrate/`: fit what the package ships; `studies/`:
results that answer a question; `timing/`: speed and memory) and import this module after
putting bench/ on the path::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
    from common import RESULTS, write_stamped  # noqa: E402
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from xpert_evo.config import conf_dir
from xpert_evo.report.provenance import stamp

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
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def load_conf(group: str, name: str = "default") -> dict[str, Any]:
    """One shipped config file, ``conf/<group>/<name>.yaml``, as plain data."""
    return yaml.safe_load(conf_dir(group, f"{name}.yaml").read_text())


def write_stamped(path: Path, lines: Sequence[str], extra: str = "") -> str:
    """Write a results file: the provenance line (`stamp`: command, commit, date, machine and
    ``extra``) as an HTML comment, then ``lines``, one per line. Returns the text written."""
    text = "\n".join([f"<!-- {stamp(extra)} -->", *lines])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text

"""The tables of one run (CSV + run.json) and the top-designs summary table built from them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xpert_evo.files import atomic_text, atomic_write
from xpert_evo.space.genome import GENE_COLUMNS

RATIO_COLUMNS: tuple[str, ...] = ("edap_reduction_x", "tops_per_w_x", "tops_per_mm2_x")
"""Ratios against the baseline: baseline EDAP / EDAP, TOPS/W / baseline's, TOPS/mm2 / baseline's."""


def accuracy_column(label: str) -> str:
    """CSV column name for accuracy values with this label, e.g.
    ``"naswot_score (proxy scale, not %)"`` -> ``"naswot_score_proxy_scale_not_pct"``.
    """
    text = label.replace("%", "pct").lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "accuracy"


@dataclass
class RunTables:
    """Everything a report or a re-plot needs from one run.

    Attributes:
        pareto: one row per feasible non-dominated design (``pareto.csv``).
        archive: one row per evaluated design (``archive.csv``).
        history: one row per generation (``history.csv``).
        meta: run facts (``run.json``): ``accuracy_column``, ``accuracy_label``,
            ``accuracy_source``, ``baseline`` (dict of its metrics), ``config``, ``versions``...
    """

    pareto: pd.DataFrame
    archive: pd.DataFrame
    history: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def acc(self) -> str:
        """Name of the accuracy column."""
        return str(self.meta.get("accuracy_column", "accuracy"))

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write pareto.csv, archive.csv, history.csv and run.json into ``out_dir``, each
        atomically (`xpert_evo.files.atomic_write`)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, frame in (
            ("pareto", self.pareto),
            ("archive", self.archive),
            ("history", self.history),
        ):
            path = atomic_write(out / f"{name}.csv",
                                lambda fh, frame=frame: frame.to_csv(fh, index=False))
            paths.append(path)
        meta = json.dumps(self.meta, indent=2, default=json_default) + "\n"
        paths.append(atomic_text(out / "run.json", meta))
        return paths

    @classmethod
    def load(cls, run_dir: str | Path) -> RunTables:
        """Read the tables a run wrote into ``run_dir``."""
        run = Path(run_dir)
        missing = [n for n in ("pareto.csv", "history.csv") if not (run / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{run} has no {', '.join(missing)}: is it a run directory?")
        meta = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
        archive = run / "archive.csv"
        return cls(
            pareto=pd.read_csv(run / "pareto.csv"),
            archive=pd.read_csv(archive) if archive.is_file() else pd.DataFrame(),
            history=pd.read_csv(run / "history.csv"),
            meta=meta,
        )


def json_default(value: Any) -> Any:
    """`json.dumps` default for numpy scalars and arrays and paths."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def compact_genes(text: object) -> object:
    """A dash-joined per-layer gene string, shortened when every layer has the same value:
    "8-8-...-8" (13 layers) -> "8x13", "flash-...-flash" -> "flash x13"; anything else is
    returned unchanged."""
    if not isinstance(text, str) or "-" not in text:
        return text
    values = text.split("-")
    if len(set(values)) > 1:
        return text
    return f"{values[0]}{'' if values[0].isdigit() else ' '}x{len(values)}"


def summary_table(tables: RunTables, top_k: int = 10) -> pd.DataFrame:
    """Baseline first, then the named front designs (knee, best EDAP, best accuracy, best EDAP at
    no less accuracy than the baseline) and designs spread evenly along the front, at most
    ``top_k`` front rows in all.

    Columns: design, role, accuracy (the run's accuracy column) and its std, accuracy_from
    (``trained``, ``proxy``: scored by the true proxy, ``surrogate``: predicted),
    precision_loss_pp (when the run has a precision penalty), area_mm2, edap, the
    `RATIO_COLUMNS`, and the dash-joined genes (`GENE_COLUMNS`; `compact_genes`: "8x13" when every
    layer has the same value).
    """
    acc, front = tables.acc, tables.pareto
    cols = [
        "design", "role", acc, f"{acc}_std", "accuracy_from", "precision_loss_pp", "area_mm2",
        "edap", *RATIO_COLUMNS, *GENE_COLUMNS.values(),
    ]
    if "precision_loss_pp" not in front:
        cols.remove("precision_loss_pp")
    base = tables.meta.get("baseline", {})
    rows = [
        {
            **{c: base.get(c, np.nan) for c in cols},
            "design": base.get("name", "baseline"),
            "role": "baseline",
            acc: base.get("accuracy", np.nan),
            f"{acc}_std": base.get("accuracy_std", np.nan),
            **dict.fromkeys(RATIO_COLUMNS, 1.0),
        }
    ]
    if len(front):
        named = front[front["role"].fillna("").astype(str) != ""]
        spread_n = max(top_k - len(named), 0)
        positions = np.unique(np.round(np.linspace(0, len(front) - 1, spread_n)).astype(int))
        picked = pd.concat([named, front.iloc[positions]]).drop_duplicates("design").head(top_k)
        picked = picked.sort_values("edap")
        rows.extend(picked[cols].to_dict("records"))
    table = pd.DataFrame(rows, columns=cols)
    for column in GENE_COLUMNS.values():
        table[column] = table[column].map(compact_genes)
    return table


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-markdown table (pandas ``to_markdown``): floats to 4 significant digits, NaN and
    infinities as "-"."""
    finite = frame.replace([np.inf, -np.inf], np.nan)
    cells = finite.astype(object).where(finite.notna(), None)
    return cells.to_markdown(index=False, floatfmt=".4g", missingval="-")

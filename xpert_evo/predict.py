"""`python -m xpert_evo.predict DESIGNS.csv --out OUT.csv`: predicted accuracy of your own designs.

Input: a CSV with a ``channels`` column (the 13 output channels, dash-joined, e.g.
``64-64-128-...``), optional ``input_bits`` and ``adc_bits`` (13 dash-joined values or one value
for every layer; default 8 and 6, the VGG16 baseline's) and an optional ``dataset`` column
(default ``--dataset``, cifar10). Rows of a run's ``pareto.csv`` are valid input, and carry
the run's data set.

Output: the same rows plus ``clean_accuracy_pct`` (predicted validation accuracy at the measured
source's training budget), ``accuracy_std_pct`` (its predictive std), ``precision_loss_pp`` (the
crossbar loss the data set's precision penalty predicts from the per-layer bits),
``accuracy_pct`` = clean minus loss (the accuracy on the crossbar) and ``fidelity`` (the budget the
% stands for). Every value is a prediction; none is measured here. The predictor of each data
set is the default run's (conf/accuracy/measured.yaml, its `transfer` included).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from xpert_evo.accuracy.predictor import source_accuracy
from xpert_evo.config import ConfigError, conf_dir
from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.search.setup import build_penalty
from xpert_evo.space import SearchSpace
from xpert_evo.space.backbone import GEOMETRY, Backbone
from xpert_evo.space.genome import Genomes

CONF = conf_dir()
"""The config folder (space options, penalty fits; `xpert_evo.config.conf_dir`)."""

DEFAULT_BITS: dict[str, int] = {"input_bits": 8, "adc_bits": 6}
"""Precision of rows without the column: the VGG16 baseline's (conf/space/default.yaml)."""


TRANSFER: dict[str, str | None] = dict(
    yaml.safe_load((CONF / "accuracy" / "measured.yaml").read_text())["transfer"] or {})
"""Per data set, the data set whose predictor is one more feature, as in a default run."""


class DesignError(ValueError):
    """A malformed design row; the message names the row and the column."""


def _per_layer(value: object, row: int, column: str, n_layers: int) -> list[int]:
    """One cell as n_layers integers (a dash-joined list, or one value for every layer)."""
    text = str(value).strip()
    try:
        values = [int(float(v)) for v in text.split("-")]
    except ValueError:
        raise DesignError(f"row {row}, column {column}: {text!r} is not dash-joined integers "
                          f"(e.g. {'-'.join(['64'] * 3)}-...)") from None
    if len(values) == 1:
        values *= n_layers
    if len(values) != n_layers:
        raise DesignError(f"row {row}, column {column}: {len(values)} values, expected "
                          f"{n_layers} (one per conv layer) or 1 (the same for every layer)")
    return values


def read_designs(
    frame: pd.DataFrame, n_layers: int, rows: Sequence[int] | None = None
) -> Genomes:
    """Genomes of the rows (peripheral genes col_share 8, flash: they do not change accuracy).
    `rows` numbers them as the user counts them in messages (default 1 = first data row).

    Raises:
        DesignError: a missing `channels` column or an unreadable cell (row and column named).
    """
    if "channels" not in frame.columns:
        raise DesignError(f"column channels is missing (columns: {list(frame.columns)}); give "
                          "the 13 output channels per design, dash-joined")
    rows = list(rows) if rows is not None else list(range(1, len(frame) + 1))
    genes = {}
    for column in ("channels", *DEFAULT_BITS):
        cells = frame[column] if column in frame.columns else [DEFAULT_BITS[column]] * len(frame)
        genes[column] = np.array([
            _per_layer(DEFAULT_BITS.get(column) if pd.isna(v) else v, r, column, n_layers)
            for r, v in zip(rows, cells, strict=True)
        ], dtype=np.int64).reshape(len(frame), n_layers)
    ones = np.ones_like(genes["channels"])
    return Genomes(genes["channels"], 8 * ones, ones, genes["adc_bits"], genes["input_bits"])


def penalty_for(dataset: str, conf: Path = CONF) -> PrecisionPenalty:
    """The precision-loss fit of a data set: the conf/penalty/*.yaml whose `dataset` it is.

    Raises:
        ConfigError: no fit for the data set (the message says how to make one).
    """
    for path in sorted((conf / "penalty").glob("*.yaml")):
        node = yaml.safe_load(path.read_text()) or {}
        if node.get("dataset") == dataset:
            penalty = build_penalty(node)
            if penalty is not None:
                return penalty
    raise ConfigError(f"no precision-loss fit for dataset {dataset} in {conf / 'penalty'}; fit "
                      "one with bench/precision_penalty.py on that data set's crossbar evaluations")


def predict_frame(
    frame: pd.DataFrame,
    dataset: str = "cifar10",
    fidelity: str | None = None,
    source_dir: str | None = None,
) -> pd.DataFrame:
    """`frame` plus the predicted columns (see the module docstring), one data set at a time.

    Raises:
        DesignError: a malformed row, or a channel count outside the search space.
        ConfigError: an unknown data set, no measured source or penalty fit for it, or no
            source at the requested fidelity.
    """
    out = frame.copy()
    out[["clean_accuracy_pct", "accuracy_std_pct", "precision_loss_pp", "accuracy_pct"]] = np.nan
    out["fidelity"] = ""
    datasets = (out["dataset"].fillna(dataset).astype(str) if "dataset" in out.columns
                else pd.Series([dataset] * len(out), index=out.index))
    space_node = yaml.safe_load((CONF / "space" / "default.yaml").read_text())
    for name in datasets.unique():
        if name not in GEOMETRY:
            raise ConfigError(f"dataset={name!r} is not one of {sorted(GEOMETRY)}")
        backbone = Backbone(*GEOMETRY[name])
        allowed = SearchSpace.from_config(space_node, backbone.n_conv).allowed()["channels"]
        mask = (datasets == name).to_numpy()
        numbers = (np.flatnonzero(mask) + 1).tolist()
        genomes = read_designs(out[mask].reset_index(drop=True), backbone.n_conv, numbers)
        bad = ~np.isin(genomes.channels, allowed)
        if bad.any():
            r, layer = np.argwhere(bad)[0]
            raise DesignError(
                f"row {numbers[r]}, column channels: layer {layer + 1} has "
                f"{genomes.channels[r, layer]} channels; the search space allows {list(allowed)}"
            )
        model = source_accuracy(name, backbone, fidelity, source_dir,
                                transfer_from=TRANSFER.get(name))
        clean, std = model.predict(genomes.channels)
        loss = penalty_for(name).predict(genomes, clean)
        out.loc[mask, "clean_accuracy_pct"] = clean
        out.loc[mask, "accuracy_std_pct"] = std
        out.loc[mask, "precision_loss_pp"] = loss
        out.loc[mask, "accuracy_pct"] = clean - loss
        out.loc[mask, "fidelity"] = model.fidelity
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 on bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m xpert_evo.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("designs", help="CSV with a channels column (pareto.csv qualifies)")
    parser.add_argument("--out", required=True, help="output CSV")
    parser.add_argument("--dataset", default="cifar10",
                        help="data set of rows without a dataset column (default cifar10)")
    parser.add_argument("--fidelity", default=None,
                        help="training budget of the source, e.g. e5-pc500-w0.25-b64")
    parser.add_argument("--source-dir", default=None,
                        help="folder of measured sources (default: the packaged ones)")
    args = parser.parse_args(argv)
    try:
        frame = pd.read_csv(args.designs, dtype=str, keep_default_na=True)
        result = predict_frame(frame, args.dataset, args.fidelity, args.source_dir)
    except FileNotFoundError as err:
        print(f"error: {args.designs}: {err.strerror}", file=sys.stderr)
        return 2
    except (DesignError, ConfigError, pd.errors.ParserError) as err:
        print(f"error: {args.designs}: {err}", file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(args.out, index=False)
    budgets = ", ".join(result["fidelity"].unique())
    print(f"{len(result)} designs -> {args.out} (predicted at {budgets}; nothing here is measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

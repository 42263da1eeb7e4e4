"""`python -m xpert_evo.predict DESIGNS.csv --out OUT.csv`: predicted accuracy of your own designs.

Input: a CSV with a ``channels`` column (the 13 output channels, dash-joined, e.g.
``64-64-128-...``), optional ``input_bits`` and ``adc_bits`` (13 dash-joined values or one value
for every layer; default 8 and 6, the VGG16 baseline's) and an optional ``dataset`` column
(default ``--dataset``, cifar10). Rows of a run's ``pareto.csv`` are valid input, and carry
the run's data set. Every value must be an integer the search space allows
(conf/space/default.yaml: the widths the predictor's source networks have, the bits the search
explores), and a gene column that is there needs a value in every row; a bad cell, file or
``--out`` exits with code 2 and one line naming the row and column, or the path. The output is
written atomically.

Output: the same rows plus ``clean_accuracy_pct`` (predicted validation accuracy at the measured
source's training budget), ``accuracy_std_pct`` (its predictive std), ``precision_loss_pp`` (the
crossbar loss the data set's precision penalty predicts from the per-layer bits),
``precision_loss_error_pp`` (that penalty's stated error: its RMSE on crossbar evaluations of
networks it was not fitted to, the same for every row; empty where not measured),
``precision_loss_std_pp`` (only when a per-layer penalty, ``layer_penalty_v1``, predicts: its std
of each row's loss), ``accuracy_pct`` = clean minus loss (the accuracy on the crossbar) and
``fidelity`` (the budget the % stands for). Every value is a prediction; none is measured here.
The predictor of each data set is the default run's (conf/accuracy/measured.yaml, its `transfer`
included), and so is its precision penalty (conf/config.yaml's ``penalty`` for CIFAR-10, that of
conf/experiment/tinyimagenet.yaml for Tiny ImageNet) unless ``--penalty NAME`` names a
conf/penalty preset for every row (``none``: no crossbar loss); a preset fitted on another data
set than a row's is refused.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xpert_evo.accuracy.predictor import source_accuracy
from xpert_evo.config import ConfigError, conf_dir
from xpert_evo.crossbar.layer_penalty import LayerPenalty
from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.hardware.config import load_hardware_config
from xpert_evo.schema import compose, group_node
from xpert_evo.search.setup import build_penalty
from xpert_evo.space import SearchSpace
from xpert_evo.space.backbone import GEOMETRY, Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.tables import (
    OneLineParser,
    TableError,
    allowed_text,
    check_out,
    integers,
    read_csv,
    refuse,
    write_csv,
)

CONF = conf_dir()
"""The config folder (space options, penalty fits; `xpert_evo.config.conf_dir`)."""

SPACE = group_node("space", "default")
"""The search space's config node (conf/space/default.yaml, composed by Hydra): the gene values
a design may have (the widths the predictor's source networks have, the bits the search
explores; `SearchSpace.allowed`)."""

DEFAULT_BITS: dict[str, int] = {"input_bits": 8, "adc_bits": 6}
"""Precision of rows without the column: the VGG16 baseline's (conf/space/default.yaml)."""


TRANSFER: dict[str, str | None] = dict(group_node("accuracy", "measured")["transfer"] or {})
"""Per data set, the data set whose predictor is one more feature, as in a default run
(conf/accuracy/measured.yaml)."""


def _gene_cells(
    cells: Sequence[object],
    rows: Sequence[int],
    column: str,
    n_layers: int,
    allowed: Sequence[int],
) -> np.ndarray:
    """A gene column as (rows, n_layers) integers: each cell dash-joined values, one per layer,
    or one value for every layer; every value one of ``allowed`` (the search space's)."""
    tokens: list[str] = []
    per_layer: list[bool] = []
    for row, value in zip(rows, cells, strict=True):
        text = "" if pd.isna(value) else str(value).strip()
        if not text:
            raise TableError(f"row {row}, column {column}: blank cell; give {n_layers} "
                             "dash-joined values (one per conv layer) or one for every layer")
        parts = [part.strip() for part in text.split("-")]
        if "" in parts:
            raise TableError(f"row {row}, column {column}: {text!r} is not dash-joined "
                             f"integers (e.g. {'-'.join(['64'] * 3)}-...); allowed values: "
                             f"{allowed_text(allowed)}")
        if len(parts) not in (1, n_layers):
            raise TableError(f"row {row}, column {column}: {len(parts)} values, expected "
                             f"{n_layers} (one per conv layer) or 1 (the same for every layer)")
        per_layer.append(len(parts) > 1)
        tokens.extend(parts if len(parts) > 1 else parts * n_layers)

    def where(i: int) -> str:
        r = i // n_layers
        layer = f", layer {i % n_layers + 1}" if per_layer[r] else ""
        return f"row {rows[r]}, column {column}{layer}"

    values = integers(tokens, allowed, where,
                      lambda v: f"{v} is outside the search space (conf/space/default.yaml)")
    return values.reshape(len(per_layer), n_layers)


def read_designs(
    frame: pd.DataFrame,
    n_layers: int,
    rows: Sequence[int] | None = None,
    allowed: Mapping[str, Sequence[int]] | None = None,
) -> Genomes:
    """Genomes of the rows (peripheral genes col_share 8, flash: they do not change accuracy).
    `rows` numbers them as the user counts them in messages (default 1 = first data row);
    `allowed` maps channels, input_bits and adc_bits to their allowed values (default: those
    of the search space, conf/space/default.yaml). A bits column left out gives every row the
    default (`DEFAULT_BITS`); a column that is there needs a value in every row.

    Raises:
        TableError: a missing `channels` column, or a blank, malformed or disallowed cell
            (row, column and allowed values named).
    """
    if "channels" not in frame.columns:
        raise TableError(f"column channels is missing (columns: {list(frame.columns)}); give "
                         "the 13 output channels per design, dash-joined")
    if allowed is None:
        allowed = SearchSpace.from_config(SPACE, n_layers).allowed()
    rows = list(rows) if rows is not None else list(range(1, len(frame) + 1))
    genes = {
        column: _gene_cells(
            frame[column] if column in frame.columns else [DEFAULT_BITS[column]] * len(frame),
            rows, column, n_layers, allowed[column])
        for column in ("channels", *DEFAULT_BITS)
    }
    ones = np.ones_like(genes["channels"])
    return Genomes(genes["channels"], 8 * ones, ones, genes["adc_bits"], genes["input_bits"])


def penalty_names(conf: Path = CONF) -> list[str]:
    """The precision-loss presets (the names of conf/penalty/*.yaml), sorted."""
    return sorted(path.stem for path in (conf / "penalty").glob("*.yaml"))


def default_penalty(dataset: str, conf: Path = CONF) -> str | None:
    """The conf/penalty preset the main job's default config selects for a data set: that of
    conf/config.yaml when its ``data.dataset`` is `dataset` (CIFAR-10), else that of
    ``+experiment=<dataset>`` (conf/experiment/<dataset>.yaml: Tiny ImageNet's penalty
    override). None when neither composes to `dataset` with a penalty that holds for it."""
    tries: list[list[str]] = [[]]
    if (conf / "experiment" / f"{dataset}.yaml").is_file():
        tries.append([f"+experiment={dataset}"])
    for overrides in tries:
        try:
            cfg = compose("config", overrides, conf.resolve(), hydra_config=True)
        except ConfigError:
            continue
        name = cfg.hydra.runtime.choices.get("penalty")
        if (cfg.data.dataset == dataset and name is not None
                and cfg.penalty.get("dataset") in (None, dataset)):
            return str(name)
    return None


def penalty_for(
    dataset: str, conf: Path = CONF, name: str | None = None
) -> PrecisionPenalty | LayerPenalty | None:
    """The precision-loss model of a data set's designs: preset `name` (conf/penalty/<name>.yaml)
    when given, else the one the main job's default config selects for the data set
    (`default_penalty`: CIFAR-10 conf/config.yaml's, Tiny ImageNet its experiment's). Only when
    that is not resolvable: the conf/penalty/*.yaml whose `dataset` it is, measured with the
    default hardware's weight mapping when there is one, else the data set's first. None: the
    preset has no model (``none``: no crossbar loss).

    Raises:
        ConfigError: preset `name` holds for another data set (the presets that hold for this
            one named), or no fit for the data set (the message says how to make one).
    """
    name = name if name is not None else default_penalty(dataset, conf)
    if name is not None:
        node = group_node("penalty", name, config_dir=conf.resolve())  # values resolved
        if node.get("dataset") not in (None, dataset):
            fitting = [other for other in penalty_names(conf) if group_node(
                "penalty", other, config_dir=conf.resolve()).get("dataset") in (None, dataset)]
            raise ConfigError(f"penalty {name} holds for dataset {node['dataset']}, not "
                              f"{dataset}; for {dataset} use one of: {', '.join(fitting)}")
        return build_penalty(node)
    fits = []
    for stem in penalty_names(conf):
        node = group_node("penalty", stem, config_dir=conf.resolve())  # values resolved
        if node.get("dataset") == dataset and node.get("model") is not None:
            fits.append(node)
    if not fits:
        raise ConfigError(f"no precision-loss fit for dataset {dataset} in {conf / 'penalty'}; "
                          "fit one with bench/calibrate/precision_loss.py on that data set's "
                          "crossbar evaluations")
    default = load_hardware_config().weight_encoding
    return build_penalty(next((f for f in fits if f.get("weight_encoding") == default), fits[0]))


def predict_frame(
    frame: pd.DataFrame,
    dataset: str = "cifar10",
    fidelity: str | None = None,
    source_dir: str | None = None,
    penalty: str | None = None,
) -> pd.DataFrame:
    """`frame` plus the predicted columns (see the module docstring), one data set at a time.
    `penalty` names the conf/penalty preset of every row (default: per data set, the default
    run's, `penalty_for`).

    Every row is checked before any prediction is made.

    Raises:
        TableError: a malformed row, a gene value outside the search space, or a data set
            without a predictor (row and column named).
        ConfigError: no measured source or penalty fit for a data set, a `penalty` preset
            fitted on another data set, or no source at the requested fidelity.
    """
    out = frame.copy()
    datasets = (out["dataset"].fillna(dataset).astype(str).str.strip()
                if "dataset" in out.columns else pd.Series([dataset] * len(out), index=out.index))
    groups = []
    for name in datasets.unique():
        mask = (datasets == name).to_numpy()
        numbers = (np.flatnonzero(mask) + 1).tolist()
        if name not in GEOMETRY:
            where = (f"row {numbers[0]}, column dataset" if "dataset" in out.columns
                     else "dataset")
            raise TableError(f"{where}: {name!r} is not a data set with a predictor; allowed: "
                             f"{', '.join(sorted(GEOMETRY))}")
        backbone = Backbone(*GEOMETRY[name])
        allowed = SearchSpace.from_config(SPACE, backbone.n_conv).allowed()
        genomes = read_designs(out[mask].reset_index(drop=True), backbone.n_conv, numbers, allowed)
        groups.append((name, backbone, mask, genomes, penalty_for(name, name=penalty)))
    columns = ["clean_accuracy_pct", "accuracy_std_pct", "precision_loss_pp",
               "precision_loss_error_pp"]
    if any(isinstance(group[-1], LayerPenalty) for group in groups):
        columns.append("precision_loss_std_pp")
    out[[*columns, "accuracy_pct"]] = np.nan
    out["fidelity"] = ""
    for name, backbone, mask, genomes, loss_model in groups:
        model = source_accuracy(name, backbone, fidelity, source_dir,
                                transfer_from=TRANSFER.get(name))
        est = model.with_penalty(loss_model).predict(genomes)
        error = None if loss_model is None else loss_model.heldout_rmse_pp
        out.loc[mask, "precision_loss_error_pp"] = np.nan if error is None else error
        out.loc[mask, "clean_accuracy_pct"] = est.clean
        out.loc[mask, "accuracy_std_pct"] = est.std
        out.loc[mask, "precision_loss_pp"] = est.loss_pp
        if isinstance(loss_model, LayerPenalty):
            out.loc[mask, "precision_loss_std_pp"] = loss_model.std_of(est.loss_pp)
        out.loc[mask, "accuracy_pct"] = est.net
        out.loc[mask, "fidelity"] = model.fidelity
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 on bad input, with one line naming
    the file, row and column, or the argument)."""
    parser = OneLineParser(
        prog="python -m xpert_evo.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("designs", help="CSV with a channels column (pareto.csv qualifies)")
    parser.add_argument("--out", required=True, help="output CSV (written atomically)")
    parser.add_argument("--dataset", default="cifar10", choices=sorted(GEOMETRY),
                        help="data set of rows without a dataset column (default cifar10)")
    parser.add_argument("--fidelity", default=None,
                        help="training budget of the source, e.g. e5-pc500-w0.25-b64")
    parser.add_argument("--source-dir", default=None,
                        help="folder of measured sources (default: the packaged ones)")
    parser.add_argument("--penalty", default=None, choices=penalty_names(),
                        help="precision-loss preset of every row (conf/penalty/NAME.yaml; "
                             "default: per data set, the one a default run uses)")
    args = parser.parse_args(argv)
    try:
        check_out(args.out)
        frame = read_csv(args.designs, dtype=str, keep_default_na=True)
    except TableError as err:
        return refuse(err)
    try:
        result = predict_frame(frame, args.dataset, args.fidelity, args.source_dir,
                               args.penalty)
    except (TableError, ConfigError) as err:
        return refuse(f"{args.designs}: {err}")
    try:
        write_csv(result, args.out)
    except TableError as err:
        return refuse(err)
    budgets = ", ".join(result["fidelity"].unique())
    print(f"{len(result)} designs -> {args.out} (predicted at {budgets}; nothing here is measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ground truth: measured accuracies of trained networks in one CSV table; `measure` for the search.

Every training run and every crossbar evaluation appends one row to a CSV table (default
`<cache>/ground_truth.csv`, config `ground_truth.path`). Appends hold an exclusive file lock and
either append whole lines to a file with the same header, or (new columns) rewrite the table
to a temporary file renamed into place, so existing rows are never lost. `load_table` returns a
DataFrame that round-trips exactly (strings stay strings, floats keep every digit).

Genes are stored readable, dash-joined per layer, as the run tables do: channels
"64-64-128-...", col_share "8-8-...", adc_type "flash-sar-...", adc_bits, input_bits. The
`channels` and `accuracy_pct` columns are what `accuracy.calibration` reads, so the table (filtered
to one fidelity) can calibrate the proxy directly.

`measure(genomes, cfg)` is the online-refinement entry point: train (or reuse a checkpoint of)
each genome's network, evaluate it on the crossbar at its own per-layer precisions, append the
rows and return them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from xpert_evo.config import plain_config
from xpert_evo.crossbar.evaluate import evaluate_genome
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.files import atomic_write
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import ADC_TYPES, Genomes
from xpert_evo.training.data import DataSpec, cache_root
from xpert_evo.training.network import build_network
from xpert_evo.training.train import Splits, TrainSpec, budget_splits, train_network

log = logging.getLogger(__name__)

TABLE_FILE = "ground_truth.csv"
"""Default file name of the table inside the cache directory."""

COLUMNS: dict[str, str] = {
    "timestamp": "str",  # ISO 8601 UTC time the row was written
    "kind": "str",  # "train", "crossbar" or "train+crossbar"
    "dataset": "str",
    "input_size": "Int64",  # image side, pixels
    "num_classes": "Int64",
    "channels": "str",  # dash-joined per conv layer, as searched (before width_mult)
    "col_share": "str",
    "adc_type": "str",
    "adc_bits": "str",
    "input_bits": "str",
    "epochs": "Int64",
    "train_per_class": "Int64",  # empty = the whole training split
    "width_mult": "float64",
    "batch_size": "Int64",
    "fidelity": "str",  # TrainSpec.fidelity() label
    "seed": "Int64",
    "accuracy_pct": "float64",  # clean (float) top-1 test accuracy, % (reported only)
    "test_images": "Int64",  # images behind accuracy_pct
    "val_accuracy_pct": "float64",  # clean top-1 validation accuracy, % (what models select on)
    "val_images": "Int64",  # held-out training images behind val_accuracy_pct
    "reference_accuracy_pct": "float64",  # float accuracy on the crossbar's test images, %
    "nonideal_accuracy_pct": "float64",  # crossbar accuracy at the row's precisions, %
    "crossbar_test_images": "Int64",
    "weight_encoding": "str",
    "wall_s": "float64",  # seconds of training and/or evaluation behind the row
    "device": "str",
    "checkpoint": "str",  # state_dict file of the trained network ("" if not kept)
    "note": "str",
    "net_id": "Int64",  # measured source only: the network's id in the source plan
    "role": "str",  # measured source only: "fit" (predictors learn from it) or "heldout"
}
"""Table columns and their pandas dtypes, in file order."""


def default_path(cfg: Mapping[str, Any] | None = None, cache_dir: str | None = None) -> Path:
    """`ground_truth.path` from `cfg` (the ground_truth node) or `<cache>/ground_truth.csv`."""
    node = dict(plain_config(cfg) or {})
    if node.get("path"):
        return Path(str(node["path"])).expanduser()
    return cache_root(cache_dir) / TABLE_FILE


def joined(values: Sequence[Any] | np.ndarray) -> str:
    """Per-layer values as one readable string, "64-64-128"."""
    return "-".join(str(v) for v in np.asarray(values).reshape(-1).tolist())


def genome_columns(genome: Genomes, row: int = 0) -> dict[str, str]:
    """The readable gene columns of genome `row`."""
    return {
        "channels": joined(genome.channels[row]),
        "col_share": joined(genome.col_share[row]),
        "adc_type": joined(np.asarray(ADC_TYPES)[genome.adc_flash[row]]),
        "adc_bits": joined(genome.adc_bits[row]),
        "input_bits": joined(genome.input_bits[row]),
    }


def per_layer_ints(values: Sequence[Any] | pd.Series) -> np.ndarray:
    """Dash-joined per-layer values ("64-64-128-...", as `joined` writes them) -> (N, L) int64."""
    return np.array([[int(v) for v in str(s).split("-")] for s in values], np.int64)


def genomes_from_table(table: pd.DataFrame) -> Genomes:
    """`Genomes` of every row of a ground-truth (or run) table with the readable gene columns."""

    def ints(col: str) -> np.ndarray:
        return per_layer_ints(table[col])

    flash = np.array(
        [[ADC_TYPES.index(v) for v in str(s).split("-")] for s in table["adc_type"]], np.int64
    )
    return Genomes(ints("channels"), ints("col_share"), flash, ints("adc_bits"),
                   ints("input_bits"))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _frame(
    rows: Sequence[Mapping[str, Any]] | pd.DataFrame, keep_extra: bool = False
) -> pd.DataFrame:
    """Rows as a frame with every `COLUMNS` column typed, in order; columns not in `COLUMNS`
    are an error, or (`keep_extra`, for tables written by other versions) kept at the end.
    """
    frame = pd.DataFrame(list(rows)) if not isinstance(rows, pd.DataFrame) else rows.copy()
    unknown = [c for c in frame.columns if c not in COLUMNS]
    if unknown and not keep_extra:
        raise ValueError(f"unknown ground-truth columns {unknown}; known: {list(COLUMNS)}")
    for col, dtype in COLUMNS.items():
        if col not in frame:
            frame[col] = {"str": "", "float64": np.nan}.get(dtype, pd.NA)
        if dtype == "str":
            frame[col] = frame[col].fillna("").astype(str)
        else:
            frame[col] = frame[col].astype(dtype)
    return frame[[*COLUMNS, *unknown]]


def append_rows(rows: Sequence[Mapping[str, Any]] | pd.DataFrame, path: str | Path) -> Path:
    """Append rows (dicts or a DataFrame with columns from `COLUMNS`) to the table at `path`.

    Missing columns are left empty. Safe against concurrent writers (file lock) and crashes
    (either whole lines are appended, or the table is rewritten to a temporary file renamed
    into place when its header differs from `COLUMNS`).
    """
    path = Path(path)
    frame = _frame(rows)
    with _locked(path):
        header = ""
        if path.is_file() and path.stat().st_size > 0:
            with open(path) as fh:
                header = fh.readline().rstrip("\r\n")
        if header == ",".join(COLUMNS):
            buffer = io.StringIO()
            frame.to_csv(buffer, index=False, header=False)
            with open(path, "a", newline="") as fh:
                fh.write(buffer.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
        else:
            if header:
                frame = _frame(pd.concat([_read(path), frame], ignore_index=True), True)
            atomic_write(path, lambda fh: frame.to_csv(fh, index=False))
    return path


def _read(path: Path) -> pd.DataFrame:
    names = pd.read_csv(path, nrows=0).columns.tolist()
    dtypes = {c: ("str" if COLUMNS.get(c, "str") == "str" else COLUMNS[c]) for c in names}
    exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
    return pd.read_csv(
        path, dtype=dtypes, keep_default_na=False,
        na_values={c: [""] for c in names if dtypes[c] != "str"}, **exact,
    )


def load_table(path: str | Path) -> pd.DataFrame:
    """The table at `path` as a DataFrame with `COLUMNS` dtypes, in `COLUMNS` order (columns
    of other versions kept at the end); a missing file gives an empty table.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return _frame([])
    return _frame(_read(path), keep_extra=True)


def _train_key(channels: Sequence[int], data: DataSpec, spec: TrainSpec, seed: int) -> str:
    blob = json.dumps([list(map(int, channels)), data.dataset, data.input_size, data.num_classes,
                       spec.fidelity(), spec.test_per_class, spec.lr, spec.weight_decay,
                       spec.label_smoothing, spec.warmup_epochs, spec.val_per_class, seed])
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def checkpoint_path(
    channels: Sequence[int], data: DataSpec, spec: TrainSpec, seed: int, folder: Path
) -> Path:
    """Where the trained network of (channels, data, budget, seed) is kept."""
    return folder / f"{data.dataset}-{_train_key(channels, data, spec, seed)}.pt"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def measure(genomes: Genomes, cfg: Mapping[str, Any]) -> pd.DataFrame:
    """Measured accuracy of each genome: train, crossbar-evaluate, append to the table.

    For each genome: its network (channels x `train.width_mult`) is trained with the `train:`
    budget, or loaded from `<cache>/checkpoints/` when the same channels, data, budget and seed
    were trained before; then evaluated on the crossbar (`crossbar:` node, hardware constants
    from `hardware:`) at the genome's own per-layer input_bits and adc_bits. One row per genome
    is appended to the table at `ground_truth.path` and returned.

    Args:
        genomes: the designs to measure.
        cfg: dict or DictConfig with optional nodes `data`, `train`, `crossbar`, `hardware`,
            `ground_truth` ({path, keep_checkpoints}), and keys `seed`, `cache_dir`
            (see conf/train.yaml).

    Returns:
        The appended rows (`COLUMNS`), in genome order: `accuracy_pct` is the clean accuracy,
        `nonideal_accuracy_pct` the crossbar accuracy.
    """
    node = dict(plain_config(cfg) or {})
    data = DataSpec.from_config(node.get("data"))
    spec = TrainSpec.from_config(node.get("train"))
    data = spec.trained_data(data)
    xbar = CrossbarSpec.from_config(node.get("crossbar"), node.get("hardware"))
    gt = dict(plain_config(node.get("ground_truth")) or {})
    seed = int(node.get("seed", 0))
    cache_dir = node.get("cache_dir")
    table = default_path(gt, cache_dir)
    folder = cache_root(cache_dir) / "checkpoints"
    keep = bool(gt.get("keep_checkpoints", True))
    backbone = Backbone(input_size=data.input_size, num_classes=data.num_classes)
    splits = budget_splits(data, spec, cache_dir)
    rows = []
    for i in range(genomes.n):
        genome = genomes[i]
        rows.append(measure_one(genome, data, spec, xbar, seed, backbone, splits, folder, keep))
        append_rows(rows[-1:], table)
        log.info("measured %s: clean %.2f %%, crossbar %.2f %%", rows[-1]["channels"],
                 rows[-1]["accuracy_pct"], rows[-1]["nonideal_accuracy_pct"])
    return _frame(rows)


def measure_one(
    genome: Genomes,
    data: DataSpec,
    spec: TrainSpec,
    xbar: CrossbarSpec | None,
    seed: int,
    backbone: Backbone,
    splits: Splits,
    folder: Path,
    keep_checkpoint: bool = True,
) -> dict[str, Any]:
    """Train (or load) and crossbar-evaluate one genome (a batch of one); the table row.

    `xbar=None` skips the crossbar evaluation (kind "train", non-ideal accuracy empty). The
    crossbar runs on test images and calibrates its ranges on training images.
    """
    start = time.perf_counter()
    channels = genome.channels[0].tolist()
    ckpt = checkpoint_path(channels, data, spec, seed, folder)
    kind = "train+crossbar"
    trained_s = 0.0  # training time behind a loaded checkpoint, not in this call's elapsed
    if ckpt.is_file():
        model, saved = load_checkpoint(ckpt, channels, backbone, spec)
        measured = {k: saved.get(k) for k in MEASURED}
        trained_s = float(saved.get(TRAIN_WALL_S) or 0.0)
        kind = "crossbar"
    else:
        result = train_network(channels, data, spec, seed, train_split=splits.train,
                               test_split=splits.test, val_split=splits.val)
        model, measured = result.model, result.measured()
        if keep_checkpoint:
            save_checkpoint(model, measured, ckpt, result.wall_s)
    row = {
        "timestamp": _now(), "kind": kind, "dataset": data.dataset,
        "input_size": data.input_size, "num_classes": data.num_classes,
        **genome_columns(genome), **fidelity_columns(spec), "seed": seed, **measured,
        "checkpoint": str(ckpt) if ckpt.is_file() else "",
    }
    if xbar is None:
        row["kind"] = "train"
    else:
        evaluation = evaluate_genome(model, genome, xbar, splits.test, splits.train)
        row.update({
            "reference_accuracy_pct": evaluation.reference_accuracy_pct,
            "nonideal_accuracy_pct": evaluation.accuracy_pct,
            "crossbar_test_images": evaluation.n_images,
            "weight_encoding": xbar.weight_encoding,
        })
    # a training row costs its training, also when read back; a crossbar row its evaluation
    row["wall_s"] = time.perf_counter() - start + (trained_s if xbar is None else 0.0)
    return row


def fidelity_columns(spec: TrainSpec) -> dict[str, Any]:
    """The budget columns of a row."""
    return {"epochs": spec.epochs, "train_per_class": spec.train_per_class,
            "width_mult": spec.width_mult, "batch_size": spec.batch_size,
            "fidelity": spec.fidelity()}


MEASURED: tuple[str, ...] = ("accuracy_pct", "test_images", "val_accuracy_pct", "val_images",
                             "device")
"""What a checkpoint keeps beside the weights: the measurements of its training run
(`TrainResult.measured`)."""

TRAIN_WALL_S = "train_wall_s"
"""Checkpoint key of its training's wall time in seconds: a training row read back from the
checkpoint (the same network, budget and seed, e.g. trained first by a pilot) reports it as its
`wall_s`, so a source's cost figures count every training once at its real cost."""


def save_checkpoint(model: torch.nn.Module, measured: Mapping[str, Any], path: Path,
                    train_wall_s: float | None = None) -> Path:
    """Save a trained network's state_dict with its `MEASURED` facts and its training's wall time
    in seconds (`TRAIN_WALL_S`), atomically (temporary file renamed)."""
    state = {"state_dict": model.state_dict(), **{k: measured.get(k) for k in MEASURED},
             TRAIN_WALL_S: train_wall_s}
    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | Path, channels: Sequence[int], backbone: Backbone,
                    spec: TrainSpec) -> tuple[torch.nn.Sequential, dict[str, Any]]:
    """The network of `channels` built as `spec` trains it (its width and channel floor) with
    the weights `save_checkpoint` kept at `path`, and the checkpoint's contents (its `MEASURED`
    facts, `TRAIN_WALL_S`)."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model = build_network(channels, backbone, spec.width_mult, min_channels=spec.min_channels)
    model.load_state_dict(saved["state_dict"])
    return model, saved

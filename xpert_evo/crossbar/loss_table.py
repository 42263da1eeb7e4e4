"""The precision-loss table: paired crossbar losses of trained source networks at drawn settings.

`python -m xpert_evo.precision` (xpert_evo/precision.py) fills it; the per-layer penalty
(`xpert_evo.crossbar.layer_penalty`) is fitted on it. One row per (network, precision setting):
the network's per-layer input and ADC bits, its crossbar and float accuracy on the same test
images, their paired difference (`loss_pp`) and that difference's bootstrap std over images
(`loss_std_pp`, `paired_loss`).

Settings (`PrecisionPlan`): setting k of network n draws from its own generator, seeded by
(plan seed, n, k), so a setting does not depend on how many settings, networks or shards a run
asks for (a run with more settings extends an earlier one). Even k are *random* settings
(`random_precisions`: a uniform input-bit and ADC-bit level, each layer one step above or below
it, clipped to the searched options, as a search proposes); odd k are *sweeps*: every layer at a
nearly lossless setting (by default the largest searched input and ADC bits) but one, lowered to
an (input bits, ADC bits) pair drawn uniformly from the searched options. A network's sweeps
lower its layers in an order drawn per network (a permutation of the layers), so they lower
different layers, and over many networks every layer about equally often.

Front settings (``precision.front``): the random settings sit near one uniform level, so they
rarely hold what a search picks (several layers at 2-bit inputs beside 8-bit ones). A plan given
the designs of a search's front (its ``pareto.csv``) adds ``precision.front_settings`` settings
per network of kind *front*, each the bits of one front design drawn (seeded by plan seed,
network and index), evaluated on the table's networks as every other setting: the table learns
the region the search goes to, and the cross-validation by network still holds (as NSGANetV2
refines its surrogate with the designs its search proposes).

Replicates: the same settings on the same networks retrained at another seed
(``precision.train_seed``) go to a table of their own (`table_dir`, ``-seed<k>``), which the
per-layer fit leaves out and `xpert_evo.crossbar.loss_noise` compares with the seed-0 table.

Files: rows are appended, as they are measured, to ``<dir>/<dataset>-<fidelity>/shard-<k>-of-<n>
.csv``. Network i (in source order) belongs to shard ``i % n_shards``: a network is loaded (or
trained) and mapped onto crossbars by one process only. A rerun skips every (network, setting,
images, weight encoding) any shard file of the folder holds, so a killed run loses at most the
evaluation in progress and a changed shard count re-measures nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

from xpert_evo.config import ConfigError
from xpert_evo.crossbar.settings import random_precisions
from xpert_evo.tables import TableError, read_csv

log = logging.getLogger(__name__)

COLUMNS: dict[str, str] = {
    "timestamp": "str",  # ISO 8601 UTC time the row was written
    "dataset": "str",
    "fidelity": "str",  # the source's training budget (TrainSpec.fidelity label)
    "net_id": "int64",  # the network's id in the source plan
    "role": "str",  # the source's role of the network: "fit" or "heldout"
    "channels": "str",  # dash-joined per conv layer, as searched (before width_mult)
    "setting": "int64",  # index k of the setting in the network's plan
    "setting_kind": "str",  # "random", "sweep" or "front"
    "swept_layer": "int64",  # the lowered layer of a sweep (0-based); -1 for a random setting
    "input_bits": "str",  # dash-joined per conv layer
    "adc_bits": "str",
    "weight_encoding": "str",  # the crossbar's weight mapping (hardware.weight_encoding)
    "images": "int64",  # test images, the same for both accuracies
    "float_accuracy_pct": "float64",  # float network (BN folded) on those images, %
    "crossbar_accuracy_pct": "float64",  # the crossbar at the row's precisions, %
    "loss_pp": "float64",  # float minus crossbar, pp
    "loss_std_pp": "float64",  # bootstrap std of loss_pp over images (paired), pp
    "source_val_accuracy_pct": "float64",  # seed-0 validation accuracy in the source, %
    "plan_seed": "int64",  # PrecisionPlan.seed
    "wall_s": "float64",  # seconds of this row's crossbar evaluation
}
"""Table columns and their pandas dtypes, in file order."""

KEY: tuple[str, ...] = ("net_id", "input_bits", "adc_bits", "images", "weight_encoding")
"""What makes a row the same measurement: a rerun skips a (network, setting) any row holds."""

BOOTSTRAP_RESAMPLES = 1000
"""Bootstrap resamples of `paired_loss`: the std's own relative error is about
1 / sqrt(2 x 1000) = 2 %."""


def check_bits(values: Sequence[int] | np.ndarray, options: Sequence[int], key: str,
               n_layers: int | None = None) -> np.ndarray:
    """Per-layer bits as int64, checked against the searched `options` (and `n_layers` values
    when given).

    Raises:
        ConfigError: a value outside the options, or the wrong number of values; the message
            names `key` (a config key or a table column).
    """
    bits = np.atleast_1d(np.asarray(values))
    if n_layers is not None and bits.shape[-1] != n_layers:
        raise ConfigError(f"{key} has {bits.shape[-1]} values per setting; the network has "
                          f"{n_layers} conv layers")
    bad = sorted(set(bits.reshape(-1).tolist()) - set(int(o) for o in options))
    if bad:
        raise ConfigError(f"{key}: {bad} outside the searched options {sorted(options)}")
    return bits.astype(np.int64)


@dataclass(frozen=True)
class Setting:
    """One precision setting of a network: per-layer (n_layers,) int64 bits."""

    index: int
    kind: str  # "random", "sweep" or "front"
    swept_layer: int  # the lowered layer of a sweep, -1 for a random setting
    input_bits: np.ndarray
    adc_bits: np.ndarray


@dataclass(frozen=True)
class PrecisionPlan:
    """The precision settings every network is evaluated at (see the module docstring).

    Attributes:
        n_settings: random and sweep settings per network.
        input_options, adc_options: the searched input and ADC bits.
        n_layers: conv layers.
        seed: seeds every draw.
        sweep_input_bits, sweep_adc_bits: the nearly lossless setting of a sweep's other layers;
            None: the largest searched value.
        front: per-layer (input bits, ADC bits) of a search's front designs (`read_front`), the
            front settings are drawn from; empty: none.
        n_front: front settings per network (with a `front`).
    """

    n_settings: int
    input_options: tuple[int, ...]
    adc_options: tuple[int, ...]
    n_layers: int = 13
    seed: int = 0
    sweep_input_bits: int | None = None
    sweep_adc_bits: int | None = None
    front: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = ()
    n_front: int = 0

    def __post_init__(self) -> None:
        if self.n_settings < 1:
            raise ConfigError(f"precision.settings={self.n_settings} must be >= 1")
        if self.n_front < 0:
            raise ConfigError(f"precision.front_settings={self.n_front} must be >= 0")
        check_bits([self.high[0]], self.input_options, "precision.sweep_input_bits")
        check_bits([self.high[1]], self.adc_options, "precision.sweep_adc_bits")

    @property
    def high(self) -> tuple[int, int]:
        """(input bits, ADC bits) of the layers a sweep keeps high."""
        return (max(self.input_options) if self.sweep_input_bits is None
                else int(self.sweep_input_bits),
                max(self.adc_options) if self.sweep_adc_bits is None else int(self.sweep_adc_bits))

    def settings(self, net_id: int) -> list[Setting]:
        """The `n_settings` settings of network `net_id`, in order (setting k is the same for
        every `n_settings` > k)."""
        order = np.random.default_rng([self.seed, net_id]).permutation(self.n_layers)
        pairs = [(p, b) for p in self.input_options for b in self.adc_options
                 if (p, b) != self.high]
        out = []
        for k in range(self.n_settings):
            rng = np.random.default_rng([self.seed, net_id, k])
            if k % 2 == 0:
                p, b = random_precisions(self.n_layers, 1, list(self.input_options),
                                         list(self.adc_options), rng)[0]
                out.append(Setting(k, "random", -1, p, b))
                continue
            layer = int(order[(k // 2) % self.n_layers])
            low = pairs[int(rng.integers(len(pairs)))]
            p = np.full(self.n_layers, self.high[0], np.int64)
            b = np.full(self.n_layers, self.high[1], np.int64)
            p[layer], b[layer] = low
            out.append(Setting(k, "sweep", layer, p, b))
        for j in range(self.n_front if self.front else 0):
            pick = np.random.default_rng([self.seed, net_id, FRONT_STREAM, j]).integers(
                len(self.front))
            p, b = (np.array(bits, np.int64) for bits in self.front[int(pick)])
            out.append(Setting(self.n_settings + j, "front", -1, p, b))
        return out


FRONT_STREAM = 1
"""Separates the front settings' draws from the random and sweep settings' (a fourth seed word),
so adding front settings changes none of the others."""


def read_front(path: str | Path, input_options: Sequence[int], adc_options: Sequence[int],
               n_layers: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """The per-layer (input bits, ADC bits) of the designs in a CSV with ``input_bits`` and
    ``adc_bits`` columns (a run's ``pareto.csv`` or ``archive.csv``), each design once.

    Raises:
        ConfigError: the file is missing, unreadable (`xpert_evo.tables.read_csv`) or has no
            designs, or a bad column (named).
    """
    try:
        rows = read_csv(path, dtype=str)
    except TableError as err:
        raise ConfigError(f"precision.front={err} (a run's pareto.csv)") from None
    if rows.empty or not {"input_bits", "adc_bits"} <= set(rows.columns):
        raise ConfigError(f"precision.front={path}: needs rows with input_bits and adc_bits")
    p = per_layer(rows, "input_bits", input_options, n_layers)
    b = per_layer(rows, "adc_bits", adc_options, n_layers)
    designs = zip(p.tolist(), b.tolist(), strict=True)
    return tuple(dict.fromkeys((tuple(pi), tuple(bi)) for pi, bi in designs))


def paired_loss(float_correct: np.ndarray, crossbar_correct: np.ndarray,
                seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """(loss, its std) in pp: the float minus the crossbar accuracy on the same images, and the
    bootstrap std of that difference, resampling images with both outcomes of each (paired)."""
    diff = 100.0 * (np.asarray(float_correct, np.float64)
                    - np.asarray(crossbar_correct, np.float64))
    if len(diff) < 2:
        raise ValueError(f"a paired loss needs >= 2 images, got {len(diff)}")
    boot = bootstrap((diff,), np.mean, n_resamples=resamples, method="percentile",
                     rng=np.random.default_rng(seed), vectorized=True)
    return float(diff.mean()), float(boot.standard_error)


PACKAGED = Path(__file__).parent / "precision_tables"
"""The shipped tables (``precision.dir=xpert_evo/crossbar/precision_tables`` builds into it)."""


def table_dir(root: str | Path, dataset: str, fidelity: str, train_seed: int = 0) -> Path:
    """Folder of one data set's table at one source fidelity: ``<root>/<dataset>-<fidelity>``;
    a replicate on networks trained at `train_seed` > 0: the same with ``-seed<k>`` appended."""
    suffix = f"-seed{train_seed}" if train_seed else ""
    return Path(root).expanduser() / f"{dataset}-{fidelity}{suffix}"


def read_table(folder: str | Path) -> pd.DataFrame:
    """Every complete row of every ``*.csv`` in `folder` (the shards of one table), `COLUMNS`
    typed; a line cut short by a killed process (a key or accuracy missing) is left out."""
    frames = [pd.read_csv(p, dtype={c: str for c, t in COLUMNS.items() if t == "str"},
                          keep_default_na=False, na_values={c: [""] for c, t in COLUMNS.items()
                                                            if t != "str"})
              for p in sorted(Path(folder).glob("*.csv")) if p.stat().st_size]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object" if t == "str" else t)
                             for c, t in COLUMNS.items()})
    table = pd.concat(frames, ignore_index=True)
    table = table.dropna(subset=[c for c, t in COLUMNS.items() if t != "str"])
    return table.astype({c: t if t != "str" else "object" for c, t in COLUMNS.items()})


def append_row(row: Mapping[str, Any], path: Path) -> None:
    """Append one row (`COLUMNS`) to a shard file (header first if new; after a line a killed
    process cut short, on a line of its own), flushed. Each shard file has one writer, so no lock
    is needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([{c: row[c] for c in COLUMNS}])
    new = not path.is_file() or path.stat().st_size == 0
    cut = not new and path.read_bytes()[-1:] != b"\n"  # a line a killed process cut short
    with open(path, "a", newline="") as fh:
        fh.write("\n" if cut else "")
        frame.to_csv(fh, header=new, index=False)
        fh.flush()


def key_of(row: Mapping[str, Any]) -> tuple:
    """The `KEY` of a row (a dict or a table row)."""
    return tuple(int(row[k]) if k in ("net_id", "images") else str(row[k]) for k in KEY)


@dataclass(frozen=True)
class SourceNetwork:
    """A network of the measured source: its plan id, role, channels and validation accuracy."""

    net_id: int
    role: str
    channels: tuple[int, ...]
    val_accuracy_pct: float


def source_networks(source: pd.DataFrame, n_networks: int,
                    net_ids: Sequence[int] | None = None) -> list[SourceNetwork]:
    """The first `n_networks` networks (by plan id) of a source table's seed-0 rows, or the
    networks `net_ids` names (in plan-id order).

    Raises:
        ConfigError: `n_networks` < 1, a plan id the source lacks, or no planned networks.
    """
    if n_networks < 1:
        raise ConfigError(f"precision.n_networks={n_networks} must be >= 1")
    rows = source[(source["seed"] == 0) & source["net_id"].notna()]
    rows = rows.drop_duplicates("net_id").sort_values("net_id")
    if net_ids is not None:
        wanted = {int(i) for i in net_ids}
        missing = sorted(wanted - set(rows["net_id"].astype(int)))
        if missing or not wanted:
            raise ConfigError(f"precision.net_ids: {missing or 'empty'}; the source's plan ids "
                              f"are {int(rows['net_id'].min())}..{int(rows['net_id'].max())}")
        rows = rows[rows["net_id"].isin(wanted)]
    else:
        rows = rows.head(n_networks)
    if rows.empty:
        raise ConfigError("the source has no seed-0 rows of planned networks (net_id)")
    return [SourceNetwork(int(r.net_id), str(r.role),
                          tuple(int(c) for c in str(r.channels).split("-")),
                          float(r.val_accuracy_pct)) for r in rows.itertuples()]


class Evaluator(Protocol):
    """What `build_table` evaluates one network with (`PairedEvaluator`)."""

    float_correct: np.ndarray
    n_images: int

    def crossbar_correct(self, input_bits: Sequence[int], adc_bits: Sequence[int]) -> np.ndarray:
        """Per-image outcomes on the crossbar."""


@dataclass(frozen=True)
class TableRun:
    """What one shard of a table build measures and where it writes.

    Attributes:
        folder: the table's folder (`table_dir`).
        dataset, fidelity: the source's data set and training budget.
        images: test images per evaluation.
        weight_encoding: the crossbar's weight mapping.
        shard, n_shards: this process builds networks i with i % n_shards == shard.
    """

    folder: Path
    dataset: str
    fidelity: str
    images: int
    weight_encoding: str
    shard: int = 0
    n_shards: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.shard < self.n_shards:
            raise ConfigError(f"precision.shard={self.shard} must be in 0..precision.n_shards-1 "
                              f"({self.n_shards - 1})")

    @property
    def path(self) -> Path:
        """This shard's file."""
        return self.folder / f"shard-{self.shard}-of-{self.n_shards}.csv"


def pending(networks: Sequence[SourceNetwork], plan: PrecisionPlan,
            run: TableRun) -> list[tuple[SourceNetwork, list[Setting]]]:
    """This shard's networks and, per network, its settings that no shard file holds yet
    (networks with none left are left out)."""
    done = {key_of(r) for r in read_table(run.folder).to_dict("records")}
    todo = []
    for i, net in enumerate(networks):
        if i % run.n_shards != run.shard:
            continue
        left = [s for s in plan.settings(net.net_id)
                if key_of({"net_id": net.net_id, "input_bits": _joined(s.input_bits),
                           "adc_bits": _joined(s.adc_bits), "images": run.images,
                           "weight_encoding": run.weight_encoding}) not in done]
        if left:
            todo.append((net, left))
    return todo


def build_table(networks: Sequence[SourceNetwork], plan: PrecisionPlan, run: TableRun,
                evaluator_for: Callable[[SourceNetwork], Evaluator]) -> int:
    """Evaluate this shard's missing (network, setting) pairs, appending each row as soon as it is
    measured; returns the number of evaluations made.

    Args:
        networks: the source's networks, in source order (`source_networks`).
        plan: the settings.
        run: the table and this shard.
        evaluator_for: loads (or trains) a network and maps it onto crossbars.
    """
    todo = pending(networks, plan, run)
    total = sum(len(left) for _, left in todo)
    log.info("precision table %s, shard %d of %d: %d evaluations of %d networks to measure",
             run.folder, run.shard, run.n_shards, total, len(todo))
    done, spent_s = 0, 0.0
    for net, left in todo:
        start = time.perf_counter()
        evaluator = evaluator_for(net)
        log.info("net %d (%s): ready in %.0f s, float %.2f %% on %d images", net.net_id,
                 net.role, time.perf_counter() - start,
                 100.0 * float(np.mean(evaluator.float_correct)), evaluator.n_images)
        for setting in left:
            start = time.perf_counter()
            hits = evaluator.crossbar_correct(setting.input_bits, setting.adc_bits)
            loss, std = paired_loss(evaluator.float_correct, hits, seed=plan.seed)
            wall_s = time.perf_counter() - start
            append_row(row_of(net, setting, run, evaluator, hits, (loss, std), plan.seed, wall_s),
                       run.path)
            done += 1
            spent_s += wall_s
            where = "" if setting.swept_layer < 0 else f" layer {setting.swept_layer}"
            log.info("[%d/%d] net %d setting %d (%s%s): loss %.2f ± %.2f pp, %.0f s (%.0f "
                     "images/s); about %.0f min left", done, total, net.net_id, setting.index,
                     setting.kind, where, loss, std, wall_s,
                     evaluator.n_images / max(wall_s, 1e-9), spent_s / done * (total - done) / 60)
    return done


def row_of(net: SourceNetwork, setting: Setting, run: TableRun, evaluator: Evaluator,
           hits: np.ndarray, loss: tuple[float, float], plan_seed: int,
           wall_s: float) -> dict[str, Any]:
    """The table row of one evaluation."""
    return {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": run.dataset, "fidelity": run.fidelity, "net_id": net.net_id, "role": net.role,
        "channels": _joined(net.channels), "setting": setting.index,
        "setting_kind": setting.kind, "swept_layer": setting.swept_layer,
        "input_bits": _joined(setting.input_bits), "adc_bits": _joined(setting.adc_bits),
        "weight_encoding": run.weight_encoding, "images": evaluator.n_images,
        "float_accuracy_pct": 100.0 * float(np.mean(evaluator.float_correct)),
        "crossbar_accuracy_pct": 100.0 * float(np.mean(hits)), "loss_pp": loss[0],
        "loss_std_pp": loss[1], "source_val_accuracy_pct": net.val_accuracy_pct,
        "plan_seed": plan_seed, "wall_s": wall_s,
    }


def _joined(values: Iterable[int]) -> str:
    return "-".join(str(int(v)) for v in values)


def per_layer(table: pd.DataFrame, column: str, options: Sequence[int] | None = None,
              n_layers: int | None = None) -> np.ndarray:
    """A dash-joined per-layer column as (rows, L) int64, checked like `check_bits` (the
    column named in the error) when `options` are given.

    Raises:
        ConfigError: rows of different lengths, a value that is not an integer, or (with
            `options`) outside them.
    """
    try:
        rows = [[int(v) for v in str(s).split("-")] for s in table[column]]
        values = np.array(rows, np.int64) if rows else np.zeros((0, n_layers or 0), np.int64)
    except ValueError as err:
        raise ConfigError(f"column {column}: {err} (expected dash-joined integers, one per conv "
                          "layer, all rows the same length)") from err
    if values.ndim != 2:
        raise ConfigError(f"column {column}: rows of different lengths")
    if options is not None:
        check_bits(values, options, f"column {column}", n_layers)
    return values

"""Zero-cost proxy scores, their surrogate and a % calibration; `build_accuracy` for a run.

`build_accuracy` reads the `accuracy:` and `data:` config nodes and returns the run's accuracy
source: a `SourcePredictor` for ``accuracy=measured``, else a `ProxyEstimator` (a
`xpert_evo.accuracy.model.ProxyScorer`, which `ProxyPredictor` asks). The search (NSGANetV2-style)
uses a proxy as:
`true_score` on an initial sample, `fit`, search on `predict`, `true_score` on the most promising
new candidates, `fit` again, for `budget.rounds` rounds. Proxy scores are not accuracies:
`to_accuracy` maps them to % only after `calibrate` has seen measured accuracies; until then
`label` and `is_percent` say the numbers are on the proxy's own scale.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from tqdm.auto import tqdm

from xpert_evo.accuracy.batch import ProxyBatch, noise_batch, proxy_batch
from xpert_evo.accuracy.cache import CACHE_FILE, ScoreCache, cache_key
from xpert_evo.accuracy.predictor import SourcePredictor, source_accuracy
from xpert_evo.accuracy.proxies import Proxy, get_proxy, score_architecture
from xpert_evo.accuracy.surrogate import Surrogate, SurrogateBudget, rank_agreement
from xpert_evo.config import plain_config
from xpert_evo.space.backbone import GEOMETRY, Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataError, DataSpec, cache_root, data_roots
from xpert_evo.training.network import torch_threads

log = logging.getLogger(__name__)

SOURCE_PREDICTOR = "measured"
"""``accuracy.proxy`` value (``accuracy=measured``) that ranks by the accuracy predicted from the
measured source (`xpert_evo.accuracy.predictor.SourcePredictor`) instead of a zero-cost proxy."""


@dataclass(frozen=True)
class AccuracySpec:
    """The `accuracy:` config node, typed (see conf/accuracy/naswot.yaml for the meaning).

    `surrogate: null` (the search then scores every design with the true proxy) and
    `budget: null` are accepted and give the defaults. `refine` and `refine_budget` configure
    the search's online refinement (`xpert_evo.search.setup.RefineBudget`), not the estimator.
    With ``proxy: measured`` (conf/accuracy/measured.yaml) `source_dir`, `fidelity` and `model`
    choose the measured source and its predictor, and `transfer` maps a data set to another whose
    packaged source's predictor is one more feature; the proxy keys are unused.
    """

    proxy: str = "naswot"
    batch_size: int = 128
    surrogate: dict[str, Any] = field(default_factory=dict)
    budget: SurrogateBudget = field(default_factory=SurrogateBudget)
    cache_dir: str | None = None
    num_threads: int | None = None
    calibration: str | None = None
    calibration_fidelity: str | None = None
    source_dir: str | None = None
    fidelity: str | None = None
    model: str = "auto"
    transfer: dict[str, str | None] = field(default_factory=dict)
    refine: bool = False
    refine_budget: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> AccuracySpec:
        """Build from a dict or DictConfig; unknown keys are an error."""
        values = dict(plain_config(cfg) or {})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown accuracy config keys {sorted(unknown)}")
        if "budget" in values:
            values["budget"] = SurrogateBudget.from_config(values["budget"])
        if "transfer" in values:
            values["transfer"] = dict(values["transfer"] or {})
            bad = sorted(set(values["transfer"]) - set(GEOMETRY))
            if bad:
                raise ValueError(f"accuracy.transfer keys {bad} are not data sets; the keys are "
                                 f"among {sorted(GEOMETRY)}")
        if "refine_budget" in values:
            values["refine_budget"] = dict(values["refine_budget"] or {})
        if "surrogate" in values:
            surrogate = values["surrogate"]
            values["surrogate"] = dict(surrogate) if isinstance(surrogate, Mapping) else {}
        return cls(**values)


class ProxyEstimator:
    """True proxy scores (cached), a fitted surrogate, and an optional proxy -> % calibration.

    Attributes:
        proxy: the registered proxy.
        backbone: network geometry.
        batch: the batch the proxy sees.
        seed: network initialisation seed.
        budget: true-proxy budget for the search loop.
        cache: the score cache (hit/miss counts in `cache.stats()`).
        surrogate: the learned predictor.
        fit_history: the metrics dict of every `fit`, in order.
        n_true_calls: true proxy evaluations actually computed (cache misses).
    """

    def __init__(
        self,
        proxy: Proxy,
        backbone: Backbone,
        batch: ProxyBatch,
        seed: int,
        cache: ScoreCache,
        surrogate: Surrogate,
        budget: SurrogateBudget,
        num_threads: int | None = None,
    ) -> None:
        self.proxy, self.backbone, self.batch, self.seed = proxy, backbone, batch, seed
        self.cache, self.surrogate, self.budget = cache, surrogate, budget
        self.num_threads = num_threads
        self.fit_history: list[dict[str, float]] = []
        self.n_true_calls = 0
        self._calibration: IsotonicRegression | None = None
        self._n_measured = 0

    @property
    def source(self) -> str:
        """Where the scores come from, e.g. "naswot on cifar10 train batch ... (real data)"."""
        if not self.proxy.uses_data:
            text = f"{self.proxy.name} (data-independent, no images needed)"
        else:
            text = f"{self.proxy.name} on {self.batch.source}"
        if self._calibration is not None:
            text += f", mapped to % by isotonic fit on {self._n_measured} measured networks"
        return text

    @property
    def basis(self) -> str:
        """The data the scores rest on, in a few words: "proxy batch: real CIFAR-10 images",
        "proxy batch: Gaussian noise (no cifar10 found at /data)", or "no images (params is
        data-independent)"."""
        if not self.proxy.uses_data:
            return f"no images ({self.proxy.name} is data-independent)"
        return f"proxy batch: {self.batch.basis}"

    @property
    def is_percent(self) -> bool:
        """True when `to_accuracy` returns accuracy in % (after `calibrate`)."""
        return self._calibration is not None

    @property
    def label(self) -> str:
        """Column / axis label for values returned by `to_accuracy`."""
        if self.is_percent:
            return "accuracy_pct"
        return f"{self.proxy.name}_score (proxy scale, not %)"

    @property
    def n_cache_hits(self) -> int:
        """True-score lookups answered by the cache (memory or disk)."""
        return self.cache.memory_hits + self.cache.disk_hits

    def _channels(self, channels: np.ndarray | Genomes) -> np.ndarray:
        if isinstance(channels, Genomes):
            channels = channels.channels
        c = np.atleast_2d(np.asarray(channels, dtype=np.int64))
        if c.shape[1] != self.backbone.n_conv:
            raise ValueError(f"channels have {c.shape[1]} layers, backbone {self.backbone.n_conv}")
        if (c < 1).any():
            raise ValueError("channels must be positive")
        return c

    def _key(self, row: np.ndarray) -> str:
        identity = self.batch.identity if self.proxy.uses_data else "no-data"
        return cache_key(
            self.proxy.name, self.proxy.version, identity, self.backbone.input_size,
            self.backbone.num_classes, self.seed, row.tolist(),
        )

    def true_score(self, channels: np.ndarray | Genomes) -> np.ndarray:
        """True proxy scores of (N, L) channels (or `Genomes`), shape (N,); cached.

        Only distinct architectures missing from the cache are computed (with a progress bar
        when more than one); each is stored as soon as it is computed.
        """
        c = self._channels(channels)
        keys = [self._key(row) for row in c]
        known = self.cache.get_many(keys)
        todo = {k: row for k, row in zip(keys, c, strict=True) if k not in known}
        if todo:
            bar = tqdm(
                todo.items(), total=len(todo), desc=f"{self.proxy.name} (true proxy)",
                unit="arch", disable=len(todo) <= 1, leave=False,
            )
            with torch_threads(self.num_threads):
                for key, row in bar:
                    score = score_architecture(
                        self.proxy, row, self.batch.images, self.backbone, self.seed
                    )
                    self.cache.put_many({key: score})
                    known[key] = score
                    self.n_true_calls += 1
        return np.array([known[k] for k in keys], dtype=np.float64)

    def fit(self, channels: np.ndarray | Genomes, scores: np.ndarray) -> dict[str, float]:
        """Fit the surrogate on (channels, scores); return and log its k-fold rank agreement.

        Returns:
            {"kendall_tau", "spearman_rho", "n", "folds"}; also appended to `fit_history`.
        """
        metrics = self.surrogate.fit(self._channels(channels), np.asarray(scores, float))
        self.fit_history.append(metrics)
        return metrics

    def predict(self, channels: np.ndarray | Genomes) -> tuple[np.ndarray, np.ndarray]:
        """Surrogate mean and std of the proxy score, each (N,), on the proxy's scale."""
        return self.surrogate.predict(self._channels(channels))

    def calibrate(
        self, channels: np.ndarray | Genomes, accuracy_pct: np.ndarray
    ) -> dict[str, float]:
        """Fit a monotone (isotonic) map proxy score -> accuracy % from measured networks.

        Scores the measured architectures with the true proxy, then fits an increasing isotonic
        regression clipped to the measured range. Returns {"n", "kendall_tau"} of proxy vs
        measured accuracy.
        """
        acc = np.asarray(accuracy_pct, dtype=np.float64)
        scores = self.true_score(channels)
        if len(acc) != len(scores) or len(acc) < 2:
            raise ValueError("calibrate needs at least 2 measured networks, one accuracy each")
        if acc.max() <= 1.0:
            raise ValueError("accuracy_pct looks like a fraction; give percentages (0..100)")
        self._calibration = IsotonicRegression(increasing=True, out_of_bounds="clip")
        self._calibration.fit(scores, acc)
        self._n_measured = len(acc)
        tau, _ = rank_agreement(acc, scores)
        log.info("calibrated %s -> accuracy %% on %d networks (tau %.3f)", self.proxy.name,
                 len(acc), tau)
        return {"n": len(acc), "kendall_tau": tau}

    def to_accuracy(self, scores: np.ndarray) -> np.ndarray:
        """Accuracy % from proxy scores when calibrated, else the scores unchanged (see `label`)."""
        scores = np.asarray(scores, dtype=np.float64)
        if self._calibration is None:
            return scores.copy()
        return self._calibration.predict(scores.reshape(-1)).reshape(scores.shape)


def _resolve_batch(proxy: Proxy, spec: AccuracySpec, data: DataSpec, seed: int,
                   cache_dir: Path) -> ProxyBatch:
    if not proxy.uses_data:
        return noise_batch(1, data.input_size, seed)
    if data.dataset == "none":
        log.warning("data.dataset=none: %s scores on a Gaussian-noise batch (data-free)",
                    proxy.name)
        return noise_batch(spec.batch_size, data.input_size, seed, "data.dataset=none")
    try:
        return proxy_batch(data, spec.batch_size, seed, cache_dir)
    except DataError as e:
        present = [r for r in data_roots(data.root) if r.exists()]
        if present:  # a root that is there but holds no data set is a mistake, not "no data"
            raise DataError(
                f"data.root={data.root!r}: {present[0]} holds no usable {data.dataset} ({e}). "
                "Fix: point data.root at the data set, or run data-free on purpose with "
                "data.dataset=none"
            ) from e
        if not data.allow_data_free:
            raise
        log.warning(
            "NO DATA: %s\n>>> DATA-FREE FALLBACK: %s will score architectures on a batch of "
            "Gaussian noise, not on %s images. Scores differ from real data, and how well noise "
            "ranks architectures is unmeasured. Set data.allow_data_free=false to make this an "
            "error.", e, proxy.name, data.dataset,
        )
        where = " or ".join(str(r) for r in data_roots(data.root))
        why = f"no {data.dataset} found at {where}"
        return noise_batch(spec.batch_size, data.input_size, seed, why)


def build_accuracy(
    cfg_accuracy: Mapping[str, Any] | None,
    cfg_data: Mapping[str, Any] | None,
    backbone: Backbone,
    seed: int,
    cache_dir: str | Path | None = None,
) -> SourcePredictor | ProxyEstimator:
    """The accuracy source of one run, from the `accuracy:` and `data:` config nodes: a
    `SourcePredictor` (no penalty yet) for ``accuracy.proxy=measured``, else a `ProxyEstimator`.

    Args:
        cfg_accuracy: dict or DictConfig with keys of `AccuracySpec`.
        cfg_data: dict or DictConfig with keys of `DataSpec`.
        backbone: geometry; its input size and classes must match the data node.
        seed: seeds the proxy batch, network initialisation and surrogate.
        cache_dir: overrides `accuracy.cache_dir`; both default to `$XPERT_EVO_CACHE` or
            `~/.cache/xpert_evo`. Scores go to `<cache_dir>/proxy_scores.sqlite`.

    Raises:
        DataError: the data set is missing and `data.allow_data_free` is false, or
            ``data.root`` exists but holds no usable data set (an empty folder, a corrupt
            archive): the data-free fallback is only for a root that is not there.
    """
    spec = AccuracySpec.from_config(cfg_accuracy)
    data = DataSpec.from_config(cfg_data)
    if spec.proxy == SOURCE_PREDICTOR:

        model = source_accuracy(data.dataset, backbone, spec.fidelity, spec.source_dir,
                                spec.model, spec.transfer.get(data.dataset))
        log.info("accuracy objective: %s", model.source)
        return model
    if data.dataset != "none" and (
        data.input_size != backbone.input_size or data.num_classes != backbone.num_classes
    ):
        raise ValueError(
            f"data says {data.input_size}px / {data.num_classes} classes but the backbone has "
            f"{backbone.input_size}px / {backbone.num_classes} classes"
        )
    data = DataSpec(**{**data.__dict__, "input_size": backbone.input_size})
    root = cache_root(cache_dir if cache_dir is not None else spec.cache_dir)
    proxy = get_proxy(spec.proxy)
    batch = _resolve_batch(proxy, spec, data, seed, root)
    unknown = set(spec.surrogate) - {"model", "n_members", "cv_folds"}
    if unknown:
        raise ValueError(f"unknown accuracy.surrogate keys {sorted(unknown)}")
    surrogate = Surrogate(**{**spec.surrogate, "seed": seed, "backbone": backbone})
    estimator = ProxyEstimator(
        proxy, backbone, batch, seed, ScoreCache(root / CACHE_FILE), surrogate, spec.budget,
        spec.num_threads,
    )
    log.info("accuracy objective: %s", estimator.source)
    if spec.calibration:
        channels, accuracy = calibration_rows(
            spec.calibration, data.dataset, spec.calibration_fidelity
        )
        estimator.calibrate(channels, accuracy)
    return estimator


def calibration_rows(
    path: str | Path, dataset: str, fidelity: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Channels (M, L) and mean clean accuracy (M,) in % of the networks in a calibration table.

    The table needs the columns `channels` ("64-64-...") and `accuracy_pct`; a ground-truth table
    (`xpert_evo.training.groundtruth`) qualifies. When it has `dataset` / `fidelity` columns, only
    rows of ``dataset`` are used, and one fidelity: ``fidelity`` (`accuracy.calibration_fidelity`),
    required when the rows hold more than one. Rows of the same channels (one network evaluated at
    several precisions) are averaged; networks come in the order of their first row.

    Raises:
        ValueError: the file is missing or lacks a column, no row matches, or the fidelity is
            ambiguous; the message names the key and the values found.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"accuracy.calibration={str(path)!r} does not exist")
    table = pd.read_csv(path, dtype={"channels": str, "dataset": str, "fidelity": str})
    missing = {"channels", "accuracy_pct"} - set(table.columns)
    if missing:
        raise ValueError(
            f"accuracy.calibration={str(path)!r} lacks the columns {sorted(missing)} "
            f"(has {list(table.columns)})"
        )
    table = table[table["accuracy_pct"].notna()]
    if "dataset" in table:
        found = sorted(table["dataset"].dropna().unique())
        table = table[table["dataset"] == dataset]
        if not len(table):
            raise ValueError(
                f"accuracy.calibration={str(path)!r} has no rows for data.dataset={dataset!r} "
                f"(data sets in it: {found})"
            )
    if "fidelity" in table:
        found = sorted(table["fidelity"].dropna().unique())
        if fidelity is not None:
            table = table[table["fidelity"] == fidelity]
            if not len(table):
                raise ValueError(
                    f"accuracy.calibration_fidelity={fidelity!r} matches no row of "
                    f"{str(path)!r}; fidelities there: {found}"
                )
        elif len(found) > 1:
            raise ValueError(
                f"accuracy.calibration={str(path)!r} mixes training budgets {found}; "
                "choose one with accuracy.calibration_fidelity=<one of them>"
            )
    mean = table.groupby("channels", sort=False)["accuracy_pct"].mean()
    channels = np.array([[int(v) for v in str(c).split("-")] for c in mean.index])
    return channels, mean.to_numpy(dtype=float)

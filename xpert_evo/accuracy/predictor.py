"""Clean accuracy in % of any channel configuration, predicted from stand-alone trainings.

`CleanAccuracyPredictor` is fitted on a measured source (`xpert_evo.training.source`): networks of
the search space trained stand-alone at one budget (fidelity), each with its validation accuracy.
It predicts the validation accuracy in % of any channel configuration at that budget, with a
standard deviation, for a whole population in one call (`bench/studies/accuracy_fidelity.py`
measures the rate).

Features (`capacity_features`, computed at full width from the backbone's geometry): the mean
log2(channels / smallest option) of each resolution stage (the layers between max-pools), log10
parameters and log10 multiply-accumulates per image, and the head width (the last layer's, which the
classifier reads). Models (`MODELS`): Bayesian ridge on the stage widths, parameters and MACs, on
the stage widths only, or on the stage widths and the head width, and a Gaussian process (isotropic
RBF + linear + white noise). With ``model="auto"`` the one with the lowest cross-validated mean
absolute error on the fitting networks is used (scikit-learn `cross_val_predict`); every candidate's
figures are kept in `report`. The std is the model's predictive std, training noise included,
rescaled so that its mean square over the fitting networks equals the cross-validated mean square
error (``report["std_scale"]``): a model fitted on tens of networks is overconfident in-sample, and
the stated std should be the error to expect on a network it has not seen. Why not the 16-feature
extra-trees surrogate: tens of trainings cannot support a tree ensemble.

Transfer (`transfer`, config `accuracy.transfer`): a data set with few, noisy trainings (Tiny
ImageNet) can borrow the ranking another data set's larger source learned (CIFAR-10): that
predictor's % is one more feature, and the "transfer" model maps it linearly onto this data set's
%. Model selection decides on the fitting networks whether it helps.

`SourcePredictor` puts a fitted predictor (and the precision penalty) behind the search's
`AccuracyPredictor` interface (`xpert_evo.accuracy.model`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.stats import kendalltau
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, WhiteKernel
from sklearn.linear_model import BayesianRidge
from sklearn.model_selection import KFold, LeaveOneOut, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from xpert_evo.accuracy.model import AccuracyEstimate
from xpert_evo.accuracy.rows import RowTable, find_rows, row_keys
from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes


def stage_slices(backbone: Backbone) -> list[slice]:
    """The conv layers of each resolution stage (layers between max-pools), as slices."""
    bounds = [0, *backbone.pool_after]
    if bounds[-1] != backbone.n_conv:
        bounds.append(backbone.n_conv)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def capacity_features(channels: np.ndarray, backbone: Backbone, smallest: int = 64) -> np.ndarray:
    """Predictor features of channel configurations (N, n_conv) -> (N, stages + 3), float64.

    Columns: mean log2(channels / `smallest`) per stage, the head width log2(last layer's
    channels / `smallest`) (the features the linear classifier reads after global pooling),
    log10 parameters, log10 MACs per image.
    """
    c = np.asarray(channels, dtype=np.float64).reshape(-1, backbone.n_conv)
    width = np.log2(c / smallest)
    stages = np.column_stack([width[:, s].mean(axis=1) for s in stage_slices(backbone)])
    cin = backbone.in_channels_of(c)
    k2 = backbone.kernel**2
    params = (cin * c * k2).sum(axis=1) + c[:, -1] * backbone.num_classes
    return np.column_stack([stages, width[:, -1], np.log10(params), np.log10(backbone.macs(c))])


def _gp() -> GaussianProcessRegressor:
    kernel = (ConstantKernel() * RBF(3.0, (0.5, 100.0)) + ConstantKernel() * DotProduct()
              + WhiteKernel())
    return GaussianProcessRegressor(kernel, normalize_y=True, random_state=0)


def _without_head(n_stages: int) -> FunctionTransformer:
    """Every feature column but the head width (column `n_stages`)."""
    return FunctionTransformer(lambda x: np.delete(x, n_stages, axis=1))


def _leading(n_columns: int) -> FunctionTransformer:
    """The first `n_columns` feature columns."""
    return FunctionTransformer(lambda x: x[:, :n_columns])


MODELS: dict[str, Callable[[int], Pipeline]] = {
    "bayes_ridge": lambda n_stages: make_pipeline(
        _without_head(n_stages), StandardScaler(), BayesianRidge()),
    "bayes_ridge_stages": lambda n_stages: make_pipeline(
        _leading(n_stages), StandardScaler(), BayesianRidge()),
    "bayes_ridge_head": lambda n_stages: make_pipeline(
        _leading(n_stages + 1), StandardScaler(), BayesianRidge()),
    "gp": lambda n_stages: make_pipeline(_without_head(n_stages), StandardScaler(), _gp()),
    "transfer": lambda n_stages: make_pipeline(
        FunctionTransformer(lambda x: x[:, -1:]), StandardScaler(), BayesianRidge()),
}
"""Candidate models by name: a scikit-learn pipeline from the feature matrix to accuracy %.
"bayes_ridge" and "gp" read every feature but the head width, "bayes_ridge_stages" the stage
widths, "bayes_ridge_head" the stage widths and the head width: with 200 classes read from a
quarter-width last layer (16 features at 64 channels), the classifier's input is a bottleneck
that the stage means average away. With a `transfer` predictor the last feature column is its
prediction: "bayes_ridge" and "gp" see it beside the capacity features, "transfer" sees it alone
(a linear map of the other data set's prediction onto this one's %, so it ranks designs exactly
as that predictor does)."""

TRANSFER_ONLY = ("transfer",)
"""Models that need a `transfer` predictor."""

CAPACITY_ONLY = ("bayes_ridge_stages", "bayes_ridge_head")
"""Models that read the capacity features only, never the `transfer` column."""

LOO_MAX = 30
"""Up to this many networks model selection cross-validates leave-one-out, above it 10-fold."""


def _predict_std(model: Pipeline, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, predictive std) of a fitted pipeline whose last step returns a std."""
    *steps, last = model.steps
    for _, step in steps:
        x = step.transform(x)
    return last[1].predict(x, return_std=True)


@dataclass
class CleanAccuracyPredictor:
    """Clean accuracy (%) of channel configurations, fitted on measured ones.

    Attributes:
        backbone: network geometry (features are computed from it).
        model: a `MODELS` name, or "auto" (lowest cross-validated MAE on the fitting networks).
        smallest: the smallest channel option (features are log2 multiples of it).
        transfer: another fitted predictor (another data set's) whose predicted % of the same
            channel configurations is one more feature, or None. It carries what a larger
            source learned about which networks train well into a data set with few trainings.
        transfer_label: what `transfer` predicts, in words (for the reports).
        report: after `fit`: per candidate its cross-validated MAE (pp) and Kendall tau
            (leave-one-out up to `LOO_MAX` networks, else 10-fold), the chosen model and the
            number of networks fitted on.
    """

    backbone: Backbone
    model: str = "auto"
    smallest: int = 64
    transfer: CleanAccuracyPredictor | None = None
    transfer_label: str = ""
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = [m for m in MODELS if self.transfer is not None or m not in TRANSFER_ONLY]
        if self.model != "auto" and self.model not in known:
            raise ValueError(f"predictor model={self.model!r} is not one of "
                             f"{['auto', *known]}"
                             + (" (transfer needs a transfer predictor)"
                                if self.model in TRANSFER_ONLY else ""))
        self._candidates = known if self.model == "auto" else [self.model]
        self._fitted: Pipeline | None = None
        self._std_scale = 1.0
        self._reads_transfer = False

    def features(self, channels: np.ndarray, transfer: bool = True) -> np.ndarray:
        """`capacity_features` of this predictor's backbone, then the `transfer` predictor's
        predicted % when there is one and `transfer` asks for it."""
        x = capacity_features(channels, self.backbone, self.smallest)
        if self.transfer is None or not transfer:
            return x
        return np.column_stack([x, self.transfer.predict(channels)[0]])

    def fit(self, channels: np.ndarray, accuracy_pct: np.ndarray) -> CleanAccuracyPredictor:
        """Fit on measured (N, n_conv) channel configurations and their accuracies in %."""
        y = np.asarray(accuracy_pct, dtype=np.float64).reshape(-1)
        if len(y) < 4:
            raise ValueError(f"the predictor needs at least 4 measured networks, got {len(y)}")
        x = self.features(channels)
        n_stages = len(stage_slices(self.backbone))
        names = self._candidates
        scores: dict[str, dict[str, float]] = {}
        cv = LeaveOneOut() if len(y) <= LOO_MAX else KFold(10, shuffle=True, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cv_pred = {}
            for name in names:
                cv_pred[name] = cross_val_predict(MODELS[name](n_stages), x, y, cv=cv)
                scores[name] = {"cv_mae_pp": float(np.abs(cv_pred[name] - y).mean()),
                                "cv_kendall_tau": float(kendalltau(cv_pred[name], y)[0])}
            chosen = min(names, key=lambda n: scores[n]["cv_mae_pp"])
            self._fitted = MODELS[chosen](n_stages).fit(x, y)
        std = _predict_std(self._fitted, x)[1]
        self._reads_transfer = self.transfer is not None and chosen not in CAPACITY_ONLY
        self._std_scale = float(np.sqrt(np.mean((cv_pred[chosen] - y) ** 2) / np.mean(std**2)))
        self.report = {"model": chosen, "n_fit": len(y), "candidates": scores,
                       "std_scale": self._std_scale,
                       "transfer": self.transfer_label if self._reads_transfer else ""}
        return self

    def predict(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted clean accuracy (mean %, std pp) of (N, n_conv) channel configurations."""
        if self._fitted is None:
            raise RuntimeError("CleanAccuracyPredictor.predict before fit")
        # a capacity-only model slices its columns off the front: the transfer column, costly to
        # compute for a population, is left out
        mean, std = _predict_std(self._fitted, self.features(channels, self._reads_transfer))
        return np.asarray(mean, dtype=np.float64), self._std_scale * np.asarray(std, np.float64)


@dataclass
class SourcePredictor:
    """The `AccuracyPredictor` on a measured source: clean accuracy in % predicted by a
    `CleanAccuracyPredictor`, minus the precision penalty's loss.

    Each distinct channel configuration is predicted once (with the others new in the same call)
    and its (clean %, std pp) cached, so a design's accuracy never depends on which population
    asked; `refit` forgets the cache.

    Attributes:
        predictor: the fitted predictor.
        channels: (M, L) channel configurations of the source; accuracy_pct: (M,) their %.
        dataset, fidelity: what the % stands for (data set, training budget label).
        penalty: the crossbar precision loss model, or None (no loss).
    """

    predictor: CleanAccuracyPredictor
    channels: np.ndarray
    accuracy_pct: np.ndarray
    dataset: str
    fidelity: str
    penalty: PrecisionPenalty | None = None
    is_percent: bool = True
    kind: str = "predicted"
    use_surrogate: bool = False

    def __post_init__(self) -> None:
        self.cache = RowTable(2)

    @property
    def label(self) -> str:
        """Axis / column label: accuracy in % at the source's training budget."""
        return f"accuracy % at {self.fidelity}"

    @property
    def source(self) -> str:
        """Where the accuracies come from, in words."""
        report = self.predictor.report
        mae = report["candidates"][report["model"]]["cv_mae_pp"]
        transfer = f", with {report['transfer']} as a feature" if report["transfer"] else ""
        return (f"predicted validation accuracy of {self.dataset} networks trained at "
                f"{self.fidelity} ({report['model']} on {report['n_fit']} networks trained "
                f"stand-alone{transfer}, cross-validated error {mae:.2f} pp)")

    @property
    def basis(self) -> str:
        """The data the accuracies rest on, in a few words: "predicted from 19 trained networks
        (cifar10, e5-pc500-w0.25-b64)" (a network trained at several seeds counts once), and the
        transfer predictor when the model reads it."""
        report = self.predictor.report
        transfer = f" and {report['transfer']}" if report["transfer"] else ""
        return (f"predicted from {report['n_fit']} trained networks ({self.dataset}, "
                f"{self.fidelity}){transfer}")

    @property
    def n_scored(self) -> int:
        """Distinct channel configurations predicted since the last fit."""
        return len(self.cache)

    def known(self, channels: np.ndarray) -> np.ndarray:
        """Mask (N,): which channel configurations (N, L) are predicted and cached."""
        return self.cache.lookup(channels)[0]

    def with_penalty(self, penalty: PrecisionPenalty | None) -> SourcePredictor:
        """This predictor (sharing its fitted model) with ``penalty`` and an empty cache."""
        return replace(self, penalty=penalty)

    def clean(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clean accuracy %, std pp, origin "predicted"), each (N,), of channels (N, L)."""
        channels = np.atleast_2d(np.asarray(channels, dtype=np.int64))
        known, values = self.cache.lookup(channels)
        if not known.all():
            new = np.unique(channels[~known], axis=0)
            self.cache.add(new, np.column_stack(self.predictor.predict(new)))
            known, values = self.cache.lookup(channels)
        return values[:, 0], values[:, 1], np.full(len(channels), "predicted")

    def score(self, channels: np.ndarray) -> np.ndarray:
        """Predicted clean accuracy (N,) in % of channels (N, L), cached."""
        return self.clean(channels)[0]

    def predict(self, genomes: Genomes) -> AccuracyEstimate:
        """Clean % (cached), precision loss and net % of every design of ``genomes``."""
        clean, std, origin = self.clean(genomes.channels)
        return AccuracyEstimate.of(genomes, clean, std, origin, self.penalty, True)

    def refit(self, channels: np.ndarray, accuracy_pct: np.ndarray) -> dict[str, Any]:
        """Refit on the source plus these trained (channels, accuracy %), which replace those of
        an earlier `refit` (online refinement passes every network it trained so far); forgets
        the cache and returns the fit report."""
        channels = np.concatenate([self.channels, np.asarray(channels, np.int64)])
        accuracy = np.concatenate([self.accuracy_pct, np.asarray(accuracy_pct, float)])
        report = self.predictor.fit(channels, accuracy).report
        self.cache.clear()
        return report

    def extend_source(self, channels: np.ndarray, accuracy_pct: np.ndarray) -> None:
        """Add measured networks (channels (N, L), mean validation % over their seeds) to the
        source itself, as the verified front designs of ``verify.rounds`` are: every later fit
        keeps them. Does not refit (`add_measured` does)."""
        self.channels = np.concatenate([self.channels, np.asarray(channels, np.int64)])
        self.accuracy_pct = np.concatenate([self.accuracy_pct, np.asarray(accuracy_pct, float)])

    def add_measured(self, channels: np.ndarray, accuracy_pct: np.ndarray) -> dict[str, Any]:
        """`extend_source`, then refit on the grown source; returns its `fit_summary`."""
        self.extend_source(channels, accuracy_pct)
        return fit_summary(self.refit(np.zeros((0, self.channels.shape[1]), np.int64),
                                      np.zeros(0)))

    def is_measured(self, channels: np.ndarray) -> np.ndarray:
        """Mask (N,): which channel configurations (N, L) the source holds (a network trained
        there, whatever its role)."""
        return find_rows(row_keys(self.channels), np.atleast_2d(channels))[0]

    def state(self) -> dict[str, Any]:
        """The source the predictor is fitted on and the cached predictions (a resume fits on the
        very same networks and answers with the very same numbers)."""
        return {"rows": self.cache.rows, "values": self.cache.values,
                "source": (self.channels, self.accuracy_pct)}

    def restore(self, state: dict[str, Any]) -> None:
        """Load `state`: refit on its source when that differs from the one built from the config
        (verified networks added during the run, or rows another run appended to a user source
        since), then its cached predictions."""
        channels, accuracy = state.get("source", (self.channels, self.accuracy_pct))
        if not (np.array_equal(channels, self.channels)
                and np.array_equal(accuracy, self.accuracy_pct)):
            self.channels, self.accuracy_pct = np.asarray(channels), np.asarray(accuracy)
            self.refit(np.zeros((0, self.channels.shape[1]), np.int64), np.zeros(0))
        self.cache.clear()
        if len(state["values"]):
            self.cache.add(state["rows"], state["values"])


def fit_summary(report: dict[str, Any]) -> dict[str, Any]:
    """A `CleanAccuracyPredictor.report` in the few figures a log line gives: networks fitted
    on (``n``), the chosen model, its cross-validated Kendall tau and mean absolute error (pp)."""
    cv = report["candidates"][report["model"]]
    return {"n": report["n_fit"], "model": report["model"],
            "kendall_tau": cv["cv_kendall_tau"], "mae_pp": cv["cv_mae_pp"]}


def source_accuracy(
    dataset: str,
    backbone: Backbone,
    fidelity: str | None = None,
    source_dir: str | None = None,
    model: str = "auto",
    transfer_from: str | None = None,
) -> SourcePredictor:
    """A `SourcePredictor` (no penalty) fitted on every network of a data set's measured source
    (one mean per network over its training seeds).

    `transfer_from` names another data set: the predictor of its packaged source (at that data
    set's geometry, `model` "auto") becomes one more feature (`CleanAccuracyPredictor.transfer`).

    Raises:
        ConfigError: as `find_source` does (for either source), or `transfer_from` is this data
            set or an unknown one.
    """
    from xpert_evo.training.groundtruth import per_layer_ints
    from xpert_evo.training.source import find_source, network_means

    transfer, label = transfer_predictor(dataset, transfer_from)
    chosen, table = find_source(dataset, fidelity, source_dir)
    nets = network_means(table)
    channels = per_layer_ints(nets["channels"])
    accuracy = nets["val_accuracy_pct"].to_numpy(dtype=np.float64)
    predictor = CleanAccuracyPredictor(backbone, model, transfer=transfer, transfer_label=label)
    return SourcePredictor(predictor.fit(channels, accuracy), channels, accuracy, dataset, chosen)


def transfer_predictor(
    dataset: str, transfer_from: str | None
) -> tuple[CleanAccuracyPredictor | None, str]:
    """The predictor of `transfer_from`'s packaged source (at its own geometry, model "auto"),
    to serve `dataset` as a feature, and its description; (None, "") for None.

    Raises:
        ConfigError: `transfer_from` is `dataset` or not a known data set, or has no source.
    """
    from xpert_evo.config import ConfigError
    from xpert_evo.space.backbone import GEOMETRY

    if transfer_from is None:
        return None, ""
    allowed = sorted(set(GEOMETRY) - {dataset})
    if transfer_from not in allowed:
        raise ConfigError(f"accuracy.transfer.{dataset}={transfer_from!r}: transfer from one "
                          f"of {allowed} (another data set with a packaged source) or null")
    other = source_accuracy(transfer_from, Backbone(*GEOMETRY[transfer_from]))
    return other.predictor, (f"the {transfer_from} predictor ({other.predictor.report['n_fit']} "
                             f"networks at {other.fidelity})")

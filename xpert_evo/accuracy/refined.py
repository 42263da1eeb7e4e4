"""Online refinement: a predictor that learns from networks trained during the search.

`RefinedPredictor` wraps a `SourcePredictor` or a `ProxyPredictor` and keeps the clean accuracy
(%) of every network the search trained (`add_trained`). After `refit_trained` it answers with
trained accuracy where the channels were trained (std 0, origin "trained") and elsewhere:

- over a source predictor, the source predictor refitted on its source plus the trained
  networks;
- over a proxy, a `TrainedAccuracyModel` fitted on the trained networks' proxy scores and sizes,
  in % from its first fit on (before it, the proxy's own answers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xpert_evo.accuracy.model import AccuracyEstimate, AccuracyPredictor, ProxyScorer
from xpert_evo.accuracy.predictor import SourcePredictor, fit_summary
from xpert_evo.accuracy.proxy_predictor import ProxyPredictor
from xpert_evo.accuracy.rows import RowTable
from xpert_evo.accuracy.trained import TrainedAccuracyModel
from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes


class RefinedPredictor:
    """A predictor plus the trained networks of online refinement.

    Args:
        base: the predictor refined.
        model: over a proxy, the model of clean % fitted on trained networks; None over a
            source predictor (which is refitted itself).

    Attributes:
        trained: the trained networks' clean accuracy (%), keyed by channel configuration.
    """

    def __init__(
        self, base: SourcePredictor | ProxyPredictor, model: TrainedAccuracyModel | None = None
    ) -> None:
        if (model is None) != isinstance(base, SourcePredictor):
            raise ValueError("a proxy is refined through a TrainedAccuracyModel, a source "
                             "predictor by refitting it (model=None)")
        self.base = base
        self.model = model
        self.trained = RowTable(1)

    @property
    def kind(self) -> str:
        """What `score` asks (the base's kind)."""
        return self.base.kind

    @property
    def n_scored(self) -> int:
        """The base's scored channel configurations."""
        return self.base.n_scored

    @property
    def n_trained(self) -> int:
        """Distinct channel configurations trained."""
        return len(self.trained)

    @property
    def fits(self) -> list[dict[str, Any]]:
        """The proxy surrogate's fit statistics (none over a source predictor)."""
        return getattr(self.base, "fits", [])

    @property
    def uses_model(self) -> bool:
        """True when answers come from the fitted `TrainedAccuracyModel`."""
        return self.model is not None and self.model.is_fitted

    @property
    def is_percent(self) -> bool:
        """True when the values are in % (the base's, or the trained-accuracy model's)."""
        return self.uses_model or self.base.is_percent

    @property
    def label(self) -> str:
        """Column / axis label of the values."""
        return "accuracy_pct" if self.uses_model else self.base.label

    @property
    def source(self) -> str:
        """Where the accuracies come from, in words."""
        if not self.uses_model:
            return self.base.source
        what = f" ({self.model.description})" if self.model.description else ""
        return (f"clean accuracy of {self.n_trained} trained networks{what}; predicted for "
                f"the others by Bayesian ridge on network size and {self.base.source}")

    @property
    def basis(self) -> str:
        """The data the accuracies rest on, with how many trained networks refine them."""
        if not self.uses_model:
            return self.base.basis
        return (f"{self.n_trained} trained networks, the others predicted from them; "
                f"{self.base.basis}")

    @property
    def use_surrogate(self) -> bool:
        """True when the base predicts unscored channels with a surrogate."""
        return self.base.use_surrogate

    def known(self, channels: np.ndarray) -> np.ndarray:
        """The base's `known`."""
        return self.base.known(channels)

    def score(self, channels: np.ndarray) -> np.ndarray:
        """The base's `score`."""
        return self.base.score(channels)

    def refit_surrogate(self) -> dict[str, Any]:
        """Refit the base proxy's surrogate (`ProxyPredictor.refit_surrogate`)."""
        return self.base.refit_surrogate()

    def add_trained(self, channels: np.ndarray, accuracy_pct: np.ndarray) -> None:
        """Record trained clean accuracies (%) of channels (N, L); a configuration trained again
        keeps its first accuracy."""
        self.trained.add(channels, accuracy_pct)

    def refit_trained(self) -> dict[str, Any]:
        """Refit on every trained network: the base source predictor on its source plus them, or
        the trained-accuracy model on their (true) proxy scores; returns the fit statistics."""
        rows, pct = self.trained.rows, self.trained.values[:, 0]
        if self.model is None:
            return fit_summary(self.base.refit(rows, pct))
        return self.model.fit(self.base.score(rows), rows, pct)

    def add_measured(self, channels: np.ndarray, accuracy_pct: np.ndarray) -> dict[str, Any]:
        """Add verified networks (mean validation %) to the base source predictor's source and
        refit it on that plus every trained network (`refit_trained`).

        Raises:
            TypeError: over a proxy, which has no source to add to.
        """
        if self.model is not None:
            raise TypeError("verified networks refit a measured source's predictor; this one "
                            "refines a proxy")
        if not self.n_trained:
            return self.base.add_measured(channels, accuracy_pct)
        self.base.extend_source(channels, accuracy_pct)
        return self.refit_trained()

    def is_measured(self, channels: np.ndarray) -> np.ndarray:
        """Mask (N,): channel configurations the base's source holds or the search trained."""
        held = (self.base.is_measured(channels) if isinstance(self.base, SourcePredictor)
                else np.zeros(len(channels), dtype=bool))
        return held | self.trained.lookup(channels)[0]

    def clean(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clean, std, origin), each (N,): trained where trained (once refitted), else the
        base's or the trained-accuracy model's prediction."""
        channels = np.asarray(channels, dtype=np.int64)
        if self.uses_model:
            score, score_std, origin = self.base.raw(channels)
            value, std = self.model.predict(score, channels, score_std)
        else:
            value, std, origin = self.base.clean(channels)
        if self.uses_model or (self.n_trained and self.model is None):
            trained, pct = self.trained.lookup(channels)
            value = np.where(trained, pct[:, 0], value)
            std = np.where(trained, 0.0, std)
            origin = np.where(trained, "trained", origin)
        return value, std, origin

    def predict(self, genomes: Genomes) -> AccuracyEstimate:
        """The estimate of every design of ``genomes`` (the base's penalty)."""
        clean, std, origin = self.clean(genomes.channels)
        return AccuracyEstimate.of(genomes, clean, std, origin, self.base.penalty,
                                   self.is_percent)

    def state(self) -> dict[str, Any]:
        """Picklable state: the base's, the trained networks and the model's fit statistics."""
        return {"base": self.base.state(), "rows": self.trained.rows,
                "trained": self.trained.values,
                "model_fits": list(self.model.fits) if self.model is not None else []}

    def restore(self, state: dict[str, Any]) -> None:
        """Load `state`; refit on its trained networks."""
        self.base.restore(state["base"])
        self.trained.clear()
        if len(state["trained"]):
            self.trained.add(state["rows"], state["trained"])
        if self.n_trained:
            self.refit_trained()
        if self.model is not None:
            self.model.fits = list(state["model_fits"])


def search_predictor(
    source: SourcePredictor | ProxyScorer,
    penalty: PrecisionPenalty | None,
    use_surrogate: bool,
    refine: bool,
    backbone: Backbone,
    trainings: str = "",
) -> AccuracyPredictor:
    """The predictor one search asks, with its own caches: ``source`` (`build_accuracy`'s
    answer) with the precision ``penalty``, a proxy scored through its surrogate or not
    (``use_surrogate``), wrapped in a `RefinedPredictor` when the search trains networks
    (``refine``; ``trainings`` says what a training is, e.g. "cifar10, e5-pc500-w0.25-b64")."""
    if isinstance(source, SourcePredictor):
        base: SourcePredictor | ProxyPredictor = source.with_penalty(penalty)
        model = None
    else:
        base = ProxyPredictor(source, use_surrogate, penalty)
        model = TrainedAccuracyModel(backbone, trainings)
    return RefinedPredictor(base, model) if refine else base

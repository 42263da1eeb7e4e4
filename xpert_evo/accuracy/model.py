"""The one question the search asks: how accurate is this design, in one call per population.

`AccuracyPredictor.predict(genomes)` returns an `AccuracyEstimate`: the clean accuracy of each
design's network, the loss its input and ADC bits cost on the crossbar, the net accuracy the
search maximises, and the std of the clean value, each an array over the population. Three
implementations answer it, each owning its cache:

- `SourcePredictor` (predictor.py): the predictor fitted on the measured source's trainings
  (``accuracy=measured``, the default); answers in %.
- `ProxyPredictor` (proxy_predictor.py): zero-cost proxy scores and their surrogate
  (``accuracy=naswot|synflow|params``); answers on the proxy's scale unless calibrated to %.
- `RefinedPredictor` (refined.py): wraps either and adds networks trained during the search
  (``accuracy.refine=true``).

Vocabulary: *predicted* and *trained* qualify accuracies (a model's answer, a training's
measurement), the *source* is the table of trainings a predictor is fitted on, a *proxy* score is
a zero-cost score of an untrained network, and to *score* a channel configuration is to ask the
predictor's own source for it (a true proxy call, or the source predictor), which is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.space.genome import Genomes

ORIGINS: tuple[str, ...] = ("predicted", "proxy", "surrogate", "trained")
"""Where a design's clean value comes from (`AccuracyEstimate.origin`, the run tables'
``accuracy_from``): the source predictor's prediction, a true proxy score, the proxy surrogate's
prediction, or the training of that very network."""


@dataclass(frozen=True)
class AccuracyEstimate:
    """The accuracy of N designs, in the predictor's units (`AccuracyPredictor.label`: % at the
    source's training budget, or a proxy's scale).

    Attributes:
        clean: (N,) accuracy of the network with exact arithmetic (no crossbar).
        loss_pp: (N,) accuracy the crossbar costs at the design's input and ADC bits, in
            percentage points, as the precision penalty predicts it (0 without a penalty).
        net: (N,) the objective: ``clean - loss_pp`` when the units are %, else ``clean`` (a proxy
            scale has nothing to subtract points from; the loss is then only bounded).
        std: (N,) standard deviation of ``clean`` in its units; 0 where ``clean`` is a true proxy
            score or a trained network's accuracy.
        origin: (N,) str, one of `ORIGINS` per design.
    """

    clean: np.ndarray
    loss_pp: np.ndarray
    net: np.ndarray
    std: np.ndarray
    origin: np.ndarray

    @classmethod
    def of(
        cls,
        genomes: Genomes,
        clean: np.ndarray,
        std: np.ndarray,
        origin: np.ndarray | str,
        penalty: PrecisionPenalty | None,
        percent: bool,
    ) -> AccuracyEstimate:
        """The estimate of ``genomes`` from their clean values and std: the penalty's loss (which
        saturates at clean - chance when ``percent``, else at its fitted maximum) and the net."""
        clean = np.asarray(clean, dtype=float)
        loss = (penalty.predict(genomes, clean if percent else None) if penalty is not None
                else np.zeros(len(clean)))
        return cls(
            clean=clean,
            loss_pp=np.asarray(loss, dtype=float),
            net=clean - loss if percent else clean.copy(),
            std=np.asarray(std, dtype=float),
            origin=np.broadcast_to(np.asarray(origin, dtype=str), clean.shape).copy(),
        )

    def __len__(self) -> int:
        return len(self.clean)

    def origin_codes(self) -> np.ndarray:
        """``origin`` as indices into `ORIGINS` (N,), float: pymoo keeps per-design outputs as
        numbers."""
        return np.searchsorted(np.asarray(ORIGINS), self.origin).astype(float)


def origins(codes: np.ndarray) -> np.ndarray:
    """Indices into `ORIGINS` (N,) -> the origin names (N,) str."""
    return np.asarray(ORIGINS)[np.asarray(codes, dtype=np.int64)]


class AccuracyPredictor(Protocol):
    """What the search needs: one `predict` per population, and what its numbers mean.

    Attributes:
        label: column / axis label of the values (e.g. "accuracy % at e5-pc500-w0.25-b64").
        is_percent: True when the values are accuracies in %.
        source: where the values come from, in words.
        basis: the data they rest on, in a few words (summary.md's first line, the plot's axis).
        kind: what `score` asks: "predicted" (the source predictor) or "proxy" (a zero-cost
            proxy).
        n_scored: distinct channel configurations scored so far (held in the cache).
        use_surrogate: True when unscored channels are predicted by a proxy surrogate; False
            when every new channel configuration is scored (then each costs one `score`).
    """

    label: str
    is_percent: bool
    source: str
    basis: str
    kind: str
    n_scored: int
    use_surrogate: bool

    def predict(self, genomes: Genomes) -> AccuracyEstimate:
        """The accuracy of every design of ``genomes``, in one call."""

    def clean(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clean, std, origin), each (N,), of channel configurations (N, L): the networks'
        accuracy without the crossbar (`predict` without the penalty)."""

    def score(self, channels: np.ndarray) -> np.ndarray:
        """Ask the source for channel configurations (N, L) (cached): clean values (N,)."""

    def known(self, channels: np.ndarray) -> np.ndarray:
        """Mask (N,): which channel configurations (N, L) are scored already."""

    def state(self) -> dict[str, Any]:
        """What a checkpoint must keep to answer exactly the same after a resume."""

    def restore(self, state: dict[str, Any]) -> None:
        """Load a `state` (refitting whatever was fitted on it)."""


class ProxyScorer(Protocol):
    """A zero-cost proxy with a surrogate (`ProxyEstimator`, or the tests' stand-in), which
    `ProxyPredictor` puts behind `AccuracyPredictor`.

    Scores are in the proxy's raw units: `true_score` computes them for channel configurations
    (N, L), `fit` trains the surrogate on scored ones, `predict` returns its (mean, std), each
    (N,), and `to_accuracy` maps scores to the label's units (% once calibrated).
    """

    label: str
    is_percent: bool
    source: str
    basis: str

    def true_score(self, channels: np.ndarray) -> np.ndarray:
        """True proxy scores (N,) of channel configurations (N, L)."""

    def fit(self, channels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
        """Fit the surrogate on scored (channels, scores); returns fit statistics."""

    def predict(self, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Surrogate mean and std, each (N,), in raw score units."""

    def to_accuracy(self, scores: np.ndarray) -> np.ndarray:
        """Scores (N,) -> the label's units."""

"""Designs per second of the precision-loss models, on one core.

Run: python bench/timing/penalty_throughput.py   (writes docs/results/penalty_throughput.md)

Times the call the search makes on every population (`AccuracyEstimate.of`:
``penalty.predict(genomes, clean_accuracy_pct)``) for batches of 1, 100, 10,000 and 100,000
random 13-layer designs (channels, input bits and ADC bits drawn from the default search space,
conf/space/default.yaml; clean accuracies uniform in 60-90 %), with two models:

- ``precision_penalty_v1``: the four-parameter `PrecisionPenalty` of the default config
  (conf/penalty/crossbar_cifar10_offset.yaml);
- ``layer_penalty_v1``: the per-layer `LayerPenalty` of conf/penalty/layer_cifar10_offset.yaml,
  also with its std (``predict`` then ``std_of``, what a caller wanting both makes), and in each
  of its other forms (`FORMS`: the cost depends on the form, which sets the layer features).

Prints and writes, per model, call and batch, the best-of-N wall time per call (s), designs per
second, and whether issue 26's target (>= 1,000,000 designs/s at batch 100,000) is met. The
time does not depend on the fitted values: every model is the same numpy arithmetic for any
constants.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy loads its BLAS

from collections.abc import Callable  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from xpert_evo.crossbar.layer_penalty import FORMS, LayerPenalty, layer_features  # noqa: E402
from xpert_evo.crossbar.penalty import PrecisionPenalty  # noqa: E402
from xpert_evo.search.setup import build_penalty  # noqa: E402
from xpert_evo.space.backbone import Backbone  # noqa: E402
from xpert_evo.space.genome import Genomes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import REPO, RESULTS, load_conf, write_stamped  # noqa: E402
from hardware_throughput import best_seconds, random_genomes  # noqa: E402 (bench/timing/)

RESULT = RESULTS / "penalty_throughput.md"

BATCHES = (1, 100, 10_000, 100_000)
"""Designs per call."""

TARGET = 1_000_000
"""Designs per second required at the largest batch (issue 26, item 3)."""

PRESETS = {"precision_penalty_v1": "crossbar_cifar10_offset",
           "layer_penalty_v1": "layer_cifar10_offset"}
"""Model -> the conf/penalty preset it is built from."""


def random_designs(n: int, n_layers: int, seed: int = 0) -> tuple[Genomes, np.ndarray]:
    """n designs drawn uniformly from the default search space (`random_genomes`) and their
    clean accuracies (n,) in %, uniform in 60-90."""
    clean = np.random.default_rng([seed, 1]).uniform(60.0, 90.0, n)
    return random_genomes(n, n_layers, seed), clean


def with_std(penalty: LayerPenalty) -> Callable[[Genomes, np.ndarray], object]:
    """The layer model's loss and its std (pp, each (N,)) of designs at clean accuracies (%)."""
    def call(genomes: Genomes, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loss = penalty.predict(genomes, clean)
        return loss, penalty.std_of(loss)

    return call


def timed_models(n_layers: int) -> dict[str, PrecisionPenalty | LayerPenalty]:
    """Label -> model: the presets (`PRESETS`), then the layer model in each of its other forms
    (`FORMS`; the preset's decays, zero feature coefficients: the cost depends on the form, not
    on the values)."""
    models = {model: build_penalty(load_conf("penalty", preset))
              for model, preset in PRESETS.items()}
    layer = models["layer_penalty_v1"]
    assert isinstance(layer, LayerPenalty)
    for form in sorted(set(FORMS) - {layer.form}):
        zeros = (0.0,) * layer_features(form, np.full((1, n_layers), 64)).shape[-1]
        models[f"layer, {form} form"] = replace(layer, form=form, alpha=zeros, beta=zeros)
    return models


def main() -> None:
    """Time each model's call per batch size; print one line each and write `RESULT`."""
    n_layers = Backbone().n_conv
    models = timed_models(n_layers)
    header = (f"{'model':>26} {'call':>13} {'batch':>8} {'s/call':>10} {'designs/s':>12} "
              f"{'>= 1e6/s':>9}")
    lines = ["", "```", header]
    print(header)
    verdicts = []
    for model, penalty in models.items():
        calls: dict[str, Callable[[Genomes, np.ndarray], object]] = {"predict": penalty.predict}
        if model == "layer_penalty_v1" and isinstance(penalty, LayerPenalty):
            calls["predict + std"] = with_std(penalty)
        for name, call in calls.items():
            for batch in BATCHES:
                genomes, clean = random_designs(batch, n_layers)
                seconds = best_seconds(call, (genomes, clean),
                                       max(5, min(500, 500_000 // batch)))
                rate = batch / seconds
                met = ""
                if batch == BATCHES[-1]:
                    met = "yes" if rate >= TARGET else "NO"
                    verdicts.append(f"- {model}, {name}: {rate:,.0f} designs/s at batch "
                                    f"{batch:,}: target {TARGET:,}/s "
                                    f"{'met' if rate >= TARGET else 'NOT met'}")
                lines.append(f"{model:>26} {name:>13} {batch:>8} {seconds:>10.2e} "
                             f"{rate:>12,.0f} {met:>9}")
                print(lines[-1])
    layer = models["layer_penalty_v1"]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    notes = [
        "```", "",
        *verdicts, "",
        "The search calls `predict(genomes, clean_accuracy_pct)` once per population "
        "(`AccuracyEstimate.of`); `predict + std` is both of `LayerPenalty`'s outputs (the std "
        "from the predicted loss, `std_of`). Presets: "
        + ", ".join(f"`{m}` from conf/penalty/{p}.yaml" for m, p in PRESETS.items())
        + f" (its fitted form: {layer.form}); the other forms of the layer model with zero "
        "feature coefficients. The timing does not depend on the fitted values (the layer "
        "model's artifact is a pilot fit), only on the form: the arithmetic is the same for any "
        "constants. Designs: channels, input bits and ADC bits per layer "
        f"({n_layers} conv layers) uniform over conf/space/default.yaml; clean accuracies "
        "uniform in 60-90 %. Best of max(5, min(500, 500,000 / batch)) calls, one core; load "
        f"average {load} at the end (other jobs shared this 2-core machine, so the figures are "
        "lower bounds).",
        "",
    ]
    threads = os.environ["OMP_NUM_THREADS"]
    write_stamped(RESULT, [*lines, *notes], f"OMP_NUM_THREADS={threads}")
    print("\n".join(verdicts))
    print(f"wrote {RESULT.relative_to(REPO)}")


if __name__ == "__main__":
    main()

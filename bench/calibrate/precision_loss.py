"""Crossbar precision loss measured on many networks of the measured source, and its held-out error.

For each network of a data set's measured source whose trained weights are in the checkpoint
cache (the machine that built the source), draw `--settings` per-layer precision settings: an
input-bit level and an ADC-bit level per setting (uniform over the space's options), each layer
one step above or below it at random, clipped to the options. Each setting is evaluated on the
crossbar (`xpert_evo.crossbar.evaluate.evaluate_genome`, hardware and crossbar config as the
search's defaults, at the resolution the source was trained at) on `--images` test images, and
appended as a ground-truth row to docs/results/precision_loss[_<dataset>].csv as soon as it is
measured (a rerun skips what is there).

Then the precision penalty model (`PrecisionPenalty`) is refitted on the rows of the source's
"fit" networks and scored on the rows of its "heldout" networks: RMSE and mean absolute error of
the predicted loss in pp, fitted rows and held-out rows apart. Written to
docs/results/precision_loss[_<dataset>].md, stamped.

* CIFAR-10: the shipped fit (conf/penalty/crossbar_cifar10.yaml) was fitted on one separate
  network (precision_penalty.py, beside this script) and saw none of these networks, so its
  error on all rows is its held-out error. `--write-config` writes `heldout_rmse_pp`,
  `heldout_rows`, `bound_pp`.
* Tiny ImageNet: the shipped fit is the refit on the fit networks, so its held-out error is the
  refit's error on the held-out networks. `--write-config` writes the whole fit.

`--write-config` writes into the artifact the penalty preset reads,
xpert_evo/fitted/penalty/crossbar_<dataset>.yaml (`xpert_evo.schema.fitted`, with OmegaConf), with
this command, the commit, the date and the results table the values come from.

The smallest whole number of pp above the held-out RMSE is the default bound on the predicted
loss (`constraints.precision_loss_pp` reads the penalty's `bound_pp`): a tighter bound would be
within the model's error.

Run: `python bench/calibrate/precision_loss.py [--dataset cifar10|tinyimagenet] [--networks 12
--settings 2 --images 200] [--write-config]`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xpert_evo.crossbar.evaluate import evaluate_genome
from xpert_evo.crossbar.penalty import PrecisionPenalty
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.crossbar.settings import random_precisions
from xpert_evo.report.provenance import stamp
from xpert_evo.search.setup import build_penalty
from xpert_evo.space.backbone import GEOMETRY, Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataSpec
from xpert_evo.training.groundtruth import (
    append_rows,
    genome_columns,
    load_checkpoint,
    load_table,
    per_layer_ints,
)
from xpert_evo.training.network import torch_threads
from xpert_evo.training.source import find_source, source_training
from xpert_evo.training.train import TrainSpec, budget_splits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS, REPO, RESULTS, bound_pp, load_conf, save_fit  # noqa: E402


@dataclass(frozen=True)
class Target:
    """One data set's source, penalty file and results files."""

    dataset: str
    independent_fit: bool  # the shipped penalty was fitted on none of the source's networks

    @property
    def input_size(self) -> int:
        return GEOMETRY[self.dataset][0]

    @property
    def num_classes(self) -> int:
        return GEOMETRY[self.dataset][1]

    @property
    def penalty(self) -> str:
        """The penalty preset (conf/penalty/<this>.yaml)."""
        return f"crossbar_{self.dataset}"

    @property
    def artifact(self) -> str:
        """The artifact its fitted values live in (`xpert_evo.schema.fitted`)."""
        return f"penalty/{self.penalty}.yaml"

    @property
    def stem(self) -> str:
        return "precision_loss" + ("" if self.dataset == "cifar10" else f"_{self.dataset}")


TARGETS = {
    "cifar10": Target("cifar10", independent_fit=True),
    "tinyimagenet": Target("tinyimagenet", independent_fit=False),
}


def predicted_loss(penalty: PrecisionPenalty | None, rows: pd.DataFrame) -> np.ndarray:
    """The penalty's predicted loss (pp) of crossbar evaluation `rows` (dash-joined
    `input_bits`, `adc_bits`) at their own float accuracy; `penalty` None predicts no loss."""
    if penalty is None:
        return np.zeros(len(rows))
    p, b = per_layer_ints(rows["input_bits"]), per_layer_ints(rows["adc_bits"])
    genomes = Genomes(np.full_like(p, 64), np.full_like(p, 8), np.ones_like(p), b, p)
    return penalty.predict(genomes, rows["reference_accuracy_pct"].to_numpy(np.float64))


def errors(penalty: PrecisionPenalty | None, rows: pd.DataFrame) -> dict[str, float]:
    """RMSE and MAE (pp) of the penalty's predicted loss against the measured loss of `rows`;
    `penalty` None predicts no loss (the baseline a fit has to beat)."""
    ref = rows["reference_accuracy_pct"].to_numpy(np.float64)
    predicted = predicted_loss(penalty, rows)
    measured = ref - rows["nonideal_accuracy_pct"].to_numpy(np.float64)
    diff = predicted - measured
    return {"n_rows": len(rows), "rmse_pp": float(np.sqrt(np.mean(diff**2))),
            "mae_pp": float(np.mean(np.abs(diff))),
            "measured_loss_pp_mean": float(measured.mean())}


def measure(args: argparse.Namespace, target: Target) -> pd.DataFrame:
    """Evaluate the missing (network, setting) pairs; the whole table."""
    table = RESULTS / f"{target.stem}.csv"
    space = load_conf("space")
    xbar = CrossbarSpec.from_config({**load_conf("crossbar"), "test_images": args.images},
                                    load_conf("hardware", "xpert_rram_32nm"))
    spec = TrainSpec.from_config(source_training(target.dataset))
    data = DataSpec(dataset=target.dataset, root=args.data_root, input_size=target.input_size,
                    num_classes=target.num_classes, allow_data_free=False)
    _, source = find_source(target.dataset, spec.fidelity())
    source = source[(source["seed"] == 0) & source["checkpoint"].map(
        lambda p: isinstance(p, str) and Path(p).is_file())].sort_values("net_id")
    half = (args.networks + 1) // 2
    source = pd.concat([source[source["role"] == role].head(half) for role in ("fit", "heldout")])
    done = load_table(table) if table.is_file() else pd.DataFrame()
    splits = budget_splits(data, spec)
    trained = spec.trained_data(data)
    backbone = Backbone(input_size=trained.input_size, num_classes=trained.num_classes)
    for _, net in source.iterrows():
        channels = per_layer_ints([net["channels"]])[0].tolist()
        rng = np.random.default_rng([0, int(net["net_id"])])  # a network's settings: its own
        picks = random_precisions(13, args.settings, space["input_bits"], space["adc_bits"], rng)
        measured = (set(done.loc[done["net_id"] == net["net_id"], "note"]) if len(done)
                    else set())
        todo = [(k, p, b) for k, (p, b) in enumerate(picks) if f"setting {k}" not in measured]
        if not todo:
            continue
        model, _ = load_checkpoint(net["checkpoint"], channels, backbone, spec)
        for k, p, b in todo:
            genome = Genomes(np.array([channels]), np.full((1, 13), 8), np.ones((1, 13), int),
                             b[None, :], p[None, :])
            result = evaluate_genome(model, genome, xbar, splits.test, splits.train)
            row = {"kind": "crossbar", "dataset": target.dataset,
                   "input_size": trained.input_size, "num_classes": target.num_classes,
                   **genome_columns(genome), "fidelity": spec.fidelity(), "seed": 0,
                   "accuracy_pct": net["accuracy_pct"],
                   "reference_accuracy_pct": result.reference_accuracy_pct,
                   "nonideal_accuracy_pct": result.accuracy_pct,
                   "crossbar_test_images": result.n_images,
                   "weight_encoding": xbar.weight_encoding, "wall_s": result.wall_s,
                   "net_id": net["net_id"], "role": net["role"], "note": f"setting {k}"}
            append_rows([row], table)
            print(f"net {net['net_id']} ({net['role']}) setting {k}: float "
                  f"{result.reference_accuracy_pct:.1f} %, crossbar {result.accuracy_pct:.1f} % "
                  f"({result.wall_s:.0f} s)", flush=True)
    return load_table(table)


def main() -> None:
    """Measure, fit on the fit networks, score on the held-out ones, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(TARGETS), default="cifar10")
    parser.add_argument("--networks", type=int, default=12)
    parser.add_argument("--settings", type=int, default=2)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--data-root", default=str(DATASETS))
    parser.add_argument("--write-config", action="store_true")
    args = parser.parse_args()
    target = TARGETS[args.dataset]
    logging.basicConfig(level=logging.WARNING)
    with torch_threads(1):
        table = measure(args, target)
    fit_rows, held_rows = table[table["role"] == "fit"], table[table["role"] == "heldout"]
    images = ", ".join(map(str, sorted(set(table["crossbar_test_images"].astype(int)))))
    lines = [f"<!-- {stamp()} -->", "",
             f"Crossbar evaluations: {len(table)} ({table['net_id'].nunique()} networks of the "
             f"{target.dataset} measured source, {images} test images each, random per-layer "
             "precisions).", ""]
    shipped_name = f"shipped (conf/penalty/{target.penalty}.yaml)"
    results = []
    if target.independent_fit:
        shipped = build_penalty(load_conf("penalty", target.penalty))
        results.append({"penalty": shipped_name, "evaluated_on": "all rows",
                        **errors(shipped, table)})
    if len(fit_rows) >= 4 and len(held_rows):
        refit = PrecisionPenalty.fit(fit_rows, num_classes=target.num_classes)
        results += [{"penalty": "refit on fit networks", "evaluated_on": "fitted rows",
                     **errors(refit, fit_rows)},
                    {"penalty": "refit on fit networks", "evaluated_on": "held-out rows",
                     **errors(refit, held_rows)}]
        lines.append(f"Refit parameters: a_in {refit.a_in:.3f}, k_in {refit.k_in:.3f}, "
                     f"a_adc {refit.a_adc:.3f}, k_adc {refit.k_adc:.3f}.")
        lines.append("")
    elif not target.independent_fit:
        raise SystemExit(f"{len(fit_rows)} fit and {len(held_rows)} held-out rows: need >= 4 and "
                         ">= 1 to fit and check the Tiny ImageNet penalty; measure more networks")
    heldout = results[0] if target.independent_fit else results[-1]
    results.append({"penalty": "none (predicts 0 pp)", "evaluated_on": heldout["evaluated_on"],
                    **errors(None, table if target.independent_fit else held_rows)})
    lines.append(pd.DataFrame(results).to_markdown(index=False, floatfmt=".2f"))
    bound = bound_pp(heldout["rmse_pp"])
    why = ("the shipped fit saw none of these networks, so its error on all "
           f"{heldout['n_rows']} rows" if target.independent_fit else
           f"the shipped fit is the refit on the fit networks; its error on the "
           f"{heldout['n_rows']} rows of held-out networks")
    lines += ["", f"Bound: {why} (RMSE {heldout['rmse_pp']:.2f} pp) is its held-out error; "
              f"the smallest whole bound above it is {bound} pp, the default "
              "`constraints.precision_loss_pp` (the penalty's `bound_pp`). A tighter bound would "
              "be within the model's error.", "",
              f"Baseline: predicting no loss at all errs by RMSE {results[-1]['rmse_pp']:.2f} pp "
              f"on the same rows, against the fit's {heldout['rmse_pp']:.2f} pp"
              + (". The fit adds little over it: the measured losses at these precisions are "
                 "about as small as the measurement noise of the evaluated test images."
                 if heldout["rmse_pp"] > 0.8 * results[-1]["rmse_pp"] else ".")]
    if args.write_config:
        values = {"heldout_rmse_pp": float(f"{heldout['rmse_pp']:.2f}"),
                  "heldout_rows": int(heldout["n_rows"]), "bound_pp": bound}
        fit_name, note = ("heldout_networks", "error of the shipped fit on crossbar evaluations "
                          "of measured-source networks it never saw; bound_pp: the smallest "
                          "whole pp above it")
        if not target.independent_fit:
            fitted = asdict(refit)
            values = {**{k: float(f"{fitted[k]:.4g}") for k in ("a_in", "k_in", "a_adc", "k_adc",
                                                                 "max_loss_pp", "rmse_pp")},
                      "n_fit": int(fitted["n_fit"]), **values}
            fit_name, note = ("source_networks", "fitted on the source's fit networks, held-out "
                              "error on its held-out networks; 4 significant digits")
        save_fit(target.artifact, fit_name, values,
                 data=str((RESULTS / f"{target.stem}.csv").relative_to(REPO)), note=note)
    text = "\n".join(lines) + "\n"
    (RESULTS / f"{target.stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

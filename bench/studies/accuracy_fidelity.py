"""How well does each accuracy objective rank what training measures? The held-out check.

Reads a data set's measured source (`python -m xpert_evo.source`; by default the packaged one):
stand-alone trainings at one budget, each with validation accuracy (what models select on) and
test accuracy (reported only). Then:
  * seed noise: networks trained at several seeds give the seed-to-seed std of the test
    accuracy (and of the validation accuracy), and from it the highest Kendall tau any predictor
    can reach against the held-out networks' measured accuracy, the mean over their n_k seeds
    (Gaussian noise; the ceiling is (2/pi) arcsin(sqrt(R)) with reliability
    R = 1 - mean_k(noise variance / n_k) / variance of the held-out means), and what it would be
    against one training run;
  * the predictor (`CleanAccuracyPredictor`, model chosen by cross-validation on the "fit"
    networks only) is fitted on the "fit" networks and scored on the "heldout" ones, against
    their test accuracy (mean over seeds); its fitted (in-sample) error is reported apart, and
    the held-out figures are repeated on the networks measured at 2 or more seeds (when there
    are at least 5 of them, and not every held-out network is);
  * with a transfer (`accuracy.transfer` in conf/accuracy/measured.yaml, e.g. Tiny ImageNet from
    CIFAR-10), the other data set's predictor is one more feature, and its ranking alone, fitted
    on no network of this data set, is scored on the held-out networks and on every network
    (and, with `--blind-from N`, on the networks from net_id N on: those trained after the
    transfer was chosen, which tested it blind; with `--predictor-blind-from N` the predictor
    is scored apart in the same way on the held-out networks from net_id N on, both as fitted on
    every fit network and as it stood before network N: model selection and fit on the fit
    networks with net_id < N only);
  * a learning curve: the held-out Kendall tau of the predictor (the model chosen above, refitted)
    on random subsets of the fit networks, 10 draws per size, to tell whether more fit networks
    would help;
  * NASWOT (128 real training images), synflow and the parameter count, each scored on the same
    held-out networks at full width and the searched input size, seed 0;
  * the predictor's speed (predictions/s at a batch of 100,000).
Writes docs/results/accuracy_fidelity[_<dataset>].md and .csv, the per-network held-out
predictions (accuracy_fidelity[_<dataset>]_heldout.csv) and a predicted-vs-measured plot
(docs/accuracy_heldout[_<dataset>].png) and the learning curve
(accuracy_fidelity[_<dataset>]_learning_curve.csv), stamped with command, commit, date, machine;
CIFAR-10's files carry no suffix. With `--source-dir` (a source other than the packaged one, e.g.
one being built) the names also carry the source's fidelity.

Run: `python bench/studies/accuracy_fidelity.py [--dataset cifar10|tinyimagenet]` (2-10 min on 2
cores,
mostly the proxies); the Tiny ImageNet results file is written with `--blind-from 25
--predictor-blind-from 74`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from xpert_evo.accuracy.batch import proxy_batch
from xpert_evo.accuracy.predictor import CleanAccuracyPredictor, transfer_predictor
from xpert_evo.accuracy.proxies import get_proxy, score_architecture
from xpert_evo.accuracy.surrogate import rank_figures
from xpert_evo.predict import TRANSFER
from xpert_evo.space.backbone import GEOMETRY, Backbone
from xpert_evo.training.data import DataSpec
from xpert_evo.training.groundtruth import per_layer_ints
from xpert_evo.training.network import torch_threads
from xpert_evo.training.source import (
    find_source,
    network_means,
    seed_mean_ceilings,
    seed_noise,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS, DOCS, RESULTS, write_stamped  # noqa: E402

PROXIES = ("naswot", "synflow", "params")
MIN_RANKED = 5


def channels_of(frame: pd.DataFrame) -> np.ndarray:
    """(N, 13) channel matrix of a frame with a dash-joined `channels` column."""
    return per_layer_ints(frame["channels"])


def learning_curve(
    predictor: CleanAccuracyPredictor, fit: pd.DataFrame, held: pd.DataFrame, draws: int = 10,
) -> pd.DataFrame:
    """Held-out Kendall tau (mean and std over `draws` random subsets) of `predictor`'s model
    refitted on 8, 16, 24, ... of the fit networks, and on all of them."""
    rng = np.random.default_rng(0)
    x, y = channels_of(fit), fit["val_accuracy_pct"].to_numpy()
    held_x, truth, rows = channels_of(held), held["accuracy_pct"].to_numpy(), []
    for size in [*range(8, len(fit), 8), len(fit)]:
        taus = []
        for _ in range(draws if size < len(fit) else 1):
            keep = rng.choice(len(fit), size, replace=False)
            model = replace(predictor, model=predictor.report["model"]).fit(x[keep], y[keep])
            taus.append(rank_figures(model.predict(held_x)[0], truth)["kendall_tau"])
        rows.append({"fit_networks": size, "draws": len(taus),
                     "kendall_tau_mean": float(np.mean(taus)),
                     "kendall_tau_std": float(np.std(taus, ddof=1)) if len(taus) > 1 else 0.0})
    return pd.DataFrame(rows)


def heldout_plot(held: pd.DataFrame, path: Path) -> None:
    """Predicted against measured test accuracy of the held-out networks, +- 1 std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.0), constrained_layout=True)
    for seeds, marker in ((1, "o"), (2, "s"), (3, "D")):
        part = held[held["n_seeds"] == seeds] if seeds < 3 else held[held["n_seeds"] >= 3]
        if len(part):
            ax.errorbar(part["test_accuracy_pct"], part["predicted_pct"],
                        yerr=part["predicted_std_pp"], fmt=marker, ms=4, capsize=2, lw=0.8,
                        label=f"{seeds}{'+' if seeds == 3 else ''} seed{'s' * (seeds > 1)}")
    lims = [min(held["test_accuracy_pct"].min(), held["predicted_pct"].min()) - 1,
            max(held["test_accuracy_pct"].max(), held["predicted_pct"].max()) + 1]
    ax.plot(lims, lims, "k--", lw=0.8)
    ax.set(xlim=lims, ylim=lims, xlabel="measured test accuracy, mean over seeds (%)",
           ylabel="predicted accuracy (%)", title=f"{len(held)} held-out networks")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> None:
    """Compute the figures, print them and write the results files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(GEOMETRY), default="cifar10")
    parser.add_argument("--source-dir", default=None, help="default: the packaged sources")
    parser.add_argument("--fidelity", default=None,
                        help="the source's training budget, where the folder holds several")
    parser.add_argument("--data-root", default=str(DATASETS))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--blind-from", type=int, default=None,
                        help="score the transferred ranking apart on the networks from this "
                             "net_id on: those trained after the transfer was chosen")
    parser.add_argument("--predictor-blind-from", type=int, default=None,
                        help="score the predictor apart on the held-out networks from this "
                             "net_id on: those trained after its candidate models were chosen")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    input_size, num_classes = GEOMETRY[args.dataset]
    fidelity, table = find_source(args.dataset, args.fidelity, args.source_dir)
    suffix = "" if args.dataset == "cifar10" else f"_{args.dataset}"
    if args.source_dir:  # a source being built never overwrites the packaged source's files
        suffix += f"_{fidelity}"
    nets = network_means(table)
    fit, held = nets[nets["role"] == "fit"], nets[nets["role"] == "heldout"]
    backbone = Backbone(input_size=input_size, num_classes=num_classes)
    transfer, transfer_label = transfer_predictor(args.dataset, TRANSFER.get(args.dataset))
    predictor = CleanAccuracyPredictor(backbone, transfer=transfer, transfer_label=transfer_label)
    predictor.fit(channels_of(fit), fit["val_accuracy_pct"])
    truth = held["accuracy_pct"].to_numpy()
    mean, std = predictor.predict(channels_of(held))
    fitted_mean, _ = predictor.predict(channels_of(fit))
    repeated = held["n_seeds"].to_numpy() >= 2
    # fewer than MIN_RANKED networks give no meaningful rank correlation; all of them repeat the
    # rows above
    rank_repeated = MIN_RANKED <= repeated.sum() < len(held)

    def predictor_row(name: str, keep: np.ndarray, predicted: np.ndarray = mean,
                      predicted_std: np.ndarray | None = std) -> dict[str, float | str]:
        """Figures of `predicted` (and `predicted_std`, if given) on the held-out rows `keep`."""
        error = np.abs(predicted - truth)[keep]
        row = {"objective": name, "networks": int(keep.sum()),
               **rank_figures(predicted[keep], truth[keep]), "mae_pp": float(error.mean())}
        if predicted_std is not None:
            row["within_1_std"] = float(np.mean(error <= predicted_std[keep]))
        return row

    rows = [predictor_row(f"predictor ({predictor.report['model']}), held-out",
                          np.ones(len(held), bool))]
    if rank_repeated:
        rows.append(predictor_row("predictor, held-out measured at 2+ seeds", repeated))
    if args.predictor_blind_from is not None:
        blind = held["net_id"].to_numpy() >= args.predictor_blind_from
        if blind.sum() >= MIN_RANKED:
            rows.append(predictor_row(f"predictor, held-out net_id >= {args.predictor_blind_from}"
                                      " (trained after its models were chosen)", blind))
            # the predictor as it stood when its models were chosen: model selection and fit on
            # the fit networks trained before, none of the networks it is scored on
            early = fit[fit["net_id"] < args.predictor_blind_from]
            frozen = replace(predictor, model="auto").fit(channels_of(early),
                                                          early["val_accuracy_pct"])
            rows.append(predictor_row(
                f"predictor fitted on the {len(early)} fit networks with net_id < "
                f"{args.predictor_blind_from} ({frozen.report['model']}), same networks", blind,
                frozen.predict(channels_of(held))[0], None))
    rows += [{"objective": "predictor, fitted networks (in-sample)", "networks": len(fit),
             **rank_figures(fitted_mean, fit["val_accuracy_pct"].to_numpy()),
             "mae_pp": float(np.abs(fitted_mean - fit["val_accuracy_pct"]).mean())}]
    if transfer is not None:
        # fitted on no network of this data set: every network of the source is unseen by it
        parts = [("held-out", held), ("every network", nets)]
        if args.blind_from is not None:
            parts.append((f"net_id >= {args.blind_from} (trained after it was chosen)",
                          nets[nets["net_id"] >= args.blind_from]))
        for name, part in parts:
            rows.append({"objective": f"{transfer_label} alone, {name}", "networks": len(part),
                         **rank_figures(transfer.predict(channels_of(part))[0],
                                        part["accuracy_pct"].to_numpy())})
    data = DataSpec(dataset=args.dataset, root=args.data_root, input_size=input_size,
                    num_classes=num_classes, allow_data_free=False)
    with torch_threads(None):
        batch = proxy_batch(data, 128, seed=0, cache_dir=args.cache_dir)
        for name in PROXIES:
            scores = np.array([score_architecture(get_proxy(name), c, batch.images, backbone, 0)
                               for c in channels_of(held)])
            rows.append({"objective": f"{name} (full width, seed 0)", "networks": len(held),
                         **rank_figures(scores, truth)})
            if rank_repeated:
                rows.append({"objective": f"{name}, held-out measured at 2+ seeds",
                             "networks": int(repeated.sum()),
                             **rank_figures(scores[repeated], truth[repeated])})
    noise_pp, noise_nets, noise_runs = seed_noise(table, "accuracy_pct")
    val_noise_pp, _, _ = seed_noise(table, "val_accuracy_pct")
    ceiling, ceiling_one = seed_mean_ceilings(noise_pp, truth, held["n_seeds"])
    ceiling_all, _ = seed_mean_ceilings(noise_pp, nets["accuracy_pct"], nets["n_seeds"])
    probe = np.random.default_rng(0).choice([64, 128, 256, 512], size=(100_000, 13))
    start = time.perf_counter()
    predictor.predict(probe)
    rate = 100_000 / (time.perf_counter() - start)
    RESULTS.mkdir(parents=True, exist_ok=True)
    predictions = pd.DataFrame({
        "channels": held["channels"], "n_seeds": held["n_seeds"], "test_accuracy_pct": truth,
        "val_accuracy_pct": held["val_accuracy_pct"], "predicted_pct": mean,
        "predicted_std_pp": std})
    predictions.to_csv(RESULTS / f"accuracy_fidelity{suffix}_heldout.csv", index=False,
                       float_format="%.3f")
    heldout_plot(predictions, DOCS / f"accuracy_heldout{suffix}.png")
    frame = pd.DataFrame(rows)
    frame.to_csv(RESULTS / f"accuracy_fidelity{suffix}.csv", index=False)
    curve = learning_curve(predictor, fit, held)
    curve.to_csv(RESULTS / f"accuracy_fidelity{suffix}_learning_curve.csv", index=False,
                 float_format="%.3f")
    first = table.iloc[0]
    hours = table.groupby("role")["wall_s"].sum() / 3600
    facts = [
        "",
        f"Measured source: {args.dataset}, training budget {fidelity} (trained at "
        f"{int(first['input_size'])}x{int(first['input_size'])} pixels); {len(table)} trainings "
        f"of {len(nets)} networks ({len(fit)} fit, {len(held)} held out); validation = the last "
        f"{int(first['val_images']) // num_classes} training images per class, test = "
        f"{int(first['test_images']):,} test images. Proxies score the searched network "
        f"({input_size}x{input_size} inputs). Wall time per "
        f"training: median {table['wall_s'].median():.0f} s, range {table['wall_s'].min():.0f}-"
        f"{table['wall_s'].max():.0f} s, {table['wall_s'].sum() / 3600:.1f} h in all (one "
        "thread each, two trainings sharing 2 cores with other work, so the elapsed time of a "
        f"two-shard build is about half): {hours['fit']:.1f} h for the fit networks' trainings, "
        f"which are all a predictor with the held-out figures below needs, and "
        f"{hours['heldout']:.1f} h for the held-out networks', which only validate it.",
        "",
        f"Seed noise (pooled std over {noise_nets} networks x their seeds, {noise_runs} "
        f"trainings): test accuracy {noise_pp:.2f} pp, validation accuracy {val_noise_pp:.2f} pp. "
        f"Held-out test accuracies (means) spread {np.std(truth, ddof=1):.2f} pp (std).",
        "",
        f"Held-out networks: {len(held)}, {int(repeated.sum())} of them measured at 2 or more "
        f"seeds; ranks and errors are against their test accuracy, the mean over their seeds "
        f"(the predictor is fitted on the validation accuracy of the {len(fit)} fit networks "
        f"only). Kendall tau ceiling from the seed noise: {ceiling:.2f} against these means, "
        f"{ceiling_one:.2f} had every held-out network been trained once.",
        *(["", f"Transfer (conf/accuracy/measured.yaml, `accuracy.transfer`): {transfer_label}'s "
           f"predicted % is one more feature of the predictor; the model chosen on the fit "
           f"networks is {predictor.report['model']}. That predictor was fitted on no "
           f"{args.dataset} network, so its ranking is also scored on every network of the "
           f"source, where the seed noise caps tau at {ceiling_all:.2f} (spread of the "
           f"{len(nets)} means {nets['accuracy_pct'].std(ddof=1):.2f} pp)."]
          if transfer is not None else []),
        "",
        frame.to_markdown(index=False, floatfmt=".3f"),
        "",
        f"Predictor speed: {rate:,.0f} predictions/s (batch 100,000).",
        "",
        "Model selection on the fit networks (cross-validated): "
        + ", ".join(f"{k} MAE {v['cv_mae_pp']:.2f} pp / tau {v['cv_kendall_tau']:.2f}"
                    for k, v in predictor.report["candidates"].items()) + ".",
        "",
        f"Learning curve: held-out Kendall tau of {predictor.report['model']} refitted on random "
        "subsets of the fit networks (mean and std over the draws; one draw at the full set).",
        "",
        curve.to_markdown(index=False, floatfmt=(".0f", ".0f", ".3f", ".3f")),
        "",
    ]
    text = write_stamped(RESULTS / f"accuracy_fidelity{suffix}.md", facts)
    print(text)


if __name__ == "__main__":
    main()

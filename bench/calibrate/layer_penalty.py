"""Choose and fit the per-layer precision penalty on the precision-loss table; report its error.

Reads a table built by `python -m xpert_evo.precision` (default: the shipped table of the data set's
default source, ``xpert_evo/crossbar/precision_tables/<dataset>-<fidelity>``), scores every
candidate of `xpert_evo.crossbar.penalty_selection` (predicting no loss, the four-parameter
`PrecisionPenalty`, the per-layer forms) by cross-validation grouped by network (`GroupKFold`: no
network is fitted on and predicted in one fold), and writes a stamped report: held-out RMSE and MAE
beside the fitted error, how often the held-out error lies within its std, the paired measurement
noise, the errors per network and per setting kind (random, one-layer sweep), the check on the
source's own split (fitted on its "fit" networks, scored on its "heldout" ones), each layer's
fitted sensitivity, the training-seed spread where replicate tables exist (the same settings on
networks retrained at another seed, ``<folder>-seed<k>``: the error floor of any model of the
design alone), and the candidates against designs that no table row holds: the searched and
published designs `bench/studies/compare_methods.py` trained and ran on the crossbar
(`DESIGNS`). Also writes the rows with every candidate's held-out prediction (same stem, .csv).

`--out` names the report (default docs/results/precision_loss_<dataset>_<fidelity>.md: it does
not replace docs/results/precision_loss.md, the shipped differential fit's, until the full table
exists). `--write-config` writes the chosen form, fitted on every row, with its std model,
held-out error and bound (the smallest whole pp above that error) into the artifact
xpert_evo/fitted/penalty/layer_<dataset>_<encoding>.yaml that conf/penalty/layer_*.yaml reads.
A malformed table (bits outside the searched ranges, rows of the wrong length) ends with one line
naming the column, exit code 2.

Run: `python bench/calibrate/layer_penalty.py [--table DIR] [--out FILE.md] [--write-config]`.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xpert_evo.config import ConfigError
from xpert_evo.crossbar.layer_penalty import LayerPenalty, table_arrays
from xpert_evo.crossbar.loss_noise import noise_summary, replicate_pairs, seed_spread
from xpert_evo.crossbar.loss_table import PACKAGED, read_table, table_dir
from xpert_evo.crossbar.penalty_selection import (
    CANDIDATES,
    FOLDS,
    Selection,
    coverage,
    grouped_folds,
    heldout_predictions,
    predict_rows,
    scores,
    select,
)
from xpert_evo.space.backbone import GEOMETRY, Backbone
from xpert_evo.training.source import default_fidelity
from xpert_evo.training.verification import BASELINE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import REPO, RESULTS, bound_pp, load_conf, save_fit, write_stamped  # noqa: E402

DESIGNS = RESULTS / "compare_methods_ground_truth.csv"
"""Searched and published designs that `bench/studies/compare_methods.py` trained and ran on the
crossbar: its ground-truth rows (note ``verify <design>``, bits, float and crossbar % on the same
test images), of every run it made, earlier ones included."""

VERIFIED_RUNS = "main_runs*_verified.csv"
"""Files in docs/results of the main runs' verified role designs and VGG16
(`bench/studies/main_runs.py`), per seed, with the loss their run's penalty predicted."""

BANDS_PP = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, math.inf)
"""Edges of the held-out predicted loss bands of the report (pp): the search bounds the predicted
loss at a few pp (`constraints.precision_loss_pp`), so the low bands are where its error counts."""

LEARNING_STEP = 4
"""Networks added per step of the learning curve (`learning_curve`)."""

LOWERED = (4, 4)
"""(input bits, ADC bits) of the one lowered layer in the sensitivity table: a low setting inside
the searched ranges (conf/space/default.yaml)."""


def shown(path: Path) -> Path:
    """`path` relative to the repository where it lies inside it (reports name no machine's
    folders), else as given."""
    full = path.resolve()
    return full.relative_to(REPO) if full.is_relative_to(REPO) else path


def load(args: argparse.Namespace) -> tuple[pd.DataFrame, Path]:
    """The table's rows (one images count, one weight encoding) and its folder.

    Raises:
        ConfigError: no rows, several images counts or encodings without a choice, or a bad
            per-layer column (named).
    """
    folder = Path(args.table) if args.table else table_dir(
        PACKAGED, args.dataset, default_fidelity(args.dataset))
    table = read_table(folder)
    if args.images is not None:
        table = table[table["images"] == args.images]
    if table.empty:
        raise ConfigError(f"--table {folder}: no rows" + (f" at {args.images} images"
                                                          if args.images else "")
                          + "; build it with python -m xpert_evo.precision")
    for column in ("images", "weight_encoding", "dataset", "fidelity"):
        if table[column].nunique() > 1:
            raise ConfigError(f"--table {folder}: rows at several {column} "
                              f"{sorted(table[column].unique())}; choose one (--images N)")
    space = load_conf("space")
    table_arrays(table, {g: space[g] for g in ("input_bits", "adc_bits", "channels")},
                 Backbone().n_conv)
    return table.reset_index(drop=True), folder


def breakdown(sel: Selection, by: str) -> pd.DataFrame:
    """Per value of `by` (net_id, setting_kind, predicted_loss_band): rows, mean measured loss and
    its noise, and the chosen form's held-out RMSE, MAE and mean prediction."""
    pred = f"pred_{sel.best}"
    rows = []
    for value, part in sel.table.groupby(by, sort=True, observed=True):
        err = scores(part[pred], part["loss_pp"])
        rows.append({by: value, **({"role": part["role"].iloc[0]} if by == "net_id" else {}),
                     "rows": len(part), "measured_loss_pp": part["loss_pp"].mean(),
                     "predicted_loss_pp": part[pred].mean(), "rmse_pp": err["rmse_pp"],
                     "mae_pp": err["mae_pp"],
                     "noise_rms_pp": noise_summary(part)["rms_std_pp"]})
    return pd.DataFrame(rows)


def below_bound(sel: Selection, table: pd.DataFrame, bound_pp: float) -> str:
    """One line: the chosen form's held-out RMSE over the rows it predicts below `bound_pp` (the
    designs a search with that bound keeps), beside their measurement noise and over the rest."""
    pred = sel.table[f"pred_{sel.best}"]
    inside = (pred < bound_pp).to_numpy()
    parts = []
    for label, mask in (("below", inside), ("at or above", ~inside)):
        err = scores(pred[mask], table["loss_pp"][mask])
        parts.append(f"{label} it: RMSE {err['rmse_pp']:.2f} pp over {err['rows']} rows (noise "
                     f"RMS {noise_summary(table[mask])['rms_std_pp']:.2f} pp)")
    return (f"Held-out error where the chosen form predicts a loss below its bound "
            f"(`bound_pp` {bound_pp:g} pp, the constraint a search with this penalty applies by "
            "default), " + "; ".join(parts) + ".")


def role_split(table: pd.DataFrame, chance: float, names: list[str]) -> pd.DataFrame:
    """Each candidate fitted on the source's fit networks, scored on its held-out ones."""
    fit, held = table[table["role"] == "fit"], table[table["role"] == "heldout"]
    rows = []
    for name in names:
        try:
            predicted = CANDIDATES[name](fit, held, chance)
        except ValueError as err:
            rows.append({"candidate": name, "rows": len(held), "note": str(err)})
            continue
        rows.append({"candidate": name, **scores(predicted, held["loss_pp"]), "note": ""})
    return pd.DataFrame(rows)


def learning_curve(table: pd.DataFrame, chance: float, names: list[str],
                   step: int = LEARNING_STEP, seed: int = 0) -> pd.DataFrame:
    """Held-out RMSE (pp) of each candidate against the networks it is fitted on: in every fold
    of the grouped cross-validation over all networks, the fit uses k networks drawn (seeded)
    from that fold's fit networks, k = step, 2 step, ... up to all of them; every k predicts the
    same held-out rows, all of the table's. Whether the error still falls as k grows says
    whether more networks would lower it. Candidates that cannot be fitted at k are left out."""
    folds = grouped_folds(table["net_id"])
    net = table["net_id"].to_numpy()
    measured = table["loss_pp"].to_numpy()
    most = min(len(np.unique(net[fit])) for fit, _ in folds)
    rows = []
    for k in [*range(step, most, step), most]:
        rng = np.random.default_rng([seed, k])
        fewer = [(fit[np.isin(net[fit], rng.choice(np.unique(net[fit]), k, replace=False))], test)
                 for fit, test in folds]
        row: dict[str, float] = {"fit_networks": k}
        for name in names:
            try:
                predicted = heldout_predictions(table, CANDIDATES[name], chance, fewer)
            except ValueError:  # too few rows for its parameters
                continue
            row[f"{name}_rmse_pp"] = scores(predicted, measured)["rmse_pp"]
        rows.append(row)
    return pd.DataFrame(rows)


def sensitivity(model: LayerPenalty, table: pd.DataFrame) -> pd.DataFrame:
    """Per layer: the loss (pp) the chosen model predicts when that layer alone is lowered to
    `LOWERED` and the others sit at the largest searched bits, on the table's networks (mean over
    their channels and float accuracies), beside the sweeps measured on that layer."""
    x = table_arrays(table)
    space = load_conf("space")
    high = (max(space["input_bits"]), max(space["adc_bits"]))
    n_layers = x["channels"].shape[1]
    rows = []
    for layer in range(n_layers):
        p = np.full_like(x["channels"], high[0])
        b = np.full_like(x["channels"], high[1])
        p[:, layer], b[:, layer] = LOWERED
        predicted = model.predict_arrays(p, b, x["channels"], x["float_accuracy_pct"]).mean()
        swept = table[table["swept_layer"] == layer]
        rows.append({"layer": layer + 1, f"predicted_loss_pp_at_{LOWERED[0]}in_{LOWERED[1]}adc":
                     predicted, "sweeps_measured": len(swept),
                     "sweep_measured_loss_pp_mean": swept["loss_pp"].mean()})
    return pd.DataFrame(rows)


def measured_designs(table: pd.DataFrame, designs: Path = DESIGNS,
                     runs: Sequence[Path] | None = None) -> pd.DataFrame:
    """Designs a search returned (and published ones), trained and run on the crossbar by
    `compare_methods` and by the main runs' verification, as precision-table rows (design, seed,
    channels, bits, float_accuracy_pct and loss_pp on the same test images) at the table's data
    set, fidelity and weight mapping: none of them is a table network. Empty when the files are
    missing."""
    runs = sorted(RESULTS.glob(VERIFIED_RUNS)) if runs is None else runs
    verified = [f for f in (_main_runs_rows(table, r) for r in runs) if not f.empty]
    if verified:  # a training several runs verified (VGG16 in each, a front found twice): once
        verified = [pd.concat(verified, ignore_index=True).drop_duplicates(
            ["channels", "seed", "input_bits", "adc_bits", "float_accuracy_pct", "loss_pp"])]
    frames = [f for f in (_compare_methods_rows(table, designs), *verified) if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _main_runs_rows(table: pd.DataFrame, runs: Path) -> pd.DataFrame:
    if not runs.exists():
        return pd.DataFrame()
    rows = pd.read_csv(runs)
    if rows.empty:
        return rows
    first = table.iloc[0]
    rows = rows[(rows["dataset"] == first["dataset"]) & (rows["fidelity"] == first["fidelity"])
                & (rows["weight_encoding"] == first["weight_encoding"])]
    label = runs.name.removesuffix("_verified.csv").removeprefix("main_runs").strip("_")
    return pd.DataFrame({
        "design": (rows["run"] + " run" + (f" ({label})" if label else "") + ": "
                   + rows["design"].replace({BASELINE: "VGG16"})),
        "seed": rows["seed"], "channels": rows["channels"], "input_bits": rows["input_bits"],
        "adc_bits": rows["adc_bits"], "float_accuracy_pct": rows["float_pct"],
        "loss_pp": rows["loss_pp"], "images": rows["crossbar_test_images"],
        "loss_std_pp": np.nan, "net_id": -1})


def _compare_methods_rows(table: pd.DataFrame, truth_csv: Path) -> pd.DataFrame:
    if not truth_csv.exists():
        return pd.DataFrame()
    truth = pd.read_csv(truth_csv).dropna(subset=["nonideal_accuracy_pct"])
    first = table.iloc[0]
    truth = truth[(truth["dataset"] == first["dataset"]) & (truth["fidelity"] == first["fidelity"])
                  & (truth["weight_encoding"] == first["weight_encoding"])]
    name = truth["note"].str.removeprefix("verify ").replace({BASELINE: "VGG16"})
    # a name that earlier runs gave other peripheral genes (a published design's follow the
    # search's objective): each set of genes is its own design, named by the day it was trained
    genes = truth["input_bits"] + " " + truth["adc_bits"]
    several = genes.groupby(name).transform("nunique") > 1
    day = truth["timestamp"].str[:10].groupby([name, genes]).transform("min")
    name = name.where(~several, name + " (" + day + ")")
    return pd.DataFrame({
        "design": name, "seed": truth["seed"], "channels": truth["channels"],
        "input_bits": truth["input_bits"], "adc_bits": truth["adc_bits"],
        "float_accuracy_pct": truth["reference_accuracy_pct"],
        "loss_pp": truth["reference_accuracy_pct"] - truth["nonideal_accuracy_pct"],
        "images": truth["crossbar_test_images"],
        "loss_std_pp": np.nan, "net_id": -1})  # no bootstrap noise kept; no table network


def searched(sel: Selection, table: pd.DataFrame, chance: float, names: list[str],
             rows: pd.DataFrame) -> list[str]:
    """The report's section on designs outside the table: every candidate fitted on all table
    rows (the layer forms as `select` fitted them), its predicted loss beside the measured one,
    per design (seed mean) and over rows."""
    if rows.empty:
        return ["(no measured designs at this table's data set, fidelity and mapping)"]
    predicted = {name: predict_rows(sel.fits[name], rows) if name in sel.fits
                 else CANDIDATES[name](table, rows, chance) for name in names}
    std = sel.model.std_of(predicted[sel.best])
    err = rows["loss_pp"].to_numpy() - predicted[sel.best]
    per_design = rows.assign(**{f"pred_{k}": v for k, v in predicted.items()}).groupby(
        "design", sort=False).agg(
        seeds=("seed", "size"), measured_loss_pp=("loss_pp", "mean"),
        measured_seed_std_pp=("loss_pp", "std"),
        **{f"{k}_pp": (f"pred_{k}", "mean") for k in names}).reset_index()
    overall = pd.DataFrame([{"candidate": k, **scores(v, rows["loss_pp"])}
                            for k, v in predicted.items()])
    return [
        f"{len(rows)} trainings of {rows['design'].nunique()} designs (seeds apart, "
        f"{' or '.join(str(int(i)) for i in sorted(rows['images'].unique()))} test images "
        "each): the float and crossbar accuracy of "
        "the same trained network on the same images, loss = float - crossbar. Columns "
        "`<candidate>_pp`: the loss each candidate, fitted on every table row, predicts at the "
        "design's bits and float accuracy (seed mean).", "",
        per_design.to_markdown(index=False, floatfmt=".2f"), "",
        overall.to_markdown(index=False, floatfmt=".2f"), "",
        f"The chosen form ({sel.best}) errs by {np.sqrt(np.mean(err**2)):.2f} pp RMSE over these "
        f"rows (mean measured minus predicted {err.mean():+.2f} pp); "
        f"{np.mean(np.abs(err) <= std):.0%} of them lie within its std (model error only, "
        "no measurement noise added).", ""]


def replicates(sel: Selection, tables: dict[Path, pd.DataFrame],
               bound: float = math.inf) -> list[str]:
    """The report's section on replicate tables (`python -m xpert_evo.precision
    precision.train_seed=k`): the same settings on networks retrained at another seed, how far
    the two trainings' losses lie apart (`seed_spread`: the error floor of any model of the
    design alone), also where the chosen form predicts below `bound` (pp; the designs a search
    keeps), and the chosen form's error on them."""
    if not tables:
        return ["(no replicate table: `python -m xpert_evo.precision precision.train_seed=1 "
                "precision.net_ids=[...]` builds one)"]
    lines = []
    best = f"pred_{sel.best}"
    for folder, replicate in tables.items():
        pairs = replicate_pairs(sel.table, replicate)
        if pairs.empty:
            lines += [f"`{shown(folder)}`: no row matches a row of the table", ""]
            continue
        spread = seed_spread(pairs)
        refit = predict_rows(sel.fits[sel.best], pairs.assign(
            float_accuracy_pct=pairs["float_accuracy_pct_replicate"]))
        errors = pd.DataFrame([
            {"predicts": "the seed-0 loss", "with": f"{sel.best}, held out (its folds)",
             **scores(pairs[best], pairs["loss_pp"])},
            {"predicts": "the replicate's loss", "with": f"{sel.best}, held out (its folds)",
             **scores(pairs[best], pairs["loss_pp_replicate"])},
            {"predicts": "the replicate's loss",
             "with": f"{sel.best} fitted on every seed-0 row, at the replicate's float accuracy",
             **scores(refit, pairs["loss_pp_replicate"])},
            {"predicts": "the replicate's loss", "with": "the seed-0 loss measured",
             **scores(pairs["loss_pp"], pairs["loss_pp_replicate"])}])
        per_net = pairs.assign(diff=pairs["loss_pp_replicate"] - pairs["loss_pp"]).groupby(
            "net_id").agg(role=("role", "first"), pairs=("diff", "size"),
                          float_pct=("float_accuracy_pct", "first"),
                          float_replicate_pct=("float_accuracy_pct_replicate", "first"),
                          loss_pp=("loss_pp", "mean"), loss_replicate_pp=("loss_pp_replicate",
                                                                          "mean"),
                          diff_rms_pp=("diff", lambda d: float(np.sqrt(np.mean(d**2)))))
        lines += [
            f"Replicate `{shown(folder)}`: {spread['pairs']} of its settings on "
            f"{pairs['net_id'].nunique()} networks retrained at another seed, each beside the "
            "same setting of the same network's seed-0 training.", "",
            f"Two trainings of one design lose {spread['diff_rms_pp']:.2f} pp apart (RMS), so "
            f"one training's loss scatters by **{spread['loss_std_pp']:.2f} pp** about its "
            f"design's mean: {spread['image_noise_pp']:.2f} pp of it the test images' noise, "
            f"{spread['training_std_pp']:.2f} pp the training seed (float accuracies "
            f"{spread['float_diff_rms_pp']:.2f} pp apart, RMS). A model that knew every design's "
            f"mean loss would err by about {spread['loss_std_pp']:.2f} pp on one training; no "
            "model of the design alone (its bits, channels and float accuracy) can do better "
            "on average.", "",
            *_below(pairs, best, bound),
            errors.to_markdown(index=False, floatfmt=".2f"), "",
            per_net.reset_index().to_markdown(index=False, floatfmt=".2f"), ""]
    return lines


def _below(pairs: pd.DataFrame, best: str, bound: float) -> list[str]:
    """The replicate spread and the chosen form's error where it predicts below `bound`."""
    inside = pairs[pairs[best] < bound]
    if not math.isfinite(bound) or inside.empty:
        return []
    spread = seed_spread(inside)
    err = scores(inside[best], inside["loss_pp_replicate"])
    return [f"Where the chosen form predicts a loss below its bound ({bound:g} pp; "
            f"{spread['pairs']} pairs), one training scatters by {spread['loss_std_pp']:.2f} pp "
            f"({spread['image_noise_pp']:.2f} pp of it the images'), and the form, held out, "
            f"errs on the replicate by {err['rmse_pp']:.2f} pp RMSE.", ""]


def report(sel: Selection, table: pd.DataFrame, folder: Path, chance: float,
           names: list[str], designs: pd.DataFrame,
           replicate_tables: dict[Path, pd.DataFrame]) -> list[str]:
    """The report's lines."""
    noise = noise_summary(table)
    best = sel.summary.set_index("candidate").loc[sel.best]
    target = max(1.0, 1.5 * noise["rms_std_pp"])
    roles = table.drop_duplicates("net_id")["role"].value_counts().to_dict()
    kinds = table["setting_kind"].value_counts().to_dict()
    _, within = coverage(sel.table[f"pred_{sel.best}"].to_numpy(), table["loss_pp"].to_numpy(),
                         table["loss_std_pp"].to_numpy(), grouped_folds(table["net_id"]))
    m = sel.model
    curve = learning_curve(table, chance, [n for n in names if n != "zero"])
    sel.table["predicted_loss_band"] = pd.cut(sel.table[f"pred_{sel.best}"], BANDS_PP,
                                              right=False)
    return [
        "# Crossbar precision loss: the per-layer penalty", "",
        f"Table `{shown(folder)}`: {len(table)} crossbar evaluations of "
        f"{table['net_id'].nunique()} networks of the {table['dataset'].iloc[0]} measured "
        "source at "
        f"`{table['fidelity'].iloc[0]}` ({roles.get('fit', 0)} fit, {roles.get('heldout', 0)} "
        f"held-out networks), {int(table['images'].iloc[0])} test images each, "
        f"`{table['weight_encoding'].iloc[0]}` weight mapping; settings: "
        + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())) + ".", "",
        f"Paired measurement noise (bootstrap std of each row's loss over its images): "
        f"root-mean-square {noise['rms_std_pp']:.2f} pp, median {noise['median_std_pp']:.2f} pp.",
        "", f"## Candidates, cross-validated by network ({len(grouped_folds(table['net_id']))} "
        "folds, GroupKFold)", "",
        "`rmse_pp`, `mae_pp`: held-out (each row predicted by a fit that never saw its network); "
        "`rmse_se_pp`: its standard error over the folds; `fitted_rmse_pp`: the fit on every "
        "row, on those rows; `within_std`: share of rows whose "
        "held-out error lies within its std (model std fitted on the other folds, plus the row's "
        "noise; 68 % expected).", "",
        sel.summary.to_markdown(index=False, floatfmt=".3f"), "",
        "Chosen: the simplest layer form within one standard error of the lowest held-out RMSE, "
        f"**{sel.best}**, held-out RMSE {best['rmse_pp']:.2f} pp (MAE "
        f"{best['mae_pp']:.2f} pp, fitted {best['fitted_rmse_pp']:.2f} pp); within its std: "
        f"{best['within_std']:.0%} of rows. The issue's target, RMSE <= max(1 pp, 1.5 x the noise) "
        f"= {target:.2f} pp, is {'met' if best['rmse_pp'] <= target else 'not met'}.", "",
        f"Fitted on every row: k_in {m.k_in:.3f}, k_adc {m.k_adc:.3f} per bit, gamma "
        f"{m.gamma:.3f} (1: the layers' terms add up); alpha "
        f"{[round(v, 3) for v in m.alpha]}, beta {[round(v, 3) for v in m.beta]}; std of a "
        f"prediction sqrt({m.std_floor_pp:.2f}^2 + ({m.std_slope:.3f} x loss)^2) pp (mean "
        f"{np.nanmean(within):.2f} pp with the rows' noise).", "",
        "## Fitted on the source's fit networks, scored on its held-out networks", "",
        role_split(table, chance, names).to_markdown(index=False, floatfmt=".3f"), "",
        "## By setting kind (chosen form, held-out)", "",
        breakdown(sel, "setting_kind").to_markdown(index=False, floatfmt=".2f"), "",
        "## By held-out predicted loss, pp (chosen form): the error where the search's bound sits",
        "", breakdown(sel, "predicted_loss_band").to_markdown(index=False, floatfmt=".2f"), "",
        below_bound(sel, table, bound_pp(m.heldout_rmse_pp)), "",
        "## Held-out error against the networks fitted", "",
        "Each fold of the cross-validation above fitted on k of its fit networks (drawn, "
        "seeded; k up to the fewest fit networks of any fold, so the last row can differ a "
        "little from the table above); the same held-out rows, all of the table's, are scored "
        "at every k.", "", curve.to_markdown(index=False, floatfmt=("g", *[".2f"] * (
            curve.shape[1] - 1))), "",
        "## By network (chosen form, held-out)", "",
        breakdown(sel, "net_id").to_markdown(index=False, floatfmt=".2f"), "",
        f"## Layer sensitivity (chosen form): one layer at {LOWERED[0]}-bit inputs and "
        f"{LOWERED[1]}-bit ADC, the others at the largest searched bits", "",
        sensitivity(m, table).to_markdown(index=False, floatfmt=("g", ".2f", "g", ".2f")), "",
        "## Two trainings of the same design: the training-seed spread", "",
        *replicates(sel, replicate_tables, bound_pp(m.heldout_rmse_pp)),
        "## Searched and published designs, measured (not in the table)", "",
        *searched(sel, table, chance, names, designs)]


def main() -> None:
    """Select, fit, report; write the artifact with `--write-config`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(GEOMETRY), default="cifar10")
    parser.add_argument("--table", help="the table's folder (<dir>/<dataset>-<fidelity>; default: "
                        "the shipped one, xpert_evo/crossbar/precision_tables)")
    parser.add_argument("--images", type=int, help="only rows at this many test images")
    parser.add_argument("--out", help="the report (.md; the rows go beside it as .csv)")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--candidates", nargs="+", choices=sorted(CANDIDATES))
    parser.add_argument("--replicates", nargs="*", help="replicate tables (networks retrained "
                        "at another seed); default: the table's <folder>-seed<k> siblings")
    parser.add_argument("--write-config", action="store_true")
    parser.add_argument("--note", default="", help="put first in the artifact's note (e.g. that "
                        "a table is a pilot's)")
    args = parser.parse_args()
    try:
        table, folder = load(args)
        chance = 100.0 / GEOMETRY[args.dataset][1]
        names = args.candidates or list(CANDIDATES)
        sel = select(table, chance, names, args.folds)
    except (ConfigError, ValueError) as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(2)
    fidelity, encoding = table["fidelity"].iloc[0], table["weight_encoding"].iloc[0]
    out = Path(args.out) if args.out else RESULTS / f"precision_loss_{args.dataset}_{fidelity}.md"
    replicate_folders = ([Path(f) for f in args.replicates] if args.replicates is not None
                         else sorted(folder.parent.glob(f"{folder.name}-seed*")))
    lines = report(sel, table, folder, chance, names, measured_designs(table),
                   {f: read_table(f) for f in replicate_folders})
    write_stamped(out, lines)
    sel.table.to_csv(out.with_suffix(".csv"), index=False, float_format="%.4f")
    print("\n".join(lines))
    print(f"wrote {out} and {out.with_suffix('.csv')}")
    if args.write_config:
        save_fit(f"penalty/layer_{args.dataset}_{encoding}.yaml", "precision_table",
                 {**sel.model.constants(), "bound_pp": bound_pp(sel.model.heldout_rmse_pp)},
                 data=str(shown(folder)),
                 note=" ".join(filter(None, [args.note, (
                     f"{len(table)} rows of {table['net_id'].nunique()} networks at {fidelity}, "
                     f"{int(table['images'].iloc[0])} images; form chosen by GroupKFold over "
                     f"{names}; held-out error and std from its folds; bound_pp: the smallest "
                     f"whole pp above the held-out RMSE; report {shown(out)}")])))


if __name__ == "__main__":
    main()

"""nsga2 against random search and XPert's gradient search in XPert's setting, at equal budgets,
on predicted and on measured accuracy %.

    python bench/studies/compare_methods.py [--seeds 5] [--cost-budget 10000]
        [--predictor-budget 5000] [--experiments xpert_cifar10 xpert_tinyimagenet]
        [--methods nsga2 random xpert_gd "xpert_gd (degenerate)"] [--verify-seeds 3 | --no-verify]
        [--crossbar-images 2000] [--ground-truth PATH] [--n-jobs 1]
        [--data-root ../shared/datasets] [--out-dir docs/results] [--set KEY=VALUE ...]

Experiments: XPert's setting (``+experiment=xpert_cifar10``, ``+experiment=xpert_tinyimagenet``:
its option sets, the offset weight mapping, VGG16 at m = 8, 6-bit flash ADCs and 4-bit inputs as
the baseline, 50 / 80 mm2); ``--set`` adds config overrides to every run (e.g.
``constraints.area_mm2=80``, the budget of XPert's 80 mm2 model). Every search ranks designs by
the product's objective: predicted validation accuracy % at the source's training budget
(``accuracy=measured``) minus the predicted crossbar loss. Methods (conf/algorithm/):
``nsga2``; ``random``; ``xpert_gd``, XPert's gradient co-search with a working straight-through
estimator; ``xpert_gd (degenerate)``, the public code's zero gradient
(`xpert_evo.search.xpert_gd`).

Budgets: each run gets at most ``--cost-budget`` cost-model genome evaluations and
``--predictor-budget`` predictor calls (distinct channel configurations the source predictor
predicted, `SourcePredictor.n_scored`, the uniform-width anchors and VGG16 included), held by
`xpert_evo.search.SpendCaps`: the generation that would overspend is cut to what is left, and
xpert_gd's gradient steps stop before they would. Each run's row records what it used beside the
budgets; a run that used more is an error.

Per run (predicted): the hypervolume of the feasible predicted front (normalised objectives,
the run's fixed reference), and the *headline design*: for nsga2 and random the lowest-EDAP
feasible design whose predicted net accuracy is no lower than VGG16's (scored by the same
predictor), for xpert_gd its returned design (none when it returns none; its `outcome_lines`,
its candidates' area and accuracy against its tests, say why), with its EDAP reduction against
VGG16.

Measured (``--verify-seeds 3``; ``--no-verify`` skips it): per experiment and method, the headline
design of the median seed (by predicted EDAP reduction, seeds without a design ranked lowest;
none when that seed has none), VGG16, and the published designs (XPertNet_50 and XPert's 80 mm2
model with their lowest-EDAP peripheral genes, each beside nsga2's best design at no larger area
from its seed-0 run) are trained at 3 seeds at the source's budget and run on the crossbar
(``--crossbar-images`` test images) through `xpert_evo.training.verification`
(`compare_methods_measure`). Trainings go to the ground-truth table (``--ground-truth``, default
``<cache>/ground_truth.csv``): a rerun or a killed run retrains nothing measured. The searches are
seeded, so a rerun finds the same designs (they take minutes).

Writes into ``--out-dir``: compare_methods.md (stamped: command, commit, date, machine),
compare_methods_runs.csv (one row per run, rewritten after every run),
compare_methods_verified.csv (one row per training) and compare_methods.png. A measured run into
docs/results also rewrites the README's summary of it (`readme_rows`, `published_rows`),
stamped, between its ``<!-- compare_methods.py: begin ... -->`` and
``<!-- compare_methods.py: end -->`` lines.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from xpert_evo.accuracy.predictor import SourcePredictor
from xpert_evo.report import markdown_table
from xpert_evo.schema import register
from xpert_evo.search import HW_METRICS, SearchResult, SearchRun, SpendCaps, build_search
from xpert_evo.training.groundtruth import default_path, genome_columns, genomes_from_table
from xpert_evo.training.verification import BASELINE, Design

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import (  # noqa: E402
    DATASETS,
    REPO,
    RESULTS,
    app_config,
    replace_section,
    write_stamped,
)
from compare_methods_measure import (  # noqa: E402
    Panel,
    design_of,
    differs_lines,
    mean_std,
    measured_table,
    measurement,
    plot,
    published,
    published_table,
    versus_lines,
)

os.environ.setdefault("TQDM_DISABLE", "1")  # one line per run instead of progress bars
EDAP, AREA = HW_METRICS.index("edap"), HW_METRICS.index("area_mm2")
GENES: tuple[str, ...] = ("channels", "col_share", "adc_type", "adc_bits", "input_bits")
EXPERIMENTS: tuple[str, ...] = ("xpert_cifar10", "xpert_tinyimagenet")
METHODS: dict[str, list[str]] = {
    "nsga2": ["algorithm=nsga2"],
    "random": ["algorithm=random"],
    "xpert_gd": ["algorithm=xpert_gd"],
    "xpert_gd (degenerate)": ["algorithm=xpert_gd", "algorithm.degenerate=true"],
}
"""Method name -> its config overrides."""


def returns_design(method: str) -> bool:
    """Whether the method answers with one design of its own (xpert_gd), not a front."""
    return "algorithm=xpert_gd" in METHODS[method]


def compose_config(experiment: str, seed: int, extra: list[str],
                   args: argparse.Namespace) -> DictConfig:
    """The experiment's config at `seed`, stopped by the cost budget, with the method's `extra`
    overrides and the command line's (``--set``)."""
    register()  # the schemas conf/ names in its defaults lists
    return app_config([f"+experiment={experiment}", f"data.root={args.data_root}", f"seed={seed}",
                       "algorithm.n_gen=null", f"algorithm.n_evals={args.cost_budget}", *extra,
                       *args.overrides])


def budget_caps(args: argparse.Namespace) -> SpendCaps:
    """The spending caps every run gets: predictor calls and cost-model evaluations."""
    return SpendCaps(true_calls=args.predictor_budget, cost_evals=args.cost_budget)


@dataclass
class Outcome:
    """One run: its row of the runs table and its result (archive, front, VGG16's figures)."""

    row: dict[str, Any]
    result: SearchResult


def headline_columns(result: SearchResult, index: int | None) -> dict[str, Any]:
    """The ``headline_*`` columns of archive design `index` (NaN without one): predicted net %,
    its std and predicted loss, EDAP, area, feasibility, the reduction against VGG16, the genes."""
    if index is None:
        return {"headline_edap_reduction_x": np.nan}
    a = result.archive
    genome = result.setup.space.decode(a.x[index][None])
    return {
        "headline_edap_reduction_x": result.baseline_hw[EDAP] / a.hw[index, EDAP],
        "headline_net_pct": a.net[index], "headline_std_pp": a.std[index],
        "headline_loss_pp": a.loss_pp[index], "headline_edap": a.hw[index, EDAP],
        "headline_area_mm2": a.hw[index, AREA], "headline_feasible": bool(a.cv[index] <= 0),
        **{f"headline_{gene}": value for gene, value in genome_columns(genome).items()},
    }


def run_method(experiment: str, method: str, seed: int, args: argparse.Namespace,
               estimator: SourcePredictor | None = None) -> Outcome:
    """One search held to the shared budgets; its row and result.

    Args:
        experiment, method, seed: what to run.
        args: the command line (budgets, data root).
        estimator: the experiment's fitted source predictor, to share between runs (each run
            predicts with its own cache), or None to fit it.

    Raises:
        RuntimeError: the run used more predictor calls or cost-model evaluations than its
            budget (the caps failed).
    """
    setup = build_search(compose_config(experiment, seed, METHODS[method], args), estimator)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = SearchRun(setup, tmp, caps=budget_caps(args)).start()
        res = run.run()
        wall_s = time.perf_counter() - start
    used = (res.accuracy.n_scored, run.cost_evals)
    if used[0] > args.predictor_budget or used[1] > args.cost_budget:
        raise RuntimeError(f"{experiment} {method} seed {seed} used {used[0]} predictor calls and "
                           f"{used[1]} cost-model evaluations, over the budgets "
                           f"{args.predictor_budget} / {args.cost_budget}")
    a = res.archive
    base_net = float(res.baseline_accuracy.net[0])
    row: dict[str, Any] = {
        "experiment": experiment, "method": method, "seed": seed,
        "predictor_calls": used[0], "predictor_budget": args.predictor_budget,
        "cost_model_evals": used[1], "cost_budget": args.cost_budget,
        "wall_s": wall_s, "designs": len(a), "front_size": len(res.front),
        "hypervolume": res.bounds.hypervolume(a.objectives()[res.front]) if len(res.front) else 0.0,
        "area_budget_mm2": setup.constraints.area_mm2, "vgg16_net_pct": base_net,
        "vgg16_edap": res.baseline_hw[EDAP], "vgg16_area_mm2": res.baseline_hw[AREA],
    }
    feasible = np.flatnonzero(a.cv <= 0)
    row["best_net_pct"] = a.net[feasible].max() if len(feasible) else np.nan
    iso = feasible[a.net[feasible] >= base_net]
    headline = int(iso[np.argmin(a.hw[iso, EDAP])]) if len(iso) else None
    row["iso_edap_reduction_x"] = np.nan if headline is None else (
        res.baseline_hw[EDAP] / a.hw[headline, EDAP])
    if returns_design(method):
        best = run.algorithm.best
        headline = None if best is None else int(np.flatnonzero((a.x == best["x"]).all(1))[0])
        row.update(returned=best is not None, outcome="; ".join(run.algorithm.outcome_lines()))
    row.update(headline_columns(res, headline))
    return Outcome(row, res)


def median_run(runs: pd.DataFrame) -> pd.Series | None:
    """The run of the median seed by predicted headline EDAP reduction (seeds without a design
    rank lowest; the lower middle one of an even count), or None when it has no design."""
    order = runs.assign(key=runs["headline_edap_reduction_x"].fillna(-np.inf))
    row = order.sort_values(["key", "seed"]).iloc[(len(order) - 1) // 2]
    return None if np.isnan(row["headline_edap_reduction_x"]) else row


def headline_design(row: pd.Series) -> Design:
    """The headline design of a runs-table row, named by its method."""
    genome = genomes_from_table(pd.DataFrame([{g: row[f"headline_{g}"] for g in GENES}]))
    return Design(row["method"], genome, float(row["headline_net_pct"]),
                  float(row["headline_std_pp"]), float(row["headline_loss_pp"]),
                  float(row["headline_edap"]), int(row["seed"]))


def per_seed_text(values: pd.Series, fmt: str) -> str:
    """Every seed's value in format `fmt`, "none" where a seed has none."""
    return ", ".join("none" if np.isnan(v) else f"{v:{fmt}}" for v in values)


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and method over seeds: hypervolume, the headline design's predicted EDAP
    reduction and net %, and the highest predicted net % of a feasible design, each as mean ±
    std, median and every seed's value (seeds without a design are "none" and left out of the
    statistics); every seed's lowest EDAP at VGG16's predicted net among all the designs the
    method evaluated (as a reduction); the seeds with a headline design; the most predictor
    calls and cost-model evaluations any seed used against the budgets; the mean wall time."""
    out = []
    for (experiment, method), runs in rows.groupby(["experiment", "method"], sort=False):
        runs = runs.sort_values("seed")
        row: dict[str, Any] = {"experiment": experiment, "method": method}
        for column, fmt in (("hypervolume", ".3f"), ("headline_edap_reduction_x", ".3g"),
                            ("headline_net_pct", ".2f"), ("best_net_pct", ".2f")):
            values = runs.get(column, pd.Series(np.nan, index=runs.index)).astype(float)
            row[column] = mean_std(values, fmt)
            row[f"{column} median"] = per_seed_text(pd.Series([values.median()]), fmt)
            row[f"{column} per seed"] = per_seed_text(values, fmt)
        row["iso_edap_reduction_x per seed"] = per_seed_text(runs["iso_edap_reduction_x"], ".3g")
        found = runs["headline_edap_reduction_x"].notna().sum()
        row["seeds_with_design"] = f"{found}/{len(runs)}"
        for used, budget in (("predictor_calls", "predictor_budget"),
                             ("cost_model_evals", "cost_budget")):
            row[used] = f"{runs[used].max()}/{runs[budget].iloc[0]}"
        row["wall_s"] = f"{runs['wall_s'].mean():.1f}"
        out.append(row)
    return pd.DataFrame(out)


def outcome_lines(rows: pd.DataFrame) -> list[str]:
    """xpert_gd's account of every run: what it returned and why, in numbers."""
    if "outcome" not in rows:
        return []
    runs = rows[rows["outcome"].notna()]
    return [f"- {r.experiment}, {r.method}, seed {r.seed}: {r.outcome}" for r in runs.itertuples()]


def budget_line(runs: pd.DataFrame) -> str:
    """The experiment's area budget and VGG16's figures; when no run has a headline design,
    how far the best feasible design's predicted net stays below VGG16's."""
    first = runs.iloc[0]
    line = (f"Area budget {first['area_budget_mm2']:g} mm2. VGG16 (the baseline): "
            f"{first['vgg16_area_mm2']:.1f} mm2, EDAP {first['vgg16_edap']:.4g} pJ·ns·mm², "
            f"predicted net {first['vgg16_net_pct']:.2f} %.")
    if runs["headline_edap_reduction_x"].notna().any():
        return line
    best = runs.groupby("method", sort=False)["best_net_pct"].median()
    return line + (" No run of any method returned or found a design at VGG16's predicted net "
                   "within the budget, so there is no headline design to measure; the highest "
                   "predicted net of a feasible design (median over seeds) is " + ", ".join(
                       f"{v:.2f} % ({m})" for m, v in best.items()) + ".")


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cost-budget", type=int, default=10000,
                        help="cost-model genome evaluations per run")
    parser.add_argument("--predictor-budget", type=int, default=5000,
                        help="predictor calls (distinct channel configurations) per run")
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=EXPERIMENTS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--verify-seeds", type=int, default=3, help="training seeds per design")
    parser.add_argument("--no-verify", action="store_true", help="train nothing")
    parser.add_argument("--crossbar-images", type=int, default=2000,
                        help="test images per crossbar evaluation")
    parser.add_argument("--ground-truth", type=Path, default=None,
                        help="ground-truth table (default <cache>/ground_truth.csv)")
    parser.add_argument("--n-jobs", type=int, default=1, help="trainings at once")
    parser.add_argument("--alpha", type=float, default=0.05, help="one-sided paired t-test level")
    parser.add_argument("--data-root", default=str(DATASETS))
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides for every run, e.g. constraints.area_mm2=80")
    args = parser.parse_args(argv)
    if args.verify_seeds < 1 and not args.no_verify:
        parser.error("--verify-seeds must be at least 1 (or --no-verify)")
    args.ground_truth = args.ground_truth or default_path()
    return args


def search(args: argparse.Namespace) -> tuple[pd.DataFrame, dict[tuple[str, str], Outcome]]:
    """Every experiment, seed and method; the runs table (written after every run) and the
    seed-0 outcomes by (experiment, method)."""
    rows, first = [], {}
    for experiment in args.experiments:
        estimator = None
        for seed in range(args.seeds):
            for method in args.methods:
                outcome = run_method(experiment, method, seed, args, estimator)
                estimator = outcome.result.setup.estimator
                rows.append(outcome.row)
                pd.DataFrame(rows).to_csv(args.out_dir / "compare_methods_runs.csv", index=False)
                if seed == 0:
                    first[(experiment, method)] = outcome
                r = outcome.row
                print(f"{experiment:18s} {method:22s} seed {seed}: HV {r['hypervolume']:.3f}, "
                      f"headline {r['headline_edap_reduction_x']:.2f}x, "
                      f"{r['predictor_calls']}/{args.predictor_budget} predictor calls, "
                      f"{r['cost_model_evals']}/{args.cost_budget} cost evals, "
                      f"{r['wall_s']:.1f} s", flush=True)
    return pd.DataFrame(rows), first


README_SECTION = "compare_methods.py"
"""Name of the README's summary this script rewrites (`readme_rows`, `published_rows`) between
the markers ``<!-- compare_methods.py: begin ... -->`` and ``<!-- compare_methods.py: end -->``."""


def readme_rows(rows: pd.DataFrame, measured: dict[str, pd.DataFrame]) -> list[str]:
    """The README's summary: per experiment and method the predicted hypervolume (mean ± std
    over seeds), the median seed's headline design as predicted (EDAP reduction against VGG16,
    or the best predicted net % of a feasible design against VGG16's when it has none), and
    that design measured on the crossbar against VGG16 (`measured`: each experiment's
    `measured_table`)."""
    lines = ["| experiment | method | hypervolume, predicted | headline design (median seed), "
             "predicted | on the crossbar against VGG16, measured |",
             "| --- | --- | --- | --- | --- |"]
    for (experiment, method), runs in rows.groupby(["experiment", "method"], sort=False):
        chosen = median_run(runs)
        vgg16 = runs["vgg16_net_pct"].iloc[0]
        if chosen is None:
            head = (f"none (best {runs['best_net_pct'].median():.2f} % against VGG16's "
                    f"{vgg16:.2f} %)")
        else:
            head = (f"{chosen['headline_edap_reduction_x']:.2f}x at "
                    f"{chosen['headline_net_pct']:.2f} % (VGG16 {vgg16:.2f} %)")
        table = measured.get(experiment)
        found = None if table is None else table.set_index("method").loc[method]
        if found is None:
            meas = "not measured"
        elif pd.isna(found.get("crossbar_minus_vgg16_pp")):
            meas = "-"
        else:
            meas = (f"{found['crossbar_minus_vgg16_pp']} pp (p = {found['p_below_vgg16']:.3f}): "
                    f"{found['measured_iso_edap_reduction']}")
        lines.append(f"| {experiment} | {method} | {mean_std(runs['hypervolume'], '.3f')} | "
                     f"{head} | {meas} |")
    return lines


def published_rows(published: dict[str, pd.DataFrame]) -> list[str]:
    """The README's lines on XPert's published designs and nsga2's designs of no larger area
    (`published`: each experiment's `published_table`): EDAP reduction against VGG16, predicted
    net %, and the crossbar accuracy against VGG16's, measured."""
    lines = ["| experiment | design | EDAP reduction vs VGG16 | predicted net % (VGG16) | "
             "on the crossbar against VGG16, measured |", "| --- | --- | --- | --- | --- |"]
    for experiment, table in published.items():
        vgg16 = table.set_index("design").loc["VGG16", "predicted_net_pct"]
        for row in table[table["design"] != "VGG16"].itertuples():
            diff = getattr(row, "crossbar_minus_vgg16_pp", math.nan)
            meas = ("not measured" if pd.isna(diff) else
                    f"{diff:+.2f} pp (p = {row.p_below_vgg16:.3f})")
            lines.append(f"| {experiment} | {row.design} | {row.edap_reduction_x:.2f}x | "
                         f"{row.predicted_net_pct:.2f} ({vgg16:.2f}) | {meas} |")
    return lines


@dataclass
class Section:
    """One experiment's part of the report: its lines, its panel of the figure, its trainings,
    its `measured_table` (both None with ``--no-verify``) and its `published_table`."""

    lines: list[str]
    panel: Panel
    trainings: pd.DataFrame | None
    measured: pd.DataFrame | None
    published: pd.DataFrame


def experiment_section(experiment: str, rows: pd.DataFrame, first: dict[tuple[str, str], Outcome],
                       args: argparse.Namespace) -> Section:
    """One experiment's measured and published-design tables (training what they need) and its
    part of the figure."""
    mine = {m: o for (e, m), o in first.items() if e == experiment}
    setup = next(iter(mine.values())).result.setup
    baseline = design_of(BASELINE, setup.space.baseline, setup)
    nsga2 = mine["nsga2"].result if "nsga2" in mine else None
    others = published(setup, nsga2)
    runs = rows[rows["experiment"] == experiment]
    chosen = {m: median_run(runs[runs["method"] == m]) for m in args.methods}
    designs = {m: None if r is None else headline_design(r) for m, r in chosen.items()}
    fidelity = setup.estimator.fidelity
    lines = [f"## {experiment}", "", budget_line(runs), ""]
    trainings = table = None
    if args.no_verify:
        lines += ["Not measured (`--no-verify`): every accuracy below is predicted.", ""]
    else:
        meas = measurement(setup, experiment, args.verify_seeds, args.crossbar_images,
                           args.ground_truth, args.data_root, args.n_jobs)
        known = [d for d in designs.values() if d is not None]
        trainings = meas.run([baseline, *known, *others])
        table = measured_table(designs, baseline, trainings, args.alpha)
        seeds = ", ".join(f"{m} seed {r['seed']}" for m, r in chosen.items() if r is not None)
        lines += [f"Measured at {fidelity} (conf/training/{meas.preset}.yaml), "
                  f"{args.verify_seeds} seeds, crossbar on {args.crossbar_images} test images. "
                  f"Median-seed designs: {seeds or 'none'}.", "", markdown_table(table), "",
                  *versus_lines(table), ""]
    pub = published_table(others, baseline, setup, trainings, args.alpha)
    lines += [f"Published designs on our scale ({experiment}; nsga2's from its seed-0 run):", "",
              markdown_table(pub), "", *differs_lines(experiment, pub, fidelity), ""]
    fronts = pd.concat([pd.DataFrame({"method": m, "net_pct": o.result.archive.net[o.result.front],
                                      "edap": o.result.archive.hw[o.result.front, EDAP]})
                        for m, o in mine.items()], ignore_index=True)
    has = runs["returned"].fillna(False).astype(bool) if "returned" in runs else False
    returned = runs[(runs["seed"] == 0) & has].reindex(
        columns=["method", "headline_net_pct", "headline_edap"]).set_axis(
        ["method", "net_pct", "edap"], axis=1)
    panel = Panel(experiment, fidelity, fronts, returned,
                  baseline, others, {m: d for m, d in designs.items() if d is not None}, trainings)
    return Section(lines, panel, trainings, table, pub)


def main(argv: list[str] | None = None) -> int:
    """Run every method on every experiment and seed, measure the headline designs; print and
    write the results."""
    args = parse(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING)
    rows, first = search(args)
    sections, panels, measured, tables, published = [], [], [], {}, {}
    for experiment in args.experiments:
        part = experiment_section(experiment, rows, first, args)
        sections += part.lines
        panels.append(part.panel)
        published[experiment] = part.published
        if part.measured is not None:
            tables[experiment] = part.measured
        if part.trainings is not None:
            measured.append(part.trainings)
            pd.concat(measured).to_csv(args.out_dir / "compare_methods_verified.csv", index=False)
    plot(panels, args.out_dir / "compare_methods.png")
    headline = ("For each method the median seed's headline design is trained and run on the "
                "crossbar. The headline column is `measured_iso_edap_reduction`: the design's "
                "EDAP reduction against VGG16 (cost model) where its crossbar accuracy, measured "
                f"at {args.verify_seeds} training seeds, does not fall short of VGG16's at the "
                "same seeds beyond noise (one-sided paired t-test, p >= "
                f"{args.alpha})." if not args.no_verify else
                "Nothing was measured (`--no-verify`): every accuracy is predicted.")
    text = write_stamped(args.out_dir / "compare_methods.md", [
        "",
        "# nsga2, random search and XPert's gradient search in XPert's setting",
        "",
        f"Each run: at most {args.predictor_budget:,} predictor calls (distinct channel "
        f"configurations predicted) and {args.cost_budget:,} cost-model evaluations, held "
        f"exactly; {args.seeds} seeds per experiment and method. Designs are ranked by predicted "
        "net accuracy % (the source predictor's validation accuracy at the source's training "
        "budget minus the predicted crossbar loss) and EDAP. Per method, the headline design is "
        "the lowest-EDAP feasible design at a predicted net accuracy no lower than VGG16's (nsga2, "
        f"random) or the design xpert_gd returns. {headline} Per-run rows: "
        "`compare_methods_runs.csv`; per training: `compare_methods_verified.csv`.",
        "",
        *sections,
        "## Predicted, per seed",
        "",
        "`hypervolume`: of the feasible predicted front (normalised, fixed reference). "
        "`headline_edap_reduction_x`: VGG16's EDAP over the headline design's (predicted "
        "accuracy), `none` where a seed has none; `seeds_with_design`: the seeds that have one "
        "(for xpert_gd, that returned a design). `best_net_pct`: the highest predicted net % of "
        "a feasible design. `iso_edap_reduction_x`: the reduction of the lowest-EDAP feasible "
        "design at VGG16's predicted net among all the designs the method evaluated (for nsga2 "
        "and random, the headline). `predictor_calls`, `cost_model_evals`: the most any seed "
        "used / the budget.",
        "",
        markdown_table(summarise(rows)),
        "",
        "## xpert_gd: what it returned and why",
        "",
        *outcome_lines(rows),
        "",
        "![fronts](compare_methods.png)",
        "",
    ])
    print(text)
    if args.out_dir.resolve() == RESULTS.resolve() and not args.no_verify:
        replace_section(REPO / "README.md", README_SECTION,
                        [*readme_rows(rows, tables), "", *published_rows(published)])
    return 0


if __name__ == "__main__":
    sys.exit(main())

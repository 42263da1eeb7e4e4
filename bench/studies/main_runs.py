"""The README's main runs, run as a user runs them, and what they found.

    python bench/studies/main_runs.py [--data ../shared/datasets] [--out DIR]

Runs, each as a subprocess ``python -m xpert_evo ...`` with its own ``hydra.run.dir`` under
``--out`` (a temporary directory by default) and ``XPERT_EVO_CACHE`` set to ``--cache``:

* ``default``: ``python -m xpert_evo`` (no experiment);
* ``cifar10``: ``python -m xpert_evo +experiment=cifar10 data.root=DATA``;
* ``tinyimagenet``: ``python -m xpert_evo +experiment=tinyimagenet data.root=DATA``;
* ``xpert_cifar10``, ``xpert_tinyimagenet``: XPert's own setting (``+experiment=xpert_*``).

Each run is one seed (seed 0). Writes ``docs/results/main_runs.md`` and ``.csv`` (stamped): per
run the command, wall time, designs evaluated, front size, final hypervolume, the knee's and the
iso-accuracy design's EDAP reduction against VGG16 with their accuracy and where that accuracy
came from, read back from the run's ``run.json``, ``pareto.csv`` and ``history.csv``; verified
runs' trainings (predicted beside measured crossbar loss) go to ``main_runs_verified.csv``.
Copies the ``cifar10`` run's ``pareto.png`` to ``docs/pareto_cifar10.png``. A report of all five
runs under the shipped stem also rewrites the README's results table and the findings under it
(`readme_rows`, `readme_findings`), stamped, between its ``<!-- main_runs.py: begin ... -->`` and
``<!-- main_runs.py: end -->`` lines.

With ``--verify-seeds N`` (N > 0) the runs named by ``--verify-runs`` end with their verification
(``verify.roles=[knee,iso_accuracy] verify.seeds=N``, docs/verification.md): their role designs
and VGG16 are trained at N seeds at the run's source budget and evaluated on the crossbar, and
the table shows each role's predicted net accuracy beside the measured one (seed mean ± std), the
paired test of the iso-accuracy design against VGG16, and, over all verified role designs, the
mean signed error predicted minus measured: the winner's-curse bias. Trainings go to the
ground-truth table of ``--cache`` (pass a lasting folder: a rerun retrains nothing measured).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pandas as pd

from xpert_evo.report import markdown_table
from xpert_evo.training.verification import BASELINE, paired_shortfall

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DOCS, REPO, RESULTS, replace_section, write_stamped  # noqa: E402

FROM = {
    "predicted": "predicted (source model)",
    "trained": "measured (trained)",
    "proxy": "proxy score",
    "surrogate": "proxy score (surrogate)",
}
"""`accuracy_from` values of pareto.csv and what they mean."""


STEM = "main_runs"
"""Name of the results files: ``<stem>.md``, ``<stem>.csv`` and ``<stem>_verified.csv`` (every
verified training of the runs, `verified_trainings`)."""

ROLES: tuple[str, ...] = ("knee", "iso_accuracy")
"""The role designs the table reports (and verifies)."""


RUNS: tuple[str, ...] = ("default", "cifar10", "tinyimagenet", "xpert_cifar10",
                         "xpert_tinyimagenet")
"""The main runs, in order."""


def runs(data: str, verify: tuple[str, ...] = (), seeds: int = 0,
         crossbar_images: int | None = None, jobs: int = 1,
         only: tuple[str, ...] = RUNS, overrides: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Run name -> the arguments after ``python -m xpert_evo``, for the runs in `only`, each
    with `overrides` (Hydra ``key=value``) after its experiment; runs named in `verify` end with
    the verification of their `ROLES` at `seeds` seeds (`crossbar_images` test images each,
    `jobs` trainings at once)."""
    plan = {}
    for name in (r for r in RUNS if r in only):
        verified = name in verify and seeds > 0
        args = [*([] if name == "default" else [f"+experiment={name}"]), *overrides]
        args += [f"data.root={data}"] if name != "default" or verified else []
        if verified:
            images = "null" if crossbar_images is None else crossbar_images
            args += [f"verify.roles=[{','.join(ROLES)}]", f"verify.seeds={seeds}",
                     f"verify.test_images={images}", f"verify.n_jobs={jobs}"]
        plan[name] = args
    return plan


def role_row(pareto: pd.DataFrame, role: str) -> pd.Series | None:
    """The front design holding ``role`` (roles may be joined with '+'), or None."""
    has = pareto["role"].fillna("").astype(str).str.split("+").apply(lambda r: role in r)
    return pareto[has].iloc[0] if has.any() else None


def summarise(name: str, args: list[str], run_dir: Path, wall_s: float, rc: int) -> dict[str, Any]:
    """One row of the results table, read from the run directory."""
    row: dict[str, Any] = {
        "run": name,
        "command": " ".join(["python -m xpert_evo", *args]),
        "exit_code": rc,
        "wall_s": round(wall_s, 1),
    }
    if rc != 0:
        return row
    meta = json.loads((run_dir / "run.json").read_text())
    pareto = pd.read_csv(run_dir / "pareto.csv")
    history = pd.read_csv(run_dir / "history.csv")
    acc = meta["accuracy_column"]
    row.update(
        seed=meta["seed"],
        designs_evaluated=int(meta["n_evals"]),
        front_size=len(pareto),
        final_hv=round(float(history["hypervolume"].iloc[-1]), 4),
        accuracy=meta["accuracy_label"],
        accuracy_source=meta["accuracy_source"],
        vgg16_accuracy=round(float(meta["baseline"]["accuracy"]), 2),
        vgg16_edap=f"{meta['baseline']['edap']:.4g}",
        vgg16_area_mm2=round(float(meta["baseline"]["area_mm2"]), 1),
        area_budget_mm2=float(meta["config"]["constraints"]["area_mm2"]),
    )
    if not meta["accuracy_is_percent"]:
        row["true_proxy_calls"] = int(meta["n_true_evals"])
    for role in ROLES:
        design = role_row(pareto, role)
        if design is None:
            continue
        row[f"{role}_edap_reduction_x"] = round(float(design["edap_reduction_x"]), 2)
        row[f"{role}_accuracy"] = round(float(design[acc]), 2)
        row[f"{role}_accuracy_from"] = FROM.get(design["accuracy_from"], design["accuracy_from"])
        row[f"{role}_area_mm2"] = round(float(design["area_mm2"]), 1)
    row["smallest_front_area_mm2"] = round(float(pareto["area_mm2"].min()), 1)
    if (run_dir / "verified.csv").exists():
        row.update(measured(run_dir))
    return row


def _mean_std(mean: float, std: float) -> str:
    return f"{mean:.2f}" + ("" if pd.isna(std) else f" ± {std:.2f}")


def measured(run_dir: Path) -> dict[str, Any]:
    """The verification of a run: per role and VGG16 the predicted and measured net accuracy
    (validation minus the measured crossbar loss, seed mean ± std), the error predicted minus
    measured, and the paired test of the iso-accuracy design against VGG16 (crossbar %)."""
    verified = pd.read_csv(run_dir / "verified.csv").set_index("design")
    trainings = pd.read_csv(run_dir / "verified_trainings.csv")
    row: dict[str, Any] = {"verified_seeds": int(verified["seeds"].max())}
    for name, key in ((BASELINE, "vgg16"), *((r, r) for r in ROLES)):
        if name not in verified.index:
            continue
        design = verified.loc[name]
        row[f"{key}_predicted_net_pct"] = round(float(design["predicted_net_pct"]), 2)
        row[f"{key}_measured_net_pct"] = _mean_std(design["measured_net_pct"],
                                                   design["measured_net_pct_std"])
        row[f"{key}_measured_crossbar_pct"] = _mean_std(design["measured_crossbar_pct"],
                                                        design["measured_crossbar_pct_std"])
        row[f"{key}_predicted_minus_measured_pp"] = round(
            float(design["predicted_minus_measured_pp"]), 2)
        if {"predicted_loss_pp", "measured_loss_pp"} <= set(verified.columns):
            row[f"{key}_predicted_loss_pp"] = round(float(design["predicted_loss_pp"]), 2)
            row[f"{key}_measured_loss_pp"] = _mean_std(design["measured_loss_pp"],
                                                       design["measured_loss_pp_std"])
    if "iso_accuracy" in verified.index and BASELINE in verified.index:
        test = paired_shortfall(trainings, "iso_accuracy")
        row["iso_accuracy_minus_vgg16_crossbar_pp"] = (
            f"{test.mean_diff_pp:+.2f}" + ("" if pd.isna(test.std_diff_pp)
                                           else f" ± {test.std_diff_pp:.2f}"))
        row["iso_accuracy_falls_short_p"] = round(test.p_value, 3)
        row["iso_accuracy_holds"] = "no" if test.falls_short else "yes"
    return row


def verified_trainings(name: str, run_dir: Path) -> pd.DataFrame:
    """Every verified training of a run, one row per design and seed: its channels and bits,
    float and crossbar accuracy on the same test images and the measured crossbar loss
    (``loss_pp``) beside the loss the run's penalty predicted (``predicted_loss_pp``), with the
    run's data set, source fidelity, weight mapping and penalty artifact. Empty for a run that
    was not verified. `bench/calibrate/layer_penalty.py` scores its penalty on these rows:
    designs a search picked, none of them a precision-table network."""
    if not (run_dir / "verified.csv").exists():
        return pd.DataFrame()
    meta = json.loads((run_dir / "run.json").read_text())
    cfg = meta["config"]
    penalty = cfg.get("penalty") or {}
    designs = pd.read_csv(run_dir / "verified.csv")[["design", "input_bits", "adc_bits",
                                                      "predicted_loss_pp"]]
    rows = pd.read_csv(run_dir / "verified_trainings.csv").merge(designs, on="design")
    return rows.assign(run=name, dataset=cfg["data"]["dataset"],
                       fidelity=meta["verified"]["budget"].split()[0],
                       weight_encoding=cfg["hardware"]["weight_encoding"],
                       penalty=penalty.get("fitted") or penalty.get("model") or "none")


def role_errors(rows: list[dict[str, Any]]) -> pd.Series:
    """Predicted minus measured net accuracy (pp) of every verified role design over all runs."""
    return pd.Series([r[f"{role}_predicted_minus_measured_pp"] for r in rows for role in ROLES
                      if f"{role}_predicted_minus_measured_pp" in r], dtype=float)


def bias(rows: list[dict[str, Any]]) -> str:
    """The winner's-curse bias: mean signed error predicted minus measured of the verified role
    designs over all runs, with its spread; empty without verified runs."""
    errors = role_errors(rows)
    if errors.empty:
        return ""
    spread = f" (std {errors.std(ddof=1):.2f} pp)" if len(errors) > 1 else ""
    mean = errors.mean()
    reading = ("read a front design's predicted accuracy as that much too high" if mean > 0 else
               "no upward bias shows at this budget: these front designs measured at or above "
               "their predictions on average")
    return (f"Winner's-curse bias: over the {len(errors)} verified role designs of "
            f"{sum('verified_seeds' in r for r in rows)} runs, predicted minus measured net "
            f"accuracy is {mean:+.2f} pp on average{spread}. Front designs are picked because "
            f"their predictions are high, which biases the predictions upward; {reading}.")


README_SECTION = "main_runs.py"
"""Name of the README's results this script rewrites (`readme_rows`, `readme_findings`) between
the markers ``<!-- main_runs.py: begin ... -->`` and ``<!-- main_runs.py: end -->``."""


def _role_cell(row: dict[str, Any], role: str) -> str:
    """A role design's README cell: EDAP reduction, predicted accuracy and, when verified, the
    measured one (VGG16's beside the iso-accuracy design's)."""
    if pd.isna(row.get(f"{role}_edap_reduction_x", math.nan)):
        return (f"none under the {row['area_budget_mm2']:g} mm² budget" if role == "iso_accuracy"
                else "none")
    head = f"{row[f'{role}_edap_reduction_x']:.2f}x"
    if pd.isna(row.get(f"{role}_measured_net_pct", math.nan)):
        vgg16 = f" (VGG16 {row['vgg16_accuracy']:.2f} %)" if role == "knee" else ""
        return f"{head}, {row[f'{role}_accuracy']:.2f} %{vgg16}, not verified"
    cell = (f"{head}, {row[f'{role}_predicted_net_pct']:.2f} % / "
            f"{row[f'{role}_measured_net_pct']} %")
    return cell + (f"; VGG16 {row['vgg16_measured_net_pct']} %" if role == "iso_accuracy" else "")


def readme_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The README's results table of the runs (`README_SECTION`): per run the front, its
    hypervolume, and the knee and iso-accuracy designs, predicted / measured."""
    lines = ["| run | front | hypervolume | knee: EDAP reduction vs VGG16, accuracy predicted / "
             "measured | lowest EDAP at >= VGG16's predicted accuracy: predicted / measured, "
             "VGG16 measured |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        name = "python -m xpert_evo" if row["run"] == "default" else f"+experiment={row['run']}"
        if row["exit_code"] != 0:
            lines.append(f"| `{name}` | failed (exit {row['exit_code']}) | - | - | - |")
            continue
        lines.append(f"| `{name}` | {row['front_size']} designs | {row['final_hv']:.4f} | "
                     f"{_role_cell(row, 'knee')} | {_role_cell(row, 'iso_accuracy')} |")
    return lines


def readme_findings(rows: list[dict[str, Any]]) -> list[str]:
    """The README's sentences under its results table: the iso-accuracy designs against VGG16 on
    the crossbar (paired by seed) and the winner's-curse bias over the verified role designs;
    empty without verified runs."""
    tested = [r for r in rows if "iso_accuracy_holds" in r]
    errors = role_errors(rows)
    if not tested or errors.empty:
        return []
    failed = [r["run"] for r in tested if r["iso_accuracy_holds"] != "yes"]
    diffs = ", ".join(f"{r['iso_accuracy_minus_vgg16_crossbar_pp']} pp ({r['run']})"
                      for r in tested)
    p_values = ", ".join(f"{r['iso_accuracy_falls_short_p']:.3f}" for r in tested)
    claim = ("**The iso-accuracy claims hold when measured**" if not failed else
             f"**The iso-accuracy claim fails when measured in {', '.join(failed)}**")
    verdict = ("so none falls short beyond seed noise" if not failed else
               "where p < 0.05 marks a design below VGG16 beyond seed noise")
    n = len(errors)
    std = errors.std(ddof=1) if n > 1 else math.nan
    within = n > 1 and abs(errors.mean()) <= 2 * std / math.sqrt(n)
    curse = ("**The winner's curse is within noise at this budget**" if within else
             f"**Front predictions are biased by {errors.mean():+.2f} pp**")
    spread = f" (std {std:.2f} pp)" if n > 1 else ""
    return textwrap.wrap(
        f"{claim}: on the crossbar, paired by seed against VGG16, the iso-accuracy designs "
        f"differ by {diffs} (one-sided p = {p_values}), {verdict}. {curse}: over the {n} "
        f"verified role designs, predicted minus measured net accuracy is "
        f"{errors.mean():+.2f} pp on average{spread}, where a front picked for its high "
        "predictions is expected to measure below them.", width=100, break_on_hyphens=False)


def write(rows: list[dict[str, Any]], extra: str, trainings: pd.DataFrame,
          stem: str = STEM, note: str = "") -> None:
    """docs/results/<stem>.csv and .md (`note` first), and the verified trainings
    (`verified_trainings`) in <stem>_verified.csv; with the shipped stem and every run, the
    README's results table and findings too (`readme_rows`, `readme_findings`)."""
    table = pd.DataFrame(rows)
    if stem == STEM and [r["run"] for r in rows] == list(RUNS):
        replace_section(REPO / "README.md", README_SECTION,
                        [*readme_rows(rows), "", *readme_findings(rows)], extra)
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / f"{stem}.csv", index=False)
    trainings.to_csv(RESULTS / f"{stem}_verified.csv", index=False, float_format="%.4f")
    write_stamped(RESULTS / f"{stem}.md", [
        "",
        "# Main runs",
        "",
        *([note, ""] if note else []),
        "Each run is one seed (seed 0): no spread is measured here (see search_quality.md and "
        "sweep.md for seeds). `wall_s` is the whole command, start-up and report included, on "
        "the machine of the stamp. EDAP and area come from the analytic cost model "
        "(`docs/cost_model.md`): predicted, never measured. The accuracy column says what the "
        "accuracy is: `predicted (source model)` = validation accuracy in % at the source's "
        "training budget predicted by the model fitted on stand-alone trainings "
        "(`docs/accuracy.md`); `proxy score` = a zero-cost proxy score, not a %. "
        "`knee`: the front design farthest from the line between the front's ends; "
        "`iso_accuracy`: the lowest-EDAP front design at an accuracy no lower than VGG16's "
        "(same scale, VGG16's accuracy obtained the same way; `-`: no front design reaches it). "
        "`*_edap_reduction_x` = VGG16 EDAP / design EDAP (EDAP in pJ ns mm2). Verified runs "
        "(`verified_seeds`) add, per role and VGG16, the predicted net accuracy beside the "
        "measured one: validation accuracy of stand-alone trainings at the run's source budget "
        "minus the loss measured on the crossbar, seed mean ± std; `*_measured_crossbar_pct` is "
        "the accuracy on the crossbar itself; `*_predicted_loss_pp` and `*_measured_loss_pp` "
        "the crossbar loss the run's penalty predicted and the one measured (float minus "
        f"crossbar on the same test images; every training in {stem}_verified.csv); "
        "`iso_accuracy_holds`: the one-sided paired t-test "
        "(by seed, crossbar %) does not find the iso-accuracy design below VGG16 at p < 0.05.",
        "",
        bias(rows),
        "",
        markdown_table(table.T.reset_index().rename(columns={"index": "field"})
                       .set_axis(["field", *table["run"]], axis=1).iloc[1:]),
        "",
    ], extra)


def all_trainings(plan: dict[str, list[str]], out: Path) -> pd.DataFrame:
    """The verified trainings of every run of `plan` under `out`, one table."""
    frames = [verified_trainings(name, out / name) for name in plan]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def recorded(run_dir: Path) -> tuple[float, int]:
    """Wall time (s, the run itself without the interpreter's start-up) and exit code (0 or 1)
    of an earlier run, from its ``status.json``.

    Raises:
        FileNotFoundError: the run did not get far enough to write one.
    """
    status = json.loads((run_dir / "status.json").read_text())
    return float(status["wall_s"]), int(status["status"] != "ok")


def plan_of(args: argparse.Namespace) -> dict[str, list[str]]:
    """The plan (`runs`) the command-line arguments name."""
    return runs(args.data, tuple(args.verify_runs), args.verify_seeds, args.crossbar_images,
                args.verify_jobs, tuple(args.runs), tuple(args.override))


def report_only(args: argparse.Namespace) -> int:
    """Rewrite the results from the run directories of an earlier call (same plan arguments)."""
    plan = plan_of(args)
    rows = [summarise(name, run_args, args.out / name, *recorded(args.out / name))
            for name, run_args in plan.items()]
    cold = "fresh cache" if args.cache is None else f"cache {args.cache}"
    write(rows, f"XPERT_EVO_CACHE: {cold}, runs one after another; rewritten from the run "
                f"directories in {args.out}", all_trainings(plan, args.out), args.stem,
          args.note)
    return int(any(r["exit_code"] for r in rows))


def main(argv: list[str] | None = None) -> int:
    """Run the plan, write the results; returns 1 when a run failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/datasets", help="data.root of the data runs")
    parser.add_argument("--out", type=Path, help="keep the run directories here")
    parser.add_argument("--cache", type=Path, help="XPERT_EVO_CACHE (default: a fresh temp dir)")
    parser.add_argument("--verify-seeds", type=int, default=0,
                        help="verify the role designs of --verify-runs at this many seeds (0: no)")
    parser.add_argument("--verify-runs", nargs="+", default=["default", "cifar10", "tinyimagenet"])
    parser.add_argument("--crossbar-images", type=int, default=None,
                        help="crossbar test images per verified design (default: the whole split)")
    parser.add_argument("--verify-jobs", type=int, default=2, help="trainings at once")
    parser.add_argument("--report-only", action="store_true",
                        help="rerun nothing: rewrite the results from the run directories in "
                             "--out (wall times from each run's status.json)")
    parser.add_argument("--note", default="", help="a paragraph put first in the report (e.g. "
                        "which default the runs were made with)")
    parser.add_argument("--override", nargs="+", default=[], help="Hydra overrides given to "
                        "every run, e.g. penalty=layer_cifar10_offset")
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS),
                        help="only these runs (e.g. the ones a change of default affects)")
    parser.add_argument("--stem", default=STEM, help="name of the results files in docs/results "
                        "(e.g. for runs made with another default than the shipped one's)")
    args = parser.parse_args(argv)
    if args.report_only:
        if args.out is None:
            parser.error("--report-only needs --out, the folder of the earlier runs")
        return report_only(args)

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        cache = args.cache or Path(tmp) / "cache"
        env = {**os.environ, "XPERT_EVO_CACHE": str(cache)}
        rows = []
        plan = plan_of(args)
        for name, run_args in plan.items():
            run_dir = out / name
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "xpert_evo", *run_args, f"hydra.run.dir={run_dir}"],
                cwd=REPO, env=env, check=False,
            )
            rows.append(summarise(name, run_args, run_dir, time.perf_counter() - start,
                                  done.returncode))
            print(json.dumps(rows[-1]), flush=True)
            if name == "cifar10" and done.returncode == 0 and args.stem == STEM:
                shutil.copyfile(run_dir / "pareto.png", DOCS / "pareto_cifar10.png")
        cold = "fresh cache" if args.cache is None else f"cache {args.cache}"
        write(rows, f"XPERT_EVO_CACHE: {cold}, runs one after another",
              all_trainings(plan, out), args.stem, args.note)
    return int(any(r["exit_code"] for r in rows))


if __name__ == "__main__":
    sys.exit(main())

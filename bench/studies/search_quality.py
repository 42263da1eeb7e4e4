"""NSGA-II vs random search at equal evaluation budgets, over several seeds.

    python bench/studies/search_quality.py [--seeds 5] [--pop-size 100] [--n-gen 100]
        [--accuracy standin]

Both algorithms run the real search machinery (space, cost model, constraints, archive-wide
duplicate elimination, the fixed-reference hypervolume) on the default config. Accuracy:

* ``standin`` (default): `tests/standin.py`'s `CapacityStandIn`, a cheap deterministic
  synthetic score of the channel widths (NOT an accuracy model), scored exactly for every design
  (no surrogate), so the comparison measures the search algorithm alone and runs in minutes.
* ``params``: the accuracy package's parameter-count proxy (``accuracy=params``), also exact.

Prints and writes to docs/results/search_quality.md (stamped) and .csv, per algorithm, the final
hypervolume and the best EDAP reduction vs VGG16 among front designs whose accuracy is no worse
than VGG16's: mean ± std over seeds, the median and every seed's value.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xpert_evo.report import markdown_table
from xpert_evo.search import HW_METRICS, SearchResult, SearchRun, build_search

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from standin import CapacityStandIn  # noqa: E402  (the tests' stand-in, shared with the bench)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import RESULTS, app_config, write_stamped  # noqa: E402

EDAP = HW_METRICS.index("edap")


def best_iso_accuracy_reduction(res: SearchResult) -> float:
    """Largest baseline EDAP / EDAP of front designs at accuracy >= the baseline's (nan: none)."""
    front = res.front
    ok = front[res.archive.net[front] >= res.baseline_accuracy.net[0]]
    if not len(ok):
        return float("nan")
    return float(res.baseline_hw[EDAP] / res.archive.hw[ok, EDAP].min())


def run_once(algorithm: str, seed: int, args: argparse.Namespace, out: Path) -> SearchResult:
    """One search of ``args.pop_size * args.n_gen`` evaluations."""
    overrides = [
        f"algorithm={algorithm}",
        f"algorithm.pop_size={args.pop_size}",
        f"algorithm.n_gen={args.n_gen}",
        f"seed={seed}",
        "accuracy.surrogate=null",
    ]
    if args.accuracy == "params":
        overrides += ["accuracy=params", "accuracy.surrogate=null", f"accuracy.cache_dir={out}"]
    cfg = app_config(overrides)
    estimator = CapacityStandIn() if args.accuracy == "standin" else None
    setup = build_search(cfg, estimator=estimator)
    run_dir = out / f"{algorithm}_{seed}"
    run_dir.mkdir(parents=True)
    return SearchRun(setup, run_dir).start().run()


def spread(values: np.ndarray, digits: int) -> dict[str, str]:
    """Mean ± std (ddof 1), median and the per-seed values of one metric, as table cells; seeds
    without a value (no design at >= VGG16's score) are "none" and left out of the statistics."""
    ok = values[np.isfinite(values)]
    std = f"{ok.std(ddof=1):.{digits}f}" if len(ok) > 1 else "-"
    return {
        "seeds with a value": f"{len(ok)}/{len(values)}",
        "mean ± std": f"{ok.mean():.{digits}f} ± {std}" if len(ok) else "-",
        "median": f"{np.median(ok):.{digits}f}" if len(ok) else "-",
        "per seed": ", ".join(f"{v:.{digits}f}" if np.isfinite(v) else "none" for v in values),
    }


def report(rows: dict[str, list[tuple[float, float, float]]], args: argparse.Namespace,
           wins: int, better: bool) -> str:
    """Write docs/results/search_quality.md and .csv; return the markdown."""
    table, per_seed = [], []
    for algorithm, values in rows.items():
        a = np.asarray(values)
        for metric, col, digits in (("final hypervolume", 0, 4),
                                    ("best EDAP reduction at >= VGG16 score (x)", 1, 2)):
            table.append({"algorithm": algorithm, "metric": metric, **spread(a[:, col], digits)})
        per_seed += [{"algorithm": algorithm, "seed": seed, "final_hv": hv,
                      "best_iso_edap_reduction_x": red, "wall_s": sec}
                     for seed, (hv, red, sec) in enumerate(values)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(per_seed).to_csv(RESULTS / "search_quality.csv", index=False)
    return write_stamped(RESULTS / "search_quality.md", [
        "",
        "# Search quality: NSGA-II vs random search",
        "",
        f"Accuracy: `{args.accuracy}` "
        + ("(`tests/standin.py`'s CapacityStandIn: a synthetic score of the channel widths, not an "
           "accuracy, scored exactly for every design, so only the algorithm differs)"
           if args.accuracy == "standin" else "(parameter count, exact)")
        + f"; {args.pop_size} x {args.n_gen} = {args.pop_size * args.n_gen} evaluations per run; "
        f"seeds 0..{args.seeds - 1}; default config otherwise (cost model, area budget, "
        "precision bound). Hypervolume: normalised objectives, fixed reference (can exceed 1 "
        "when designs beat the widest uniform network's score). Per-run rows: "
        "`search_quality.csv`.",
        "",
        markdown_table(pd.DataFrame(table)),
        "",
        f"NSGA-II beats random search on hypervolume in {wins}/{args.seeds} seeds "
        f"({'yes' if better else 'NO'} on the mean). Mean wall time per run: "
        + ", ".join(f"{alg} {np.mean([v[2] for v in vals]):.1f} s" for alg, vals in rows.items())
        + ".",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns 0 when NSGA-II beats random on mean HV."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pop-size", type=int, default=100)
    parser.add_argument("--n-gen", type=int, default=100)
    parser.add_argument("--accuracy", choices=["standin", "params"], default="standin")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    rows: dict[str, list[tuple[float, float, float]]] = {"nsga2": [], "random": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for algorithm in rows:
                start = time.perf_counter()
                res = run_once(algorithm, seed, args, Path(tmp))
                rows[algorithm].append(
                    (
                        float(res.history["hypervolume"].iloc[-1]),
                        best_iso_accuracy_reduction(res),
                        time.perf_counter() - start,
                    )
                )
                hv, red, sec = rows[algorithm][-1]
                print(f"seed {seed} {algorithm:6s} HV {hv:.4f}  best EDAP reduction at "
                      f">= VGG16 accuracy {red:.2f}x  ({res.n_evals} evals, {sec:.1f} s)")

    nsga, rand = np.asarray(rows["nsga2"]), np.asarray(rows["random"])
    wins = int((nsga[:, 0] > rand[:, 0]).sum())
    better = nsga[:, 0].mean() > rand[:, 0].mean()
    text = report(rows, args, wins, better)
    print(text)
    return 0 if better else 1


if __name__ == "__main__":
    sys.exit(main())

"""NSGA-II vs random search at equal evaluation budgets, over several seeds.

    python bench/search_quality.py [--seeds 5] [--pop-size 100] [--n-gen 100] [--accuracy standin]

Both algorithms run the real search machinery (space, cost model, constraints, archive-wide
duplicate elimination, the fixed-reference hypervolume) on the default config. Accuracy:

* ``standin`` (default): `tests/standin.py`'s `CapacityStandIn`, a cheap deterministic
  synthetic score of the channel widths (NOT an accuracy model), scored exactly for every design
  (no surrogate), so the comparison measures the search algorithm alone and runs in minutes.
* ``params``: the accuracy package's parameter-count proxy (``accuracy=params``), also exact.

Prints per algorithm the final hypervolume (mean, std over seeds) and the best EDAP reduction vs
VGG16 among front designs whose accuracy is no worse than VGG16's.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from xpert_evo.app import CONF_DIR
from xpert_evo.search import HW_METRICS, SearchResult, SearchRun, build_search

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from standin import CapacityStandIn  # noqa: E402  (the tests' stand-in, shared with the bench)

EDAP = HW_METRICS.index("edap")


def best_iso_accuracy_reduction(res: SearchResult) -> float:
    """Largest baseline EDAP / EDAP of front designs at accuracy >= the baseline's (nan: none)."""
    front = res.front
    ok = front[res.archive.accuracy[front] >= res.baseline_accuracy]
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
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    estimator = CapacityStandIn() if args.accuracy == "standin" else None
    setup = build_search(cfg, estimator=estimator)
    run_dir = out / f"{algorithm}_{seed}"
    run_dir.mkdir(parents=True)
    return SearchRun(setup, run_dir).start().run()


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

    print()
    print(f"accuracy: {args.accuracy}; budget {args.pop_size} x {args.n_gen} = "
          f"{args.pop_size * args.n_gen} evaluations per run; {args.seeds} seeds")
    print("| algorithm | final HV mean | HV std | EDAP reduction x mean | std | s/run |")
    print("| --- | --- | --- | --- | --- | --- |")
    for algorithm, values in rows.items():
        a = np.asarray(values)
        print(f"| {algorithm} | {a[:, 0].mean():.4f} | {a[:, 0].std(ddof=1):.4f} | "
              f"{np.nanmean(a[:, 1]):.2f} | {np.nanstd(a[:, 1], ddof=1):.2f} | "
              f"{a[:, 2].mean():.1f} |")
    nsga, rand = np.asarray(rows["nsga2"]), np.asarray(rows["random"])
    wins = int((nsga[:, 0] > rand[:, 0]).sum())
    better = nsga[:, 0].mean() > rand[:, 0].mean()
    print(f"NSGA-II beats random search on hypervolume in {wins}/{args.seeds} seeds "
          f"({'yes' if better else 'NO'} on the mean)")
    return 0 if better else 1


if __name__ == "__main__":
    sys.exit(main())

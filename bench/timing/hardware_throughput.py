"""Genome evaluations per second and peak memory of the hardware cost model, on one core.

Run: python bench/timing/hardware_throughput.py   (writes docs/results/hardware_throughput.md)

Prints, for batches of 1, 100, 10,000 and 100,000 random 13-layer genomes, the best-of-N wall
time per call, genomes per second and the peak memory the call allocates (tracemalloc, which
sees numpy's buffers), in two modes: `totals` (what the search calls: per-genome area, energy,
latency, EDAP, TOPS/W, TOPS/mm2) and `breakdown` (also every layer x component figure).
Targets: >= 1,000,000 genomes/s at batch 100,000, < 1 ms for one genome, peak memory linear in
the batch and < 2 GB at 100,000.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy loads its BLAS

import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from xpert_evo.hardware import CostModel, load_hardware_config  # noqa: E402
from xpert_evo.report.provenance import stamp  # noqa: E402
from xpert_evo.space import SearchSpace  # noqa: E402
from xpert_evo.space.backbone import Backbone  # noqa: E402
from xpert_evo.space.genome import Genomes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import REPO, RESULTS, load_conf  # noqa: E402

RESULT = RESULTS / "hardware_throughput.md"


def random_genomes(n: int, n_layers: int, seed: int = 0) -> Genomes:
    """n genomes drawn uniformly from the default search space (conf/space/default.yaml)."""
    space = SearchSpace.from_config(load_conf("space"), n_layers)
    return space.decode(space.random(n, np.random.default_rng(seed)))


def best_seconds(call: Callable[..., object], args: tuple, repeats: int,
                 **kwargs: object) -> float:
    """The shortest wall time in seconds of `repeats` calls ``call(*args, **kwargs)``."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        call(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return float(best)


def main() -> None:
    """Time `CostModel.evaluate` and print one line per batch size."""
    model = CostModel(load_hardware_config(), Backbone())
    threads = os.environ["OMP_NUM_THREADS"]
    lines = [
        f"<!-- {stamp(f'OMP_NUM_THREADS={threads}')} -->",
        "",
        "```",
        f"{'mode':>9} {'batch':>8} {'s/call':>10} {'genomes/s':>12} {'peak MB':>9} "
        f"{'bytes/genome':>13}",
    ]
    print(lines[-1])
    for breakdown in (False, True):
        mode = "breakdown" if breakdown else "totals"
        for batch in (1, 100, 10_000, 100_000):
            genomes = random_genomes(batch, model.backbone.n_conv)
            best = best_seconds(model.evaluate, (genomes,), max(5, min(500, 500_000 // batch)),
                                breakdown=breakdown)
            tracemalloc.start()
            model.evaluate(genomes, breakdown=breakdown)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            lines.append(
                f"{mode:>9} {batch:>8} {best:>10.2e} {batch / best:>12,.0f} "
                f"{peak / 2**20:>9.1f} {peak / batch:>13,.0f}"
            )
            print(lines[-1])
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text("\n".join([*lines, "```", ""]))
    print(f"wrote {RESULT.relative_to(REPO)}")


if __name__ == "__main__":
    main()

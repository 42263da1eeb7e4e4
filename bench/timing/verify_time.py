"""How long verification takes, and that a killed one resumes without retraining.

Run: python bench/timing/verify_time.py [--seeds 3] [--n-jobs 2] [--kill-after-rows 5]
     (writes docs/results/verify_time.md)

Issue 27's target: verifying 4 role designs plus the baseline at 3 seeds takes at most 30 min on
2 CPU cores at CIFAR-10's low fidelity (the packaged source's budget). As a user runs it:

1. ``python -m xpert_evo`` (the default run, seed 0) into a temporary run directory;
2. ``python -m xpert_evo.verify run_dir=RUN verify.roles=[knee,iso_accuracy,best_accuracy,
   best_edap] verify.seeds=3 verify.n_jobs=2`` with a fresh cache (so no checkpoint or decoded
   split is reused: the timing includes decoding the data set) and a fresh ground-truth table;
   it is killed with SIGKILL (its whole process group) once ``--kill-after-rows`` trainings are
   in the table;
3. the same command again: it must train only what the table lacks; timed;
4. once more: it must train nothing.

The verification's time is the killed part plus the resumed part (the work lost at the kill, the
trainings in flight, is counted, as a user would pay it). Every training here also evaluates its
network on the crossbar on the whole test split (10,000 images).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import DATASETS, REPO, RESULTS, write_stamped  # noqa: E402

ROLES = "[knee,iso_accuracy,best_accuracy,best_edap]"
TARGET_S = 30 * 60
"""Issue 27's acceptance: at most 30 minutes on 2 CPU cores."""


def rows(table: Path) -> int:
    """Trainings in a ground-truth table (0 while it does not exist)."""
    return len(pd.read_csv(table)) if table.is_file() else 0


def verify(run_dir: Path, cache: Path, table: Path, args: argparse.Namespace,
           kill_at: int | None = None) -> tuple[float, int, bool]:
    """Run verify once; with `kill_at`, SIGKILL it once the table holds that many rows.
    Returns (seconds, trainings it added, whether it was killed)."""
    before = rows(table)
    command = [sys.executable, "-m", "xpert_evo.verify", f"run_dir={run_dir}",
               f"verify.roles={ROLES}", f"verify.seeds={args.seeds}",
               f"verify.n_jobs={args.n_jobs}", f"cache_dir={cache}",
               f"ground_truth.path={table}", f"data.root={args.data_root}",
               f"hydra.run.dir={cache / 'verify-logs' / str(time.time_ns())}"]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, start_new_session=True)
    killed = False
    while proc.poll() is None:
        if kill_at is not None and rows(table) >= kill_at:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = True
            break
        time.sleep(1.0)
    seconds = time.perf_counter() - start
    if not killed and proc.returncode != 0:
        raise RuntimeError(f"verify failed with exit code {proc.returncode}")
    added = rows(table) - before
    print(f"verify {'killed' if killed else 'finished'} after {seconds:.0f} s, "
          f"{added} trainings added", flush=True)
    return seconds, added, killed


def main(argv: list[str] | None = None) -> int:
    """Run the plan; write docs/results/verify_time.md; exit 1 when a check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--kill-after-rows", type=int, default=5)
    parser.add_argument("--data-root", default=str(DATASETS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="verify_time_") as tmp:
        run_dir, cache, table = Path(tmp) / "run", Path(tmp) / "cache", Path(tmp) / "gt.csv"
        subprocess.run([sys.executable, "-m", "xpert_evo", f"hydra.run.dir={run_dir}"],
                       cwd=REPO, check=True, env={**os.environ, "XPERT_EVO_CACHE": str(cache)})
        first_s, first_n, killed = verify(run_dir, cache, table, args, args.kill_after_rows)
        resumed_s, resumed_n, _ = verify(run_dir, cache, table, args)
        again_s, again_n, _ = verify(run_dir, cache, table, args)
        trainings = pd.read_csv(table)
        verified = pd.read_csv(run_dir / "verified.csv")
    expected = (len(ROLES.split(",")) + 1) * args.seeds
    total_s = first_s + resumed_s
    checks = {
        f"all {expected} trainings measured once": len(trainings) == expected
        and not trainings.duplicated(["channels", "seed"]).any(),
        "the killed run was killed mid-way": killed and 0 < first_n < expected,
        "the resumed run trained only what the table lacked": first_n + resumed_n == expected,
        "a third run trained nothing": again_n == 0,
        f"verification within {TARGET_S // 60} min": total_s <= TARGET_S,
    }
    table_rows = pd.DataFrame([
        {"step": "verify, killed (SIGKILL) once the table had rows", "wall_s": first_s,
         "trainings_added": first_n},
        {"step": "verify, resumed", "wall_s": resumed_s, "trainings_added": resumed_n},
        {"step": "verify, third run", "wall_s": again_s, "trainings_added": again_n},
    ])
    per_training = trainings["wall_s"].describe()[["mean", "min", "max"]]
    write_stamped(RESULTS / "verify_time.md", [
        "",
        "# Verification time (issue 27's target: <= 30 min on 2 CPU cores)",
        "",
        f"The default run's 4 role designs ({ROLES}) and VGG16 at {args.seeds} seeds, "
        f"{args.n_jobs} trainings at once, at the packaged source's budget (CIFAR-10's low "
        "fidelity), each training followed by its crossbar evaluation on the whole test split; "
        "fresh cache (the data set is decoded inside the timing) and a fresh ground-truth "
        "table. The first verify is killed with SIGKILL; the second resumes it.",
        "",
        table_rows.to_markdown(index=False, floatfmt=".0f"),
        "",
        f"**Verification time: {total_s / 60:.1f} min** (killed part + resumed part; "
        f"target {TARGET_S // 60} min). Per training (training and crossbar evaluation, one "
        f"of {args.n_jobs} processes): mean {per_training['mean']:.0f} s, min "
        f"{per_training['min']:.0f} s, max {per_training['max']:.0f} s.",
        "",
        *[f"- {'pass' if ok else 'FAIL'}: {name}" for name, ok in checks.items()],
        "",
        "Predicted against measured for these designs (`verified.csv` of the run):",
        "",
        verified[["design", "predicted_net_pct", "measured_net_pct", "measured_net_pct_std",
                  "predicted_minus_measured_pp"]].to_markdown(index=False, floatfmt=".2f"),
        "",
    ], f"load average {os.getloadavg()[0]:.1f} at the end")
    print((RESULTS / "verify_time.md").read_text())
    return int(not all(checks.values()))


if __name__ == "__main__":
    sys.exit(main())

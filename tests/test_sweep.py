"""Multirun sweeps: local parallel jobs (joblib), a real SLURM cluster, and their aggregation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from slurm_cluster import SlurmCluster, missing_reason

from xpert_evo.report.sweep import aggregate
from xpert_evo.report.sweep import main as compare_main

TINY = [
    "constraints.precision_loss_pp=null",
    "accuracy=params",
    "algorithm.pop_size=10",
    "algorithm.n_gen=2",
    "accuracy.budget.initial=12",
    "accuracy.budget.per_round=4",
    "accuracy.budget.rounds=1",
]


def sweep(tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> Path:
    """Run `python -m xpert_evo -m` with tiny budgets into tmp_path/sweep; return that dir."""
    out = tmp_path / "sweep"
    env = {**(env or os.environ), "XPERT_EVO_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "xpert_evo", "-m", *TINY, *args, f"hydra.sweep.dir={out}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_failed_job_is_reported_not_fatal_and_compare_reruns(tmp_path: Path) -> None:
    out = sweep(
        tmp_path,
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "constraints.area_mm2=1,150", "seed=0,1"],
    )
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 4
    assert list(table["constraints.area_mm2"]) == [1, 1, 150, 150]
    failed = table[table["constraints.area_mm2"] == 1]
    assert (failed["status"] == "failed").all()
    assert failed["error"].str.contains("constraints.area_mm2=1 is below the smallest chip").all()
    ok = table[table["constraints.area_mm2"] == 150]
    assert (ok["status"] == "ok").all() and (ok["final_hv"] > 0).all()
    assert (ok["knee_area_mm2"] <= 150).all()
    assert set(ok["knee_accuracy_from"]) <= {"proxy", "surrogate"}
    has_iso = ok["best_iso_edap_reduction_x"].notna()
    assert set(ok.loc[has_iso, "best_iso_accuracy_from"]) <= {"proxy", "surrogate"}
    assert "best_iso_edap_reduction_measured_x" in table
    for job in ok["dir"]:
        assert (Path(job) / "pareto.csv").is_file() and (Path(job) / "pareto.png").is_file()
    stats = pd.read_csv(out / "sweep_stats.csv")
    row = stats[stats["setting"] == "constraints.area_mm2=150"].iloc[0]
    assert row["n_ok"] == 2 and row["n_failed"] == 0
    assert row["final_hv_mean"] == pytest.approx(ok["final_hv"].mean())
    assert row["final_hv_std"] == pytest.approx(ok["final_hv"].std(ddof=1))
    assert (out / "fronts.png").stat().st_size > 10_000
    assert (out / "sweep.md").read_text().startswith("<!-- produced by `python -m xpert_evo")

    before = (out / "sweep.csv").read_text()
    (out / "sweep.csv").unlink()
    assert compare_main([str(out)]) == 0
    assert (out / "sweep.csv").read_text() == before


def test_compare_refuses_a_directory_without_jobs(tmp_path: Path, capsys) -> None:
    assert compare_main([str(tmp_path)]) == 2
    assert "no Hydra job directories" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        aggregate(tmp_path / "missing")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> SlurmCluster:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except (subprocess.CalledProcessError, RuntimeError) as err:
        cluster.stop()
        pytest.fail(f"could not start a one-node SLURM cluster: {err}\n{cluster.logs()}")
    yield cluster
    cluster.stop()


def test_two_job_sweep_through_a_real_slurm_cluster(slurm: SlurmCluster, tmp_path: Path) -> None:
    out = sweep(
        tmp_path,
        ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=null",
         "hydra.launcher.timeout_min=10", "seed=0,1"],
        env=slurm.env,
    )
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["seed"]) == [0, 1]
    assert (table["status"] == "ok").all(), table.to_string()
    for job in table["dir"]:
        assert (Path(job) / "pareto.csv").is_file()
        assert (Path(job) / "status.json").is_file()
    logs = list((out / ".submitit").rglob("*_log.out"))
    assert logs, "submitit wrote no SLURM job logs: the jobs did not go through sbatch"


def test_source_shards_build_through_a_real_slurm_cluster(
    slurm: SlurmCluster, cifar10_zip: Path, tmp_path: Path
) -> None:
    """`python -m xpert_evo.source -m` over two shards, each trained as its own SLURM job."""
    out, src = tmp_path / "sweep", tmp_path / "src"
    cmd = [sys.executable, "-m", "xpert_evo.source", "-m", "hydra/launcher=slurm",
           "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=null",
           "hydra.launcher.timeout_min=10", "source.n_shards=2", "source.shard=0,1",
           "source.n_networks=2", "source.noise_networks=0", "train.epochs=1",
           "train.train_per_class=4", "train.val_per_class=2", "train.test_per_class=2",
           "train.width_mult=0.125", "train.batch_size=8", "train.num_threads=1",
           f"source.dir={src}", f"data.root={cifar10_zip.parent}",
           f"cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={out}"]
    proc = subprocess.run(cmd, env=slurm.env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    shards = sorted(src.glob("cifar10-*/shard-*-of-2.csv"))
    assert [p.name for p in shards] == ["shard-0-of-2.csv", "shard-1-of-2.csv"]
    net_ids = sorted(int(pd.read_csv(p)["net_id"].iloc[0]) for p in shards)
    assert net_ids == [0, 1]
    assert list((out / ".submitit").rglob("*_log.out")), "the shards did not go through sbatch"

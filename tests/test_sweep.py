"""Multirun sweeps: local parallel jobs (joblib), a real SLURM cluster, and their aggregation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm_cluster import SlurmCluster, missing_reason

from xpert_evo.launcher import record_lost_job
from xpert_evo.report.sweep import aggregate, collect
from xpert_evo.report.sweep import main as compare_main

TESTS = Path(__file__).resolve().parent

TINY = [
    "constraints.precision_loss_pp=null",
    "accuracy=params",
    "algorithm.pop_size=10",
    "algorithm.n_gen=2",
    "accuracy.budget.initial=12",
    "accuracy.budget.per_round=4",
    "accuracy.budget.rounds=1",
]


def sweep(
    tmp_path: Path, args: list[str], env: dict[str, str] | None = None, returncode: int = 0
) -> Path:
    """Run `python -m xpert_evo -m` with tiny budgets into tmp_path/sweep; check its exit code
    (and, when it is not 0, that stderr ends in one line starting with "error:"); return the
    sweep directory."""
    out = tmp_path / "sweep"
    env = {**(env or os.environ), "XPERT_EVO_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "xpert_evo", "-m", *TINY, *args, f"hydra.sweep.dir={out}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == returncode, proc.stdout[-3000:] + proc.stderr[-3000:]
    if returncode:
        assert proc.stderr.splitlines()[-1].startswith("error: "), proc.stderr[-3000:]
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


def test_killed_worker_is_recorded_failed_and_the_other_jobs_finish(tmp_path: Path) -> None:
    """hydra/launcher=local: the job of seed 0 SIGKILLs its own worker process as it starts
    (tests/job_killer.py); job 1 runs beside it and job 2 starts after it died."""
    path = [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    out = sweep(
        tmp_path,
        ["hydra/launcher=local", "hydra.launcher.n_jobs=2", "seed=0,1,2",
         "+hydra.callbacks.kill._target_=job_killer.KillJob", "+hydra.callbacks.kill.seed=0"],
        env=env,
    )
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["seed"]) == [0, 1, 2]
    killed = table.iloc[0]
    assert killed["status"] == "failed"
    assert "process died (SIGKILL(-9))" in killed["error"]
    assert json.loads((out / "0" / "status.json").read_text())["status"] == "failed"
    assert not (out / "0" / "pareto.csv").exists()
    ok = table.iloc[1:]
    assert (ok["status"] == "ok").all() and (ok["final_hv"] > 0).all(), table.to_string()
    for job in ok["dir"]:
        assert (Path(job) / "pareto.csv").is_file()

    shutil.rmtree(out / "2")  # as if job 2 had never started
    assert compare_main([str(out)]) == 0
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["seed"]) == [0, 1, 2]
    assert list(table["status"]) == ["failed", "ok", "missing"]
    assert "never started" in table["error"].iloc[2]


def test_multirun_whose_jobs_all_fail_exits_2(tmp_path: Path) -> None:
    out = sweep(
        tmp_path,
        ["hydra/launcher=local", "hydra.launcher.n_jobs=2", "constraints.area_mm2=1", "seed=0,1"],
        returncode=2,
    )
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["seed"]) == [0, 1]
    assert (table["status"] == "failed").all()


def _job(root: Path, name: str, overrides: list[str], status: dict | None = None) -> None:
    (root / name / ".hydra").mkdir(parents=True)
    (root / name / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if status:
        (root / name / "status.json").write_text(json.dumps(status))


def test_reaggregation_lists_every_planned_job(tmp_path: Path) -> None:
    """The plan is rebuilt from multirun.yaml as Hydra's basic sweeper expands it (sweeper
    params first, then the command line's overrides, cartesian product in that order)."""
    plan = {
        "hydra": {
            "sweeper": {
                "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                "max_batch_size": None,
                "params": {"constraints.area_mm2": "40,80"},
            },
            "overrides": {
                "hydra": ["hydra/launcher=local"],
                "task": ["seed=0,1", "report.top_k=3"],
            },
        }
    }
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(plan))
    failed = {"status": "failed", "error": "boom", "wall_s": 1.0}
    _job(tmp_path, "1", ["constraints.area_mm2=40", "seed=1", "report.top_k=3"], failed)
    _job(tmp_path, "2", ["constraints.area_mm2=80", "seed=0", "report.top_k=3"])
    table, swept = collect(tmp_path)
    assert swept == ["constraints.area_mm2", "seed"]
    assert list(zip(table["constraints.area_mm2"], table["seed"], strict=True)) == [
        ("40", "0"), ("40", "1"), ("80", "0"), ("80", "1")
    ]
    assert list(table["status"]) == ["missing", "failed", "incomplete", "missing"]
    assert list(table["job"]) == ["0", "1", "2", "3"]
    assert table["error"].iloc[1] == "boom"
    assert "killed" in table["error"].iloc[2]


def test_lost_job_record_keeps_the_jobs_own_status(tmp_path: Path) -> None:
    assert record_lost_job(tmp_path / "0", ["seed=0"], "its process died", 2.0)
    assert json.loads((tmp_path / "0" / "status.json").read_text()) == {
        "status": "failed", "error": "its process died", "wall_s": 2.0
    }
    assert yaml.safe_load((tmp_path / "0" / ".hydra" / "overrides.yaml").read_text()) == ["seed=0"]
    _job(tmp_path, "1", ["seed=1"], {"status": "ok", "error": None, "wall_s": 5.0})
    assert not record_lost_job(tmp_path / "1", ["seed=1"], "its process died", 6.0)
    assert json.loads((tmp_path / "1" / "status.json").read_text())["status"] == "ok"


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

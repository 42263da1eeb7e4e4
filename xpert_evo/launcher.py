"""Run the jobs of a Hydra multirun in parallel, each in its own process, so one lost job loses
nothing else.

``hydra/launcher=local`` (``conf/hydra/launcher/local.yaml``) selects this launcher (the Hydra
plugin class ``hydra_plugins.xpert_evo_launcher.process_launcher.ProcessPerJobLauncher``, whose
``launch`` calls `launch`). hydra-joblib-launcher (``hydra/launcher=joblib``) runs all jobs in one
shared pool of worker processes: when one worker dies (``kill -9``, the out-of-memory killer, a
crash in native code) the pool breaks, the jobs running in the other workers are killed with it,
the jobs not yet started never run, and the multirun stops without calling ``on_multirun_end``
(so no ``sweep.csv``). Here every job gets a one-worker process pool of its own (joblib's loky,
which pickles Hydra's task function and context as hydra-joblib-launcher does), ``n_jobs`` of
them at a time. A job whose process dies, or leaves through ``sys.exit``, is recorded as failed
in its ``status.json`` with the reason (`record_lost_job`) and reported to Hydra as completed,
so the other jobs run to the end and the sweep is aggregated; a job that raises is returned to
Hydra as failed, as with any Hydra launcher.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.types import HydraContext, TaskFunction
from joblib import effective_n_jobs
from joblib.externals.loky import ProcessPoolExecutor
from joblib.externals.loky.process_executor import TerminatedWorkerError
from omegaconf import DictConfig, OmegaConf, open_dict

from xpert_evo.files import atomic_write
from xpert_evo.report.sweep import STATUS_FILE

log = logging.getLogger(__name__)

_EXIT_CODES = re.compile(r"exit codes of the workers are \{([^}]*)\}")


def job_config(
    hydra_context: HydraContext, config: DictConfig, overrides: Sequence[str], num: int
) -> DictConfig:
    """The configuration of job number ``num`` of the sweep (``hydra.job.num`` and ``id`` set)."""
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{num}"
        sweep_config.hydra.job.num = num
    return sweep_config


def execute_job(
    num: int,
    overrides: Sequence[str],
    hydra_context: HydraContext,
    config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
) -> JobReturn:
    """Run one job in its worker process (Hydra's `run_job`, as hydra-joblib-launcher does)."""
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = job_config(hydra_context, config, overrides, num)
    HydraConfig.instance().set_config(sweep_config)
    return run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def lost_reason(err: BaseException) -> str:
    """One line saying why a job's process ended without a result."""
    if isinstance(err, SystemExit):
        return f"the job exited with code {err.code} before it finished"
    if isinstance(err, TerminatedWorkerError):
        codes = _EXIT_CODES.search(str(err))
        how = f" ({codes.group(1)})" if codes else ""
        return (
            f"the job's process died{how} before it finished: killed (kill -9, out of memory) "
            "or crashed"
        )
    first = str(err).strip().splitlines()
    return f"the job's process ended without a result: {type(err).__name__}" + (
        f": {first[0]}" if first else ""
    )


def record_lost_job(job_dir: Path, overrides: Sequence[str], reason: str, wall_s: float) -> bool:
    """Record a lost job as failed in ``job_dir/status.json``; return whether it was recorded.

    A job that wrote its own ``status.json`` keeps it (its record is the more precise one). The
    job's overrides are written to ``.hydra/overrides.yaml`` where Hydra had not yet written it,
    so that ``python -m xpert_evo.sweep`` finds the job and its swept values.
    """
    status = job_dir / STATUS_FILE
    if status.is_file():
        return False
    record = json.dumps({"status": "failed", "error": reason, "wall_s": round(wall_s, 3)}) + "\n"
    atomic_write(status, lambda fh: fh.write(record.encode()))
    saved = job_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        text = OmegaConf.to_yaml(OmegaConf.create(list(overrides)))
        atomic_write(saved, lambda fh: fh.write(text.encode()))
    return True


def _lost_job(
    hydra_context: HydraContext,
    config: DictConfig,
    num: int,
    overrides: Sequence[str],
    err: BaseException,
    wall_s: float,
) -> JobReturn:
    """Record job ``num`` as failed and return it to Hydra as completed (the sweep goes on)."""
    reason = lost_reason(err)
    sweep_config = job_config(hydra_context, config, overrides, num)
    job_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    try:
        recorded = record_lost_job(job_dir, overrides, reason, wall_s)
    except OSError as write_error:
        log.error("job #%d: could not record its loss in %s: %s", num, job_dir, write_error)
        recorded = False
    log.error(
        "job #%d (%s) lost: %s%s",
        num,
        " ".join(filter_overrides(overrides)),
        reason,
        f"; recorded in {job_dir / STATUS_FILE}" if recorded else "",
    )
    ret = JobReturn(
        overrides=list(overrides),
        working_dir=str(job_dir),
        task_name=str(sweep_config.hydra.job.name),
        status=JobStatus.COMPLETED,
    )
    ret.return_value = None
    return ret


def launch(
    config: DictConfig,
    hydra_context: HydraContext,
    task_function: TaskFunction,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    n_jobs: int | None,
) -> list[JobReturn]:
    """Run ``job_overrides`` (one override list per job), ``n_jobs`` at a time, each in a fresh
    worker process; return their `JobReturn`s in the order given.

    ``n_jobs`` counts as in joblib (-1: one per CPU core, -2: all but one). Ctrl-C stops the
    launch and kills the jobs still running.
    """
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    at_once = max(1, min(effective_n_jobs(n_jobs), len(job_overrides)))
    log.info(
        "launching %d jobs, %d at a time, each in its own process; sweep output dir: %s",
        len(job_overrides),
        at_once,
        sweep_dir,
    )
    pending = list(enumerate(job_overrides, start=initial_job_idx))
    for num, overrides in pending:
        log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
    singleton_state = Singleton.get_state()
    running: dict[Future, tuple[int, Sequence[str], ProcessPoolExecutor, float]] = {}
    returns: dict[int, JobReturn] = {}
    try:
        while pending or running:
            while pending and len(running) < at_once:
                num, overrides = pending.pop(0)
                executor = ProcessPoolExecutor(max_workers=1)
                future = executor.submit(
                    execute_job, num, overrides, hydra_context, config, task_function,
                    singleton_state,
                )
                running[future] = (num, overrides, executor, time.perf_counter())
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                num, overrides, executor, start = running.pop(future)
                executor.shutdown(wait=True)
                err = future.exception()
                returns[num] = (
                    future.result()
                    if err is None
                    else _lost_job(
                        hydra_context, config, num, overrides, err, time.perf_counter() - start
                    )
                )
    finally:
        for _, _, executor, _ in running.values():
            executor.shutdown(wait=False, kill_workers=True)
    return [returns[num] for num in sorted(returns)]

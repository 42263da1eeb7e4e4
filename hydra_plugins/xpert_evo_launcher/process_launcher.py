"""`ProcessPerJobLauncher`: ``hydra/launcher=local`` of xpert_evo (see `xpert_evo.launcher`).

Hydra imports every module under ``hydra_plugins`` when it starts, so this one stays light: the
launcher's work is in `xpert_evo.launcher`, imported when a multirun launches its jobs.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ProcessPerJobLauncher(Launcher):
    """Runs a multirun's jobs ``n_jobs`` at a time, each in its own worker process, so that a job
    whose process dies is recorded as failed and the other jobs go on.

    Args:
        n_jobs: jobs running at once, counted as in joblib (-1: one per CPU core).
    """

    def __init__(self, n_jobs: int | None = -1) -> None:
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep the sweep's context, task function and configuration for `launch`."""
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Run the jobs (one override list each); their returns in the order given."""
        from xpert_evo.launcher import launch

        if self.config is None or self.task_function is None or self.hydra_context is None:
            raise RuntimeError("ProcessPerJobLauncher.launch called before setup")
        return launch(
            self.config, self.hydra_context, self.task_function, job_overrides, initial_job_idx,
            self.n_jobs,
        )

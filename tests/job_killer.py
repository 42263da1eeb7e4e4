"""A Hydra callback for the killed-worker sweep test (tests/test_sweep.py): the job whose seed is
``seed`` kills its own process with SIGKILL as it starts, as ``kill -9`` of a worker would.

Used only from the test's command line (``+hydra.callbacks.kill._target_=job_killer.KillJob``,
with this folder on ``PYTHONPATH``); nothing in xpert_evo refers to it.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class KillJob(Callback):
    """Kill the process running the job whose ``seed`` is ``seed``, before its task starts."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """SIGKILL this process when the job's seed matches."""
        if config.seed == self.seed:
            os.kill(os.getpid(), signal.SIGKILL)

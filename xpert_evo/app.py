"""The Hydra application: ``python -m xpert_evo [+experiment=cifar10] [key=value ...]``.

Composes ``conf/config.yaml``, checks the config before any work, runs the (surrogate-assisted)
search with a checkpoint per generation, and writes the report into Hydra's run directory.
Configuration mistakes end the run with one message naming the key and the fix, exit code 2.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from xpert_evo.config import ConfigError, conf_dir, plain_config
from xpert_evo.hardware.config import HardwareConfigError
from xpert_evo.report import headline_lines, markdown_table, summary_table, write_report
from xpert_evo.report.results import build_tables, export_designs
from xpert_evo.report.sweep import STATUS_FILE
from xpert_evo.search.algorithms import TERMINATION_KEYS
from xpert_evo.search.checkpoint import CHECKPOINT, load_checkpoint
from xpert_evo.search.loop import SearchRun
from xpert_evo.search.setup import build_search
from xpert_evo.space.genome import GeneError
from xpert_evo.training.data import DataError

log = logging.getLogger("xpert_evo")

PROJECT_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    GeneError,
    HardwareConfigError,
    DataError,
)
"""Errors that mean "fix the input": reported in one line, exit code 2."""

CONF_DIR = str(conf_dir())
"""The config root (`xpert_evo.config.conf_dir`) as an absolute path: Hydra reads a relative
config_path as a python package when the app runs with ``python -m``."""

OUTPUT_MARKERS: tuple[str, ...] = (CHECKPOINT, "pareto.csv", "archive.csv")


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def resume_config(
    saved: Mapping[str, Any], current: Mapping[str, Any], overrides: Sequence[str]
) -> dict[str, Any]:
    """The config of a resumed run: the checkpoint's, with termination keys
    (``algorithm.n_gen``, ``algorithm.n_evals``, ``algorithm.max_time_s``) taken from the command
    line when given there (to extend a run). Other command-line overrides are logged as ignored.
    """
    config = plain_config(dict(saved))
    config = {**config, "algorithm": dict(config.get("algorithm", {}))}
    ignored = []
    for item in overrides:
        key = _override_key(item)
        if key == "resume" or key.startswith("hydra"):
            continue
        name = key.removeprefix("algorithm.")
        if key.startswith("algorithm.") and name in TERMINATION_KEYS:
            config["algorithm"][name] = current["algorithm"][name]
        else:
            ignored.append(item)
    if ignored:
        log.warning(
            "resuming with the configuration saved in the checkpoint; ignoring %s (only "
            "algorithm.n_gen / n_evals / max_time_s may change on resume)",
            " ".join(ignored),
        )
    return config


def check_output_dir(out_dir: Path) -> None:
    """Refuse to write into a directory that already holds another run's outputs."""
    clash = [m for m in OUTPUT_MARKERS if (out_dir / m).exists()]
    if clash:
        raise ConfigError(
            f"hydra.run.dir={str(out_dir)!r} already holds an earlier run ({', '.join(clash)}); "
            "nothing is overwritten. Fix: choose a new hydra.run.dir (or keep the default "
            "timestamped one); to continue that run pass resume=<its directory>"
        )


def run_app(cfg: Mapping[str, Any], out_dir: str | Path, overrides: Sequence[str] = ()) -> Path:
    """Check, search, report. Returns the output directory.

    Args:
        cfg: the composed config.
        out_dir: where every output goes (Hydra's run directory).
        overrides: the command-line overrides (decide what a resumed run may change).

    Raises:
        ConfigError, GeneError, HardwareConfigError, DataError: bad input, before any search work.
    """
    out = Path(out_dir)
    check_output_dir(out)
    state = None
    resume = cfg.get("resume")
    config: Mapping[str, Any] = cfg
    if resume:
        state = load_checkpoint(resume)
        config = resume_config(state["config"], plain_config(cfg), overrides)
        log.info("resuming %s (generation %d)", resume, state["history"][-1]["generation"])
    setup = build_search(config)
    out.mkdir(parents=True, exist_ok=True)
    run = SearchRun(setup, out)
    run = run.resume(state) if state is not None else run.start()
    result = run.run()
    tables = build_tables(
        result,
        extra_meta={
            "run_dir": str(out),
            "command": " ".join(["python -m xpert_evo", *overrides]),
            "resumed_from": str(resume) if resume else None,
        },
    )
    write_report(tables, out, setup.top_k)
    export_designs(result, tables, out)
    scored = "channel configurations predicted" if result.oracle.predicts else "true proxy scores"
    log.info(
        "done: %d designs evaluated, %d %s, %d on the front, HV %.4f, %.1f s",
        result.n_evals,
        result.oracle.n_measured,
        scored,
        len(result.front),
        tables.meta["hypervolume"],
        result.search_s,
    )
    log.info("accuracy data: %s", tables.meta["accuracy_basis"])
    for line in headline_lines(tables.meta):
        log.info("%s", line)
    log.info("top designs vs %s:\n%s", setup.space.baseline_name,
             markdown_table(summary_table(tables, setup.top_k)))
    log.info("outputs in %s", out)
    return out


def write_status(out_dir: Path, status: str, error: str | None, wall_s: float) -> None:
    """Record how this run ended in ``status.json`` (read by ``python -m xpert_evo.sweep``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"status": status, "error": error, "wall_s": round(wall_s, 3)}
    (out_dir / STATUS_FILE).write_text(json.dumps(record) + "\n")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (see module docstring).

    In a multirun (``-m``) a failing job records its error in ``status.json`` and returns, so the
    other jobs and the sweep's aggregation go on; a single run exits with code 2 on bad input.
    """
    hydra_cfg = HydraConfig.get()
    out = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    start = time.perf_counter()
    try:
        run_app(cfg, out, list(hydra_cfg.overrides.task))
    except PROJECT_ERRORS as err:
        log.error("error: %s", err)
        if not multirun:
            sys.exit(2)
        write_status(out, "failed", str(err), time.perf_counter() - start)
        return
    except KeyboardInterrupt:
        if (out / CHECKPOINT).exists():
            log.error("interrupted; continue with: python -m xpert_evo resume=%s", out)
        sys.exit(130)
    except Exception as err:
        if not multirun:
            raise
        log.exception("job failed")
        write_status(out, "failed", f"{type(err).__name__}: {err}", time.perf_counter() - start)
        return
    write_status(out, "ok", None, time.perf_counter() - start)

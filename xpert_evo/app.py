"""The Hydra application: ``python -m xpert_evo [+experiment=cifar10] [key=value ...]``.

Composes ``conf/config.yaml``, checks the config before any work, runs the (surrogate-assisted)
search with a checkpoint per generation, and writes the report into Hydra's run directory.
Configuration mistakes (Hydra's too: an unknown config group or key) and files that cannot be
written end the run with one line naming the key or the path and the fix, exit code 2; a run
refused before it wrote any output leaves no directory (`xpert_evo.rundir`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from xpert_evo.config import ConfigError, conf_dir, plain_config
from xpert_evo.files import atomic_text
from xpert_evo.hardware.config import HardwareConfigError
from xpert_evo.report import headline_lines, markdown_table, summary_table, write_report
from xpert_evo.report.results import build_tables, export_designs
from xpert_evo.report.sweep import STATUS_FILE
from xpert_evo.rundir import (
    OUTPUT_MARKERS,
    register_resolvers,
    release_claims,
    release_run_dir,
)
from xpert_evo.schema import one_line, register, run_main
from xpert_evo.search.algorithms import TERMINATION_KEYS
from xpert_evo.search.checkpoint import CHECKPOINT, load_checkpoint
from xpert_evo.search.feasibility import check_feasible
from xpert_evo.search.front_rounds import VerifyRounds, verify_rounds
from xpert_evo.search.loop import SearchRun
from xpert_evo.search.setup import build_search
from xpert_evo.space.genome import GeneError
from xpert_evo.training.data import DataError
from xpert_evo.verify import after_search, check_options, round_trainings

log = logging.getLogger("xpert_evo")
register_resolvers()  # ${xpert_evo.run_tag:} in hydra.run.dir, before Hydra composes a config
register()  # the schemas conf/ names in its defaults lists (base_search, base_<group>)

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


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def resume_config(
    saved: Mapping[str, Any], current: Mapping[str, Any], overrides: Sequence[str]
) -> dict[str, Any]:
    """The config of a resumed run: the checkpoint's, with termination keys
    (``algorithm.n_gen``, ``algorithm.n_evals``, ``algorithm.max_time_s``) and ``verify.*`` taken
    from the command line when given there (to extend a run, or verify it), and ``resume`` the run
    it continues. Other command-line overrides are logged as ignored.
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
        elif key.startswith("verify"):  # what happens after the search may change
            config["verify"] = dict(current["verify"])
        else:
            ignored.append(item)
    config["resume"] = current.get("resume")
    if ignored:
        log.warning(
            "resuming with the configuration saved in the checkpoint; ignoring %s (only "
            "algorithm.n_gen / n_evals / max_time_s and verify.* may change on resume)",
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


def run_app(
    cfg: Mapping[str, Any],
    out_dir: str | Path,
    overrides: Sequence[str] = (),
    config_file: str | Path | None = None,
) -> Path:
    """Check, search, report. Returns the output directory.

    Args:
        cfg: the composed config.
        out_dir: where every output goes (Hydra's run directory).
        overrides: the command-line overrides (decide what a resumed run may change).
        config_file: where the run's configuration is recorded (Hydra's ``.hydra/config.yaml``);
            a resumed run replaces it with the configuration it uses, the checkpoint's.

    Raises:
        ConfigError, GeneError, HardwareConfigError, DataError: bad input, before any search work.
        NoFeasibleDesignError: no evaluated design meets every constraint (after the outputs are
            written).
        OSError: a file cannot be written (the message names it).
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
    options = plain_config(config.get("verify") or {})
    roles, rounds = options.get("roles"), options.get("rounds", 0)
    if roles or rounds:
        check_options(options)
    setup = build_search(config)
    if rounds:
        measure, front = round_trainings(plain_config(config), setup, out)
    if state is not None and config_file is not None:
        atomic_text(config_file, OmegaConf.to_yaml(OmegaConf.create(setup.config)))
    out.mkdir(parents=True, exist_ok=True)
    run = SearchRun(setup, out)
    run = run.resume(state) if state is not None else run.start()
    if rounds:
        result = verify_rounds(run, VerifyRounds(rounds, options["per_round"], options["seeds"]),
                               measure, front)
    else:
        result = run.run()
    tables = build_tables(
        result,
        extra_meta={
            "run_dir": str(out),
            "command": " ".join(["python -m xpert_evo", *overrides]),
            "resumed_from": str(resume) if resume else None,
            **({"front_source": str(front.path)} if rounds else {}),
        },
    )
    write_report(tables, out, setup.top_k)
    export_designs(result, tables, out)
    check_feasible(result)
    scored = ("channel configurations predicted" if result.accuracy.kind == "predicted"
              else "true proxy scores")
    log.info(
        "done: %d designs evaluated, %d %s, %d on the front, HV %.4f, %.1f s",
        result.n_evals,
        result.accuracy.n_scored,
        scored,
        len(result.front),
        tables.meta["hypervolume"],
        result.search_s,
    )
    for line in getattr(run.algorithm, "outcome_lines", list)():
        log.info("%s", line)
    log.info("accuracy data: %s", tables.meta["accuracy_basis"])
    for line in headline_lines(tables.meta):
        log.info("%s", line)
    log.info("top designs vs %s:\n%s", setup.space.baseline_name,
             markdown_table(summary_table(tables, setup.top_k)))
    log.info("outputs in %s", out)
    if roles:
        after_search(out, plain_config(config))
    return out


def write_status(out_dir: Path, status: str, error: str | None, wall_s: float) -> None:
    """Record how this run ended in ``status.json`` (read by ``python -m xpert_evo.sweep``)."""
    record = {"status": status, "error": error, "wall_s": round(wall_s, 3)}
    atomic_text(out_dir / STATUS_FILE, json.dumps(record) + "\n")


def filesystem_line(err: OSError, out: Path) -> str:
    """A filesystem error (not writable, disk full, read-only cache) as one line naming the path,
    and, when the run has a checkpoint, the command that continues it."""
    line = one_line(err)
    if (out / CHECKPOINT).exists():
        line += f"; the last checkpoint is intact: fix that, then python -m xpert_evo resume={out}"
    return line


def _refused(out: Path, multirun: bool, line: str, start: float) -> None:
    """Report a failed run in one line: a multirun job records it in ``status.json`` and returns;
    a single run removes its directory when it wrote nothing but Hydra's files, and exits 2."""
    log.error("error: %s", line)
    if not multirun:
        release_run_dir(out)
        sys.exit(2)
    try:
        write_status(out, "failed", line, time.perf_counter() - start)
    except OSError as err:
        log.error("error: cannot record the failure: %s", one_line(err))


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    """The Hydra task (see module docstring).

    In a multirun (``-m``) a failing job records its error in ``status.json`` and returns, so the
    other jobs and the sweep's aggregation go on; a single run exits with code 2 on bad input or
    a filesystem error, leaving no run directory when it wrote nothing.
    """
    hydra_cfg = HydraConfig.get()
    out = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    subdir = hydra_cfg.output_subdir
    start = time.perf_counter()
    try:
        run_app(cfg, out, list(hydra_cfg.overrides.task),
                config_file=out / subdir / "config.yaml" if subdir else None)
    except PROJECT_ERRORS as err:
        _refused(out, multirun, one_line(err), start)
        return
    except OSError as err:
        _refused(out, multirun, filesystem_line(err, out), start)
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


def main() -> None:
    """``python -m xpert_evo``: `hydra_main` under Hydra, with Hydra's own input errors (an
    unknown config group, option or key, a value of the wrong type: `xpert_evo.schema.run_main`)
    and filesystem errors before the task (Hydra cannot write its files) reported in one line,
    exit code 2. ``HYDRA_FULL_ERROR=1`` keeps Hydra's tracebacks."""
    try:
        run_main(hydra_main)
    except OSError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        claimed = release_claims()
        where = f" (writing in {claimed[0]})" if claimed and err.filename is None else ""
        sys.stderr.write(f"error: {one_line(err)}{where}\n")
        sys.exit(2)

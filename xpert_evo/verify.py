"""`python -m xpert_evo.verify run_dir=RUN_DIR`: train what a search found, measure it.

Trains the run's front designs named in `verify.roles` and its baseline stand-alone at the run's
source budget, at `verify.seeds` seeds, measures validation, test and crossbar accuracy
(`xpert_evo.training.verification`), and writes the measured figures beside the predicted ones
into the run directory (`xpert_evo.report.verified`). The trainings join the run's measured
source as ``front`` rows (`FrontSource`), so that a later run's predictor learns from them;
`round_trainings` trains the designs of the search's ``verify.rounds`` the same way. When the
run has an iso-accuracy design, it is tested against the baseline, paired by seed; if it falls
short beyond noise, the front's next designs up in EDAP are verified (at most
`verify.walk_budget`) until one holds.
The config (conf/verify.yaml) is typed by `xpert_evo.schema.apps.VerifyConfig`. Bad input (an
unknown key, a value of the wrong type, a bad range, not a run) ends with one line naming the key
and exit code 2.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from xpert_evo.accuracy.predictor import SourcePredictor
from xpert_evo.config import ConfigError, conf_dir, original_path, typed
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.report.verified import headline, write_verified
from xpert_evo.schema import register, run_main
from xpert_evo.schema.nodes import VerifyNode
from xpert_evo.search.front_rounds import FrontMeasure
from xpert_evo.search.setup import SearchSetup, require_data_root
from xpert_evo.space.backbone import GEOMETRY
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataError, DataSpec
from xpert_evo.training.groundtruth import default_path
from xpert_evo.training.train import TrainSpec
from xpert_evo.training.verification import (
    BASELINE,
    Design,
    FrontSource,
    Job,
    PairedTest,
    SearchRunFiles,
    measure_jobs,
    paired_shortfall,
    per_seed,
    read_run,
    summarise,
    training_for,
)

log = logging.getLogger("xpert_evo.verify")
register()  # the schemas conf/verify.yaml names in its defaults lists (base_verify, base_<group>)

ISO = "iso_accuracy"
"""The role whose claim (no lower accuracy than the baseline) verify tests."""


@dataclass
class Verification:
    """What one verify did: the designs, the per-training and per-design tables, the paired
    tests of the iso-accuracy design and of each design the walk up the front tried."""

    designs: list[Design]
    seeds: pd.DataFrame
    summary: pd.DataFrame
    tests: dict[str, PairedTest]
    lines: list[str]


ROLES: tuple[str, ...] = ("knee", "best_edap", "best_accuracy", "iso_accuracy")
"""The roles a run's front designs can hold (`xpert_evo.report.results.front_roles`)."""


def check_options(node: dict[str, Any]) -> None:
    """Check the `verify:` node (conf/verify.yaml's, or conf/config.yaml's for a run that ends
    with verification or refines by verified trainings) before any work: OmegaConf types it by
    the search's schema (`VerifyNode`, whose keys include those of conf/verify.yaml's); ranges
    and role names are checked here.

    Raises:
        ConfigError: an unknown key, a mistyped or a bad value, naming the key and the fix.
    """
    options = typed(VerifyNode, node, "verify")
    if options.rounds < 0:
        raise ConfigError(f"verify.rounds={options.rounds!r} must be a whole number >= 0 (0: no "
                          "rounds of verified trainings during the search)")
    if options.per_round < 1:
        raise ConfigError(f"verify.per_round={options.per_round!r} must be a whole number >= 1")
    unknown = sorted(set(options.roles) - set(ROLES))
    if unknown:
        raise ConfigError(f"verify.roles: {unknown} are not roles; allowed: {list(ROLES)}")
    if options.seeds < 1:
        raise ConfigError(f"verify.seeds={options.seeds!r} must be a whole number >= 1")
    if not 0 < options.alpha < 1:
        raise ConfigError(f"verify.alpha={options.alpha!r} must be in (0, 1)")
    if options.walk_budget < 0:
        raise ConfigError(f"verify.walk_budget={options.walk_budget!r} must be a whole number "
                          ">= 0")
    if options.n_jobs < 1:
        raise ConfigError(f"verify.n_jobs={options.n_jobs!r} must be a whole number >= 1")


def verify(cfg: DictConfig | dict[str, Any], presets: Path | None = None) -> Verification:
    """Run the verification `cfg` describes (conf/verify.yaml); see the module docstring.
    `presets` is the config folder whose training/*.yaml budgets are searched (conf/).

    Raises:
        VerifyError: not a run, a role it lacks, no training preset at its budget.
        DataError: the data set is missing.
        ConfigError: a bad `verify.*` value.
    """
    if isinstance(cfg, DictConfig):
        if OmegaConf.is_missing(cfg, "run_dir"):
            raise ConfigError("run_dir is required: python -m xpert_evo.verify run_dir=<a "
                              "directory written by python -m xpert_evo>")
        node = OmegaConf.to_container(cfg, resolve=True)
    else:
        node = cfg
    options = node["verify"]
    check_options(options)
    run = read_run(original_path(str(node["run_dir"])))
    designs = [run.design(role) for role in options["roles"]]
    name, train_node = source_budget(node, run.fidelity, presets)
    trainer = Trainer.of(node, run.dataset, train_node, run.hardware)
    front = FrontSource.of((run.meta.get("config", {}).get("accuracy") or {}).get("source_dir"),
                           run.dataset, run.fidelity, run.run_dir)
    everyone = designs + ([run.baseline()] if options["baseline"] else [])
    seeds = range(options["seeds"])
    log.info("verifying %s of %s at %s (%s), seeds %s",
             [d.name for d in everyone], run.run_dir, run.fidelity, name, list(seeds))

    def measure(batch: list[Design]) -> pd.DataFrame:
        jobs = [Job(d, s) for d in batch for s in seeds]
        rows = trainer.rows(jobs)
        front.append(rows, f"verify of {run.run_dir}")
        return per_seed(jobs, rows)

    trainings = measure(everyone)
    tests: dict[str, PairedTest] = {}
    lines: list[str] = []
    baseline_name = run.meta.get("baseline", {}).get("name", BASELINE)
    iso = next((d for d in designs if d.name == ISO), None)
    if iso is not None and options["baseline"]:
        trainings, iso_lines, tests = walk_up(run, iso, trainings, measure, options,
                                              baseline_name, everyone)
        lines += iso_lines
    summary = summarise(everyone, trainings)
    lines += [headline(summary, test, design, baseline_name) for design, test in tests.items()]
    bias = summary[summary["design"] != BASELINE]["predicted_minus_measured_pp"]
    lines.append(f"mean predicted minus measured accuracy of the {len(bias)} verified front "
                 f"designs: {bias.mean():+.2f} pp (the winner's-curse bias of this front)")
    note = f"{run.fidelity} ({name}), {len(seeds)} seeds"
    write_verified(run, summary, trainings, lines, note)
    for line in lines:
        log.info("%s", line)
    return Verification(everyone, trainings, summary, tests, lines)


@dataclass(frozen=True)
class Trainer:
    """How verify trains a design at a seed: the data, the budget, the crossbar, the
    ground-truth table (a training it holds is read back, not run again)."""

    data: DataSpec
    spec: TrainSpec
    xbar: CrossbarSpec
    table: Path
    cache_dir: str | None
    n_jobs: int
    keep_checkpoints: bool

    @classmethod
    def of(cls, node: dict[str, Any], dataset: str, train_node: dict[str, Any],
           hardware: dict[str, Any]) -> Trainer:
        """From a verify config `node` (conf/verify.yaml's keys), the data set's name, the
        `train:` node of the budget and the run's hardware (the crossbar's weight mapping)."""
        size, classes = GEOMETRY[dataset]
        data = DataSpec.from_config({**node.get("data", {}), "dataset": dataset,
                                     "input_size": size, "num_classes": classes,
                                     "allow_data_free": False})
        return cls(data, TrainSpec.from_config(train_node),
                   CrossbarSpec.from_config(node.get("crossbar"), hardware),
                   default_path(node.get("ground_truth"), node.get("cache_dir")),
                   node.get("cache_dir"), node["verify"]["n_jobs"],
                   (node.get("ground_truth") or {}).get("keep_checkpoints", True))

    def rows(self, jobs: list[Job]) -> list[dict[str, Any]]:
        """The ground-truth row of every job, in order (`measure_jobs`)."""
        return measure_jobs(jobs, self.data, self.spec, self.xbar, self.table, self.cache_dir,
                            self.n_jobs, self.keep_checkpoints)


def walk_up(run: SearchRunFiles, iso: Design, trainings: pd.DataFrame, measure: Any,
            options: dict[str, Any], baseline_name: str,
            everyone: list[Design]) -> tuple[pd.DataFrame, list[str], dict[str, PairedTest]]:
    """Test the iso-accuracy design; while the tested design falls short of the baseline beyond
    noise, verify the front's next design up in EDAP, `walk_budget` at most. Appends the walked
    designs to `everyone`; returns the trainings, the lines to report and the tests."""
    tests = {ISO: paired_shortfall(trainings, ISO, options["alpha"])}
    lines: list[str] = []
    if not tests[ISO].falls_short:
        return trainings, lines, tests
    above = run.pareto[run.pareto["edap"] > iso.edap].sort_values("edap")
    for index in above.index[: options["walk_budget"]]:
        design = run.row_design(run.pareto.index.get_loc(index))
        everyone.append(design)
        trainings = pd.concat([trainings, measure([design])], ignore_index=True)
        tests[design.name] = paired_shortfall(trainings, design.name, options["alpha"])
        if not tests[design.name].falls_short:
            lines.append(f"{ISO} fell short of {baseline_name}; the lowest-EDAP design up the "
                         f"front that holds is {design.name}")
            return trainings, lines, tests
    lines.append(f"{ISO} fell short of {baseline_name}, and none of the next "
                 f"{min(len(above), options['walk_budget'])} designs up the front held "
                 "(verify.walk_budget)")
    return trainings, lines, tests


def verify_node(run_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The verify config (conf/verify.yaml's keys) of a search run's app config: its `verify:`
    node (whose ``test_images`` is the crossbar's), data root, cache, crossbar and ground-truth
    table."""
    options = dict(config["verify"])
    crossbar = {**(config.get("crossbar") or {}), "test_images": options.pop("test_images", None)}
    return {"run_dir": str(run_dir), "verify": options, "cache_dir": config.get("cache_dir"),
            "data": {"root": config["data"]["root"],
                     "download": config["data"].get("download", False)},
            "crossbar": crossbar, "ground_truth": config.get("ground_truth") or {},
            "train": config.get("train") or {}}


def after_search(run_dir: Path, config: dict[str, Any]) -> Verification:
    """Verify a run that has just finished, with its app config (`verify_node`)."""
    return verify(verify_node(run_dir, config))


def source_budget(config: dict[str, Any], fidelity: str,
                  presets: Path | None = None) -> tuple[str, dict[str, Any]]:
    """The `train:` node that trains at the source's budget `fidelity`, and where it comes from:
    the search config's own (``training=``) when it does, else the conf/training preset that
    does (`training_for`; `presets` is the config folder, conf/ by default).

    Raises:
        VerifyError: neither trains at `fidelity`.
    """
    train = config.get("train") or {}
    if train and TrainSpec.from_config(train).fidelity() == fidelity:
        return "the run's train: node", train
    name, node = training_for(fidelity, presets)
    return f"conf/training/{name}.yaml", node


def round_trainings(config: dict[str, Any], setup: SearchSetup,
                    run_dir: Path) -> tuple[FrontMeasure, FrontSource]:
    """For ``verify.rounds``: how a round trains designs at the source's budget (resumable
    through the ground-truth table) and where the trainings join the source. Checked before the
    search.

    Raises:
        ConfigError: not ``accuracy=measured``, XPert's gradient search, or no data at
            ``data.root``.
        VerifyError: no training preset at the source's budget.
    """
    rounds = config["verify"]["rounds"]
    estimator = setup.estimator
    if not isinstance(estimator, SourcePredictor):
        raise ConfigError(f"verify.rounds={rounds} refits the predictor of a measured source on "
                          f"verified trainings; accuracy={config['accuracy'].get('proxy')} has "
                          "none. Fix: accuracy=measured, or verify.rounds=0")
    if setup.settings.name == "xpert_gd":
        raise ConfigError(f"verify.rounds={rounds} continues a population search after each "
                          "round; algorithm=xpert_gd is a gradient search. Fix: algorithm=nsga2 "
                          "or random, or verify.rounds=0")
    require_data_root(config["data"], f"verify.rounds={rounds} trains networks on it",
                      "verify.rounds=0")
    node = verify_node(run_dir, config)
    _, train_node = source_budget(config, estimator.fidelity)
    trainer = Trainer.of(node, estimator.dataset, train_node, config.get("hardware") or {})

    def measure(genomes: Genomes, names: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
        designs = [Design(name, genomes[[k]], math.nan, math.nan, math.nan, math.nan)
                   for k, name in enumerate(names)]
        return pd.DataFrame(trainer.rows([Job(d, s) for d in designs for s in seeds]))

    source_dir = (config.get("accuracy") or {}).get("source_dir")
    return measure, FrontSource.of(source_dir, estimator.dataset, estimator.fidelity, run_dir)


@hydra.main(config_path=str(conf_dir()), config_name="verify", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    """The Hydra task (see the module docstring)."""
    try:
        verify(cfg)
    except (ConfigError, DataError, ValueError) as err:
        log.error("error: %s", err)
        sys.exit(2)


def main() -> None:
    """``python -m xpert_evo.verify``: `hydra_main` with Hydra's input errors (an unknown key or
    option, a value of the wrong type) in one line, exit code 2 (`xpert_evo.schema.run_main`)."""
    run_main(hydra_main)


if __name__ == "__main__":
    main()

"""`python -m xpert_evo.train`: train one design, measure its clean and crossbar accuracy.

The design comes from `design=<run dir>` (its knee design, `<dir>/designs/knee_layers.csv`),
`design=<file.csv>` (a per-layer table or a table of dash-joined genes, `design_row` picks the
row), or `genome.channels=[...]` plus scalar or per-layer peripheral genes. The budget is the
`train:` node (conf/train.yaml, typed by `xpert_evo.schema.apps.TrainConfig`); the device is
picked automatically. The result is printed, written to `<hydra run dir>/result.json` and
appended to the ground-truth table. Bad input (an unknown key, a value of the wrong type, a
missing design or data set) ends with one line naming it, exit code 2.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from xpert_evo.config import ConfigError, conf_dir, original_path
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.schema import register, run_main
from xpert_evo.space.backbone import Backbone
from xpert_evo.space.genome import Genomes
from xpert_evo.training.data import DataError, DataSpec, cache_root
from xpert_evo.training.design import genome_from_config, read_design
from xpert_evo.training.groundtruth import (
    append_rows,
    default_path,
    measure_one,
)
from xpert_evo.training.train import TrainSpec, budget_splits

log = logging.getLogger("xpert_evo.train")
register()  # the schemas conf/train.yaml names in its defaults lists (base_train, base_<group>)

KNEE_FILE = Path("designs") / "knee_layers.csv"
"""The knee design's per-layer table inside a search run directory."""


def resolve_genome(cfg: DictConfig | dict[str, Any], n_layers: int) -> tuple[Genomes, str]:
    """The genome to train and where it came from ("design file ..." or "genome.* keys").

    Raises:
        FileNotFoundError: `design` names a run directory without designs/knee_layers.csv or
            a missing file (the message says which key to fix and how).
        ValueError: neither `design` nor `genome.channels` is set, or the design is malformed.
    """
    design = cfg.get("design")
    if design:
        path = original_path(str(design))
        if path.is_dir():
            knee = path / KNEE_FILE
            if not knee.is_file():
                raise FileNotFoundError(
                    f"design={design}: {knee} does not exist. Point design= at a search run "
                    f"directory that has {KNEE_FILE} (written by `python -m xpert_evo`), or at a "
                    "*_layers.csv file directly, or give genome.channels=[...] instead."
                )
            path = knee
        elif not path.is_file():
            raise FileNotFoundError(
                f"design={design}: no such file or directory ({path}). Give a search run "
                f"directory (with {KNEE_FILE}), a designs/*_layers.csv file, or "
                "genome.channels=[...] instead."
            )
        defaults = OmegaConf.to_container(cfg.genome) if isinstance(cfg, DictConfig) else dict(
            cfg.get("genome") or {})
        genome = read_design(path, n_layers, defaults, int(cfg.get("design_row", 0)))
        return genome, f"design file {path}"
    return genome_from_config(cfg.get("genome") or {}, n_layers), "genome.* keys"


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train and evaluate the configured design; returns the ground-truth row."""
    data = DataSpec.from_config(cfg.data)
    spec = TrainSpec.from_config(cfg.train)
    backbone = Backbone(input_size=data.input_size, num_classes=data.num_classes)
    genome, source = resolve_genome(cfg, backbone.n_conv)
    xbar = CrossbarSpec.from_config(cfg.crossbar, cfg.hardware) if cfg.crossbar_eval else None
    cache_dir = cfg.get("cache_dir")
    splits = budget_splits(data, spec, cache_dir)
    log.info("training %s from %s on %s (%s, %d train / %d validation / %d test images)",
             genome.channels[0].tolist(), source, data.dataset, spec.fidelity(),
             len(splits.train), 0 if splits.val is None else len(splits.val), len(splits.test))
    row = measure_one(genome, data, spec, xbar, int(cfg.seed), backbone, splits,
                      cache_root(cache_dir) / "checkpoints",
                      bool(cfg.ground_truth.keep_checkpoints))
    row["note"] = source
    table = append_rows([row], default_path(cfg.ground_truth, cache_dir))
    row["table"] = str(table)
    return row


@hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    """The Hydra task (see the module docstring)."""
    try:
        row = run(cfg)
    except (ConfigError, DataError, FileNotFoundError, ValueError) as e:
        log.error("error: %s", e)
        sys.exit(2)
    out = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    (out / "result.json").write_text(json.dumps(row, indent=2, default=str))
    nonideal = row.get("nonideal_accuracy_pct")
    print(f"design        {row['channels']} ({row['note']})")
    print(f"budget        {row['fidelity']} on {row['dataset']}, device {row['device']}")
    if row.get("val_accuracy_pct") is not None:
        print(f"val acc       {row['val_accuracy_pct']:.2f} % ({row['val_images']} held-out "
              "training images; what models select on)")
    print(f"test acc      {row['accuracy_pct']:.2f} % ({row['test_images']} test images; "
          "reported only)")
    if nonideal is not None:
        print(f"crossbar acc  {nonideal:.2f} % at input_bits {row['input_bits']}, adc_bits "
              f"{row['adc_bits']} ({row['crossbar_test_images']} images; float "
              f"{row['reference_accuracy_pct']:.2f} % on them)")
    print(f"wall time     {row['wall_s']:.1f} s")
    print(f"appended to   {row['table']}; result in {out / 'result.json'}")


def main() -> None:
    """``python -m xpert_evo.train``: `hydra_main` with Hydra's input errors (an unknown key or
    option, a value of the wrong type) in one line, exit code 2 (`xpert_evo.schema.run_main`)."""
    run_main(hydra_main)


if __name__ == "__main__":
    main()

"""`python -m xpert_evo.source`: build (or extend) the measured-accuracy source.

Trains this shard's planned networks at the `train:` budget and appends their rows to
``<source.dir>/<dataset>-<fidelity>/shard-<k>-of-<n>.csv`` (see `xpert_evo.training.source` and
conf/source.yaml, typed by `xpert_evo.schema.apps.SourceConfig`). Run it as a Hydra multirun over
``source.shard`` to train shards in parallel. Bad input (an unknown key, a value of the wrong
type, a missing data set) ends with one line naming it, exit code 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from xpert_evo.config import ConfigError, conf_dir
from xpert_evo.schema import register, run_main
from xpert_evo.space import SearchSpace
from xpert_evo.space.backbone import Backbone
from xpert_evo.training.data import DataError, DataSpec
from xpert_evo.training.source import build_source, plan_from_config, read_source, source_dir
from xpert_evo.training.train import TrainSpec

log = logging.getLogger("xpert_evo.source")
register()  # the schemas conf/source.yaml names in its defaults lists (base_source, base_<group>)


@hydra.main(config_path=str(conf_dir()), config_name="source", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    """The Hydra task (see the module docstring)."""
    try:
        data = DataSpec.from_config(cfg.data)
        spec = TrainSpec.from_config(cfg.train)
        backbone = Backbone(input_size=data.input_size, num_classes=data.num_classes)
        space = SearchSpace.from_config(cfg.space, backbone.n_conv)
        plan = plan_from_config(cfg.source, space.allowed()["channels"], backbone.n_conv)
        folder = source_dir(Path(str(cfg.source.dir)) if cfg.source.dir else None, data, spec)
        path = build_source(plan, data, spec, folder, int(cfg.source.shard),
                            int(cfg.source.n_shards), cfg.get("cache_dir"))
    except (ConfigError, DataError, ValueError) as e:
        log.error("error: %s", e)
        sys.exit(2)
    table = read_source([folder])
    print(f"source {folder}: {len(table)} rows in {len(list(folder.glob('*.csv')))} shard files; "
          f"this shard's file: {path}")


def main() -> None:
    """``python -m xpert_evo.source``: `hydra_main` with Hydra's input errors (an unknown key or
    option, a value of the wrong type) in one line, exit code 2 (`xpert_evo.schema.run_main`)."""
    run_main(hydra_main)


if __name__ == "__main__":
    main()

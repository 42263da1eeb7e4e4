"""`python -m xpert_evo.precision`: build (or extend) the precision-loss table.

For the first ``precision.n_networks`` networks of a data set's measured source (or those
``precision.net_ids`` names; fit and held-out networks alike, each keeping its source role), loads
the network trained at seed ``precision.train_seed`` from the checkpoint cache the source build
filled (or trains it at the source's budget when missing; seeds > 0 make a replicate table),
maps it onto crossbars (the search's default hardware and crossbar configs) and evaluates it at
``precision.settings`` precision settings on ``precision.images`` test images, paired with the
float network on the same images. Rows go to
``<precision.dir>/<dataset>-<fidelity>/shard-<k>-of-<n>.csv`` as they are measured
(`xpert_evo.crossbar.loss_table`: settings, files, resumption, sharding). The source is the data
set's default one (``precision.training`` null: the budget `SOURCE_TRAINING` names), or the one
trained at the conf/training preset ``precision.training`` names, in the packaged sources or in
``precision.source_dir``. Configuration: conf/precision.yaml, typed by
`xpert_evo.schema.apps.PrecisionConfig`. Bad input (an unknown key, a value of the wrong type or
outside the searched ranges, a missing data set or source) ends with one line naming it, exit
code 2.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from xpert_evo.config import ConfigError, conf_dir, plain_config
from xpert_evo.crossbar.evaluate import PairedEvaluator
from xpert_evo.crossbar.loss_table import (
    PrecisionPlan,
    SourceNetwork,
    TableRun,
    build_table,
    read_front,
    read_table,
    source_networks,
    table_dir,
)
from xpert_evo.crossbar.quantise import CrossbarSpec
from xpert_evo.schema import group_node, register, run_main
from xpert_evo.space import SearchSpace
from xpert_evo.space.backbone import Backbone
from xpert_evo.training.data import DataError, DataSpec, cache_root
from xpert_evo.training.groundtruth import checkpoint_path, load_checkpoint, save_checkpoint
from xpert_evo.training.network import torch_threads
from xpert_evo.training.source import SOURCE_TRAINING, find_source
from xpert_evo.training.train import Splits, TrainSpec, budget_splits, train_network

log = logging.getLogger("xpert_evo.precision")
register()  # the schemas conf/precision.yaml names in its defaults lists (base_precision, ...)

TABLES = "precision_loss"
"""Folder of the tables inside the cache when ``precision.dir`` is null."""


def source_spec(dataset: str, training: str | None, num_threads: int | None,
                device: str) -> TrainSpec:
    """The training budget of the source the table is built on: the conf/training preset
    `training` (None: the data set's default source's, `SOURCE_TRAINING`), with this command's
    threads and device (neither changes the budget's fidelity).

    Raises:
        ConfigError: no default source for the data set, or no such preset.
    """
    if training is None:
        if dataset not in SOURCE_TRAINING:
            raise ConfigError(f"data.dataset={dataset} has no default source; name its budget "
                              f"with precision.training=<conf/training preset>")
        training = SOURCE_TRAINING[dataset]
    node = group_node("training", training, "train")
    return TrainSpec.from_config({**node, "num_threads": num_threads, "device": device})


def network_loader(data: DataSpec, spec: TrainSpec, xbar: CrossbarSpec, splits: Splits,
                   checkpoints: Path, seed: int = 0) -> Callable[[SourceNetwork], PairedEvaluator]:
    """A function that gives a source network mapped onto crossbars: its weights trained at
    `seed` from the checkpoint the source build kept (`checkpoint_path`), or trained at `spec`
    and kept there when missing."""
    backbone = Backbone(input_size=data.input_size, num_classes=data.num_classes)

    def load(net: SourceNetwork) -> PairedEvaluator:
        channels = list(net.channels)
        ckpt = checkpoint_path(channels, data, spec, seed, checkpoints)
        if ckpt.is_file():
            model, _ = load_checkpoint(ckpt, channels, backbone, spec)
        else:
            log.info("net %d: no checkpoint (%s); training it at %s, seed %d", net.net_id,
                     ckpt.name, spec.fidelity(), seed)
            result = train_network(channels, data, spec, seed, train_split=splits.train,
                                   test_split=splits.test, val_split=splits.val)
            save_checkpoint(result.model, result.measured(), ckpt, result.wall_s)
            log.info("net %d: trained in %.0f s, val %.2f %% (source: %.2f %%)", net.net_id,
                     result.wall_s, result.val_accuracy_pct or float("nan"),
                     net.val_accuracy_pct)
            model = result.model
        return PairedEvaluator(model, xbar, splits.test, splits.train, spec.device)

    return load


@hydra.main(config_path=str(conf_dir()), config_name="precision", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    """The Hydra task (see the module docstring)."""
    node = plain_config(cfg.precision)
    try:
        data = DataSpec.from_config(cfg.data)
        spec = source_spec(data.dataset, node["training"], node["num_threads"], node["device"])
        data = spec.trained_data(data)
        backbone = Backbone(input_size=data.input_size, num_classes=data.num_classes)
        space = SearchSpace.from_config(cfg.space, backbone.n_conv)
        front = () if node["front"] is None else read_front(
            node["front"], space.options["input_bits"], space.options["adc_bits"],
            backbone.n_conv)
        plan = PrecisionPlan(int(node["settings"]), space.options["input_bits"],
                             space.options["adc_bits"], backbone.n_conv, int(node["seed"]),
                             node["sweep_input_bits"], node["sweep_adc_bits"], front,
                             int(node["front_settings"]))
        if int(node["images"]) < 2:
            raise ConfigError(f"precision.images={node['images']} must be >= 2")
        xbar = CrossbarSpec.from_config({**plain_config(cfg.crossbar),
                                         "test_images": int(node["images"])}, cfg.hardware)
        _, source = find_source(data.dataset, spec.fidelity(), node["source_dir"])
        networks = source_networks(source, int(node["n_networks"]), node["net_ids"])
        train_seed = int(node["train_seed"])
        if train_seed < 0:
            raise ConfigError(f"precision.train_seed={train_seed} must be >= 0")
        root = node["dir"] or cache_root(cfg.get("cache_dir")) / TABLES
        run = TableRun(table_dir(root, data.dataset, spec.fidelity(), train_seed),
                       data.dataset, spec.fidelity(), int(node["images"]), xbar.weight_encoding,
                       int(node["shard"]), int(node["n_shards"]))
        with torch_threads(spec.num_threads):
            splits = budget_splits(data, spec, cfg.get("cache_dir"))
            loader = network_loader(data, spec, xbar, splits,
                                    cache_root(cfg.get("cache_dir")) / "checkpoints",
                                    train_seed)
            made = build_table(networks, plan, run, loader)
    except (ConfigError, DataError, ValueError) as e:
        log.error("error: %s", e)
        sys.exit(2)
    table = read_table(run.folder)
    print(f"precision table {run.folder}: {len(table)} rows of {table['net_id'].nunique()} "
          f"networks; this shard measured {made} and writes {run.path}")


def main() -> None:
    """``python -m xpert_evo.precision``: `hydra_main` with Hydra's input errors (an unknown key
    or option, a value of the wrong type) in one line, exit code 2 (`xpert_evo.schema.run_main`)."""
    run_main(hydra_main)


if __name__ == "__main__":
    main()

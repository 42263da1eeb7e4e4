"""Search space: encoding round trips, vector layout, baseline, validation messages."""

from __future__ import annotations

import numpy as np
import pytest
from support import genomes_from_stack

from xpert_evo.config import ConfigError
from xpert_evo.schema import check_config, group_node
from xpert_evo.space import SearchSpace
from xpert_evo.space.backbone import VGG16_CHANNELS
from xpert_evo.space.genome import GENE_NAMES, GeneError, Genomes


def space_cfg(**changes: object) -> dict:
    """The node of conf/space/default.yaml (composed by Hydra through its schema), changed."""
    return {**group_node("space", "default"), **changes}


@pytest.fixture()
def space() -> SearchSpace:
    return SearchSpace.from_config(space_cfg(), 13)


def test_vector_round_trip(space: SearchSpace) -> None:
    x = space.random(500, np.random.default_rng(0))
    genomes = space.decode(x)
    assert genomes.n == 500 and genomes.n_layers == 13
    np.testing.assert_array_equal(space.encode(genomes), x)
    assert space.n_var == 65
    assert np.all((x >= space.xl) & (x <= space.xu))


def test_genome_round_trip_and_layout(space: SearchSpace) -> None:
    genome = Genomes.uniform([64, 128, 256, 512] * 3 + [64], 16, "sar", 4, 3)
    x = space.encode(genome)
    back = space.decode(x)
    np.testing.assert_array_equal(back.stack(), genome.stack())
    # gene-major layout: x[g * L + l] indexes gene g of layer l in its option list
    assert x[0, 1] == 1  # channels of layer 2 = 128 = index 1
    assert x[0, 13 + 5] == space.options["col_share"].index(16)
    assert x[0, 2 * 13] == space.options["adc_flash"].index(0)  # sar


def test_option_lists_sorted_and_adc_order_kept() -> None:
    space = SearchSpace.from_config(space_cfg(channels=[512, 64], adc_type=["sar", "flash"]), 13)
    assert space.options["channels"] == (64, 512)
    assert space.options["adc_flash"] == (0, 1)


def test_baseline_is_vgg16(space: SearchSpace) -> None:
    base = space.baseline
    assert space.baseline_name == "VGG16"
    assert tuple(base.channels[0]) == VGG16_CHANNELS
    assert set(base.col_share[0]) == {8} and set(base.adc_flash[0]) == {1}
    assert set(base.adc_bits[0]) == {6} and set(base.input_bits[0]) == {8}


def test_baseline_may_lie_outside_the_options() -> None:
    space = SearchSpace.from_config(space_cfg(channels=[64, 128]), 13)
    assert space.baseline.channels.max() == 512
    with pytest.raises(GeneError, match="channels=256"):
        space.validate(space.baseline)


@pytest.mark.parametrize("key", ["channels", "col_share", "adc_type", "adc_bits", "input_bits"])
def test_empty_option_set_names_the_key(key: str) -> None:
    with pytest.raises(ConfigError, match=f"space.{key} is empty"):
        SearchSpace.from_config(space_cfg(**{key: []}), 13)


def test_unknown_and_bad_keys() -> None:
    with pytest.raises(ConfigError, match="unknown config key space.chanels"):
        check_config({"space": space_cfg(chanels=[64])})
    with pytest.raises(ConfigError, match="space.adc_type"):
        SearchSpace.from_config(space_cfg(adc_type=["flash", "pipeline"]), 13)
    with pytest.raises(ConfigError, match="space.adc_bits"):
        SearchSpace.from_config(space_cfg(adc_bits=[3, 0]), 13)
    cfg = space_cfg()
    cfg["baseline"]["channels"] = [64, 64]
    with pytest.raises(ConfigError, match="space.baseline.channels has 2 values"):
        SearchSpace.from_config(cfg, 13)


def test_validate_names_genome_layer_gene_and_allowed(space: SearchSpace) -> None:
    genomes = space.decode(space.random(3, np.random.default_rng(1)))
    bad = genomes.stack()
    bad[2, 4, GENE_NAMES.index("adc_bits")] = 9
    message = r"genome 2, layer 5: gene adc_bits=9 .*\[3, 4, 5, 6, 7, 8\]"
    with pytest.raises(GeneError, match=message):
        space.encode(genomes_from_stack(bad))
    with pytest.raises(GeneError, match="outside 0..3"):
        space.decode(np.full((1, 65), 4))


def test_uniform_grid_covers_every_combination(space: SearchSpace) -> None:
    grid = space.uniform_grid()
    assert grid.n == 4 * 5 * 2 * 6 * 7
    assert len(np.unique(grid.stack()[:, 0, :], axis=0)) == grid.n
    space.validate(grid)


def test_seeds_carry_the_baseline_peripherals_snapped_to_the_options() -> None:
    baseline = {**space_cfg()["baseline"], "col_share": 64, "adc_type": "sar", "input_bits": 5}
    space = SearchSpace.from_config(
        space_cfg(baseline=baseline, adc_type=["flash"], input_bits=[4, 6, 8]), 13
    )
    x = space.seeds(9, np.random.default_rng(0))
    assert len(x) == 9 and len(np.unique(x, axis=0)) == 9
    genomes = space.decode(x)
    assert (genomes.col_share == 32).all()  # 64 is not an option: the nearest, 32
    assert (genomes.adc_flash == 1).all()  # SAR is not allowed: the first allowed type
    assert (genomes.input_bits == 4).all()  # 5 lies between 4 and 6: ties go to the smaller
    assert (genomes.adc_bits == 6).all()
    widths = sorted(space.options["channels"])
    np.testing.assert_array_equal(genomes.channels[:4], np.repeat(widths, 13).reshape(4, 13))
    np.testing.assert_array_equal(genomes.channels[4], VGG16_CHANNELS)
    assert np.isin(genomes.channels[5:], widths).all()
    assert len(space.seeds(3, np.random.default_rng(0))) == 3


def test_backbone_macs_count_what_the_built_network_computes() -> None:
    import torch

    from xpert_evo.space.backbone import Backbone
    from xpert_evo.training.network import build_network

    backbone = Backbone(input_size=64, num_classes=200)
    channels = np.array([[64, 128, 64, 256, 128, 64, 512, 64, 128, 256, 64, 512, 128],
                         list(VGG16_CHANNELS)])
    counted = []
    for row in channels:
        macs = []
        net = build_network(row.tolist(), backbone)
        for layer in net.modules():
            if isinstance(layer, torch.nn.Conv2d):
                layer.register_forward_hook(lambda m, x, y, macs=macs: macs.append(
                    y.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]))
            elif isinstance(layer, torch.nn.Linear):
                layer.register_forward_hook(lambda m, x, y, macs=macs: macs.append(
                    m.in_features * m.out_features))
        net.eval()(torch.zeros(1, 3, 64, 64))
        counted.append(sum(macs))
    np.testing.assert_array_equal(backbone.macs(channels), counted)
    assert backbone.macs(channels[0]).shape == ()

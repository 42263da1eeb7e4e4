"""The hardware cost model: against NeuroSim, physics, clocking/encoding, consistency, errors,
export."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
from support import genomes_from_stack

from xpert_evo.hardware import (
    COMPONENTS,
    CostModel,
    HardwareConfig,
    load_hardware_config,
    neurosim_rows,
    write_neurosim_csv,
)
from xpert_evo.hardware.config import HardwareConfigError
from xpert_evo.hardware.layers import cost_table
from xpert_evo.hardware.reference import GENE_COLUMNS, METRICS
from xpert_evo.hardware.validation import (
    FIT_GROUPS,
    SHAPE_COLUMNS,
    all_rows_summary,
    energy_parts_summary,
    fit,
    shape_splits,
    split_errors,
    split_summary,
    trend_check,
)
from xpert_evo.schema import group_node
from xpert_evo.space import SearchSpace
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone
from xpert_evo.space.genome import GeneError, Genomes

ADC = COMPONENTS.index("adc")
SPACE = SearchSpace.from_config(group_node("space", "default"), 13)
OPTIONS = SPACE.allowed()


@pytest.fixture(scope="module")
def model() -> CostModel:
    return CostModel(load_hardware_config(), Backbone())


def random_genomes(n: int, seed: int = 0) -> Genomes:
    return SPACE.decode(SPACE.random(n, np.random.default_rng(seed)))


def vgg(col_share: int = 8, adc: str = "flash", adc_bits: int = 6, input_bits: int = 4) -> Genomes:
    return Genomes.uniform(VGG16_CHANNELS, col_share, adc, adc_bits, input_bits)


# ---------------------------------------------------------------- against NeuroSim
def test_shipped_constants_meet_the_reference(reference) -> None:
    table = all_rows_summary(load_hardware_config(), reference).set_index("metric")
    for metric in METRICS:
        assert table.loc[metric, "median_ape_pct"] <= 10, table.to_string()
        assert table.loc[metric, "p90_ape_pct"] <= 25, table.to_string()
        assert table.loc[metric, "spearman"] >= 0.95, table.to_string()


def test_held_out_rows_meet_the_targets(reference) -> None:
    table = split_summary(split_errors(load_hardware_config(), reference, splits=2, seed=1))
    held = table[(table.rows == "held-out") & table.metric.isin(METRICS)]
    assert len(held) == 4
    assert (held.median_ape_pct <= 10).all() and (held.spearman >= 0.95).all(), held.to_string()
    assert (held.set_index("metric").loc[["energy_pj", "latency_ns"], "p90_ape_pct"] <= 25).all(), (
        held.to_string()
    )


def test_every_energy_part_meets_its_reference_figure(reference) -> None:
    # ADC, accumulation, buffers, interconnect and column muxes, each against NeuroSim's own
    # figure for that part: the total is right for the right reasons
    parts = energy_parts_summary(load_hardware_config(), reference)
    assert len(parts) == 5, parts.to_string()
    assert (parts.median_ape_pct <= 10).all() and (parts.p90_ape_pct <= 20).all(), parts.to_string()


def test_splits_hold_out_whole_shapes(reference) -> None:
    shape = reference[list(SHAPE_COLUMNS)].apply(tuple, axis=1)
    base = set(shape[reference.groups.apply(lambda g: "base" in g)])
    splits = shape_splits(reference, 5, seed=0)
    assert len(splits) == 5
    for fitted, held in splits:
        assert set(shape.iloc[fitted]).isdisjoint(shape.iloc[held])
        assert base <= set(shape.iloc[fitted])
        assert len(fitted) + len(held) == len(reference)


def test_every_sweep_step_has_the_reference_direction(reference) -> None:
    trends = trend_check(load_hardware_config(), reference)
    assert len(trends) == 200
    assert trends.agrees.all(), trends[~trends.agrees].to_string()


def test_fit_recovers_the_shipped_constants(reference) -> None:
    hw = load_hardware_config()
    fitted = fit(hw, reference)
    for key in FIT_GROUPS["clock_ns"] + FIT_GROUPS["area_mm2"]:
        assert getattr(fitted, key) == pytest.approx(getattr(hw, key), rel=1e-3, abs=1e-9), key


def test_reference_tiling_and_duplication(reference) -> None:
    costed = cost_table(
        replace(load_hardware_config(), weight_encoding="offset"),
        reference[list(GENE_COLUMNS)],
        breakdown=True,
    )
    np.testing.assert_array_equal(costed.tiles, reference.tiles_real)
    np.testing.assert_array_equal(costed.duplication, reference.speedup_real)


# ---------------------------------------------------------------- physics
def test_read_energy_grows_with_column_sharing(model: CostModel) -> None:
    energy = [model.evaluate(vgg(m)).energy_pj[0] for m in (2, 4, 8, 16, 32)]
    assert energy[-1] > energy[2] > energy[1]


def test_flash_clock_slows_with_bits_sar_clock_is_bits_plus_one_ns(model: CostModel) -> None:
    flash = [model.evaluate(vgg(8, "flash", b)).clock_period_ns[0] for b in range(3, 9)]
    assert all(a < b for a, b in zip(flash, flash[1:], strict=False))
    sar = np.array([model.evaluate(vgg(8, "sar", b)).clock_period_ns[0] for b in range(3, 9)])
    np.testing.assert_allclose(np.diff(sar), 1.4 * load_hardware_config().sar_delay_per_cycle_ns,
                               rtol=1e-4)


def test_more_column_sharing_less_adc_area_more_sensing_cycles(model: CostModel) -> None:
    reports = [model.evaluate(vgg(m)) for m in (2, 4, 8, 16, 32)]
    adc_area = [r.layer_area_mm2[0, :, ADC].sum() for r in reports]
    assert all(a > b for a, b in zip(adc_area, adc_area[1:], strict=False))
    cycles = [(r.layer_latency_ns[0, :, ADC] / r.layer_clock_ns[0]).sum() for r in reports]
    assert all(a < b for a, b in zip(cycles, cycles[1:], strict=False))


def test_energy_affine_in_input_bits(model: CostModel) -> None:
    total = np.array([model.evaluate(vgg(8, "sar", 6, b)).energy_pj[0] for b in range(2, 9)])
    np.testing.assert_allclose(np.diff(total.astype(np.float64), 2), 0.0, atol=1e-4 * total.max())


def test_wider_layers_need_more_crossbars(model: CostModel) -> None:
    narrow = model.evaluate(Genomes.uniform([64] * 13, 8, "flash", 6, 4))
    wide = model.evaluate(Genomes.uniform([512] * 13, 8, "flash", 6, 4))
    assert (wide.crossbars[0, 1:13] > narrow.crossbars[0, 1:13]).all()
    assert wide.area_mm2[0] > narrow.area_mm2[0]


def test_leakage_is_apart_from_dynamic_energy(model: CostModel) -> None:
    rep = model.evaluate(vgg())
    assert 0 < rep.leakage_pj[0] < 0.2 * rep.energy_pj[0]
    np.testing.assert_allclose(rep.layer_energy_pj.sum(), rep.energy_pj[0], rtol=1e-5)


# ---------------------------------------------------------------- clocking and encoding
def test_layer_clocking_never_slower_than_chip_and_equal_when_homogeneous() -> None:
    hw = load_hardware_config()
    layer = CostModel(replace(hw, clocking="layer"), Backbone())
    chip = CostModel(replace(hw, clocking="chip"), Backbone())
    genomes = random_genomes(300, seed=7)  # heterogeneous peripheral genes
    fast, slow = layer.evaluate(genomes), chip.evaluate(genomes)
    assert (fast.latency_ns <= slow.latency_ns * (1 + 1e-6)).all()
    assert (fast.latency_ns < slow.latency_ns).mean() > 0.9
    np.testing.assert_array_equal(fast.energy_pj, slow.energy_pj)
    np.testing.assert_array_equal(fast.clock_period_ns, slow.clock_period_ns)
    mixed = genomes_from_stack(vgg().stack().copy())
    mixed.adc_flash[0, 5] = 0  # one SAR layer slows the whole chip, only that layer per-layer
    assert chip.evaluate(mixed).latency_ns[0] > 1.5 * layer.evaluate(mixed).latency_ns[0]
    for g in (vgg(), vgg(4, "sar", 5, 3)):
        np.testing.assert_allclose(layer.evaluate(g).latency_ns, chip.evaluate(g).latency_ns)


def test_offset_is_the_default_and_differential_doubles_the_columns() -> None:
    hw = load_hardware_config()
    assert hw.weight_encoding == "offset"  # NeuroSim's; the crossbar simulation reads this key too
    diff = CostModel(replace(hw, weight_encoding="differential"), Backbone()).evaluate(vgg())
    offset = CostModel(hw, Backbone()).evaluate(vgg())
    # conv4 128 -> 128: 18 row blocks x (2 x 128 x 2 / 64 = 8) vs 4 column blocks
    assert diff.crossbars[0, 3] == 2 * offset.crossbars[0, 3] == 144
    assert (diff.crossbars[0, 1:13] == 2 * offset.crossbars[0, 1:13]).all()
    assert diff.area_mm2[0] > 1.5 * offset.area_mm2[0] and diff.energy_pj[0] > offset.energy_pj[0]


# ---------------------------------------------------------------- consistency
def test_breakdowns_sum_to_totals(model: CostModel) -> None:
    rep = model.evaluate(random_genomes(200))
    np.testing.assert_allclose(rep.layer_area_mm2.sum(axis=(1, 2)), rep.area_mm2, rtol=1e-5)
    np.testing.assert_allclose(rep.layer_energy_pj.sum(axis=(1, 2)), rep.energy_pj, rtol=1e-5)
    np.testing.assert_allclose(rep.layer_latency_ns.sum(axis=(1, 2)), rep.latency_ns, rtol=1e-5)
    np.testing.assert_allclose(rep.edap, rep.energy_pj * rep.latency_ns * rep.area_mm2, rtol=1e-5)
    frame = rep.layer_frame(3)
    assert len(frame) == 14 and frame.layer.iloc[-1] == "classifier"
    np.testing.assert_allclose(frame.energy_pj.sum(), rep.energy_pj[3], rtol=1e-5)


def test_totals_mode_equals_breakdown_mode(model: CostModel) -> None:
    genomes = random_genomes(500, seed=3)
    full = model.evaluate(genomes)
    fast = model.evaluate(genomes, breakdown=False)
    assert fast.layer_energy_pj is None
    np.testing.assert_array_equal(fast.edap, full.edap)


def test_one_genome_alone_equals_it_inside_a_batch_of_10000(model: CostModel) -> None:
    genomes = random_genomes(10_000, seed=1)
    batch = model.evaluate(genomes)
    for i in (0, 4321, 9999):
        alone = model.evaluate(genomes[i])
        for name in ("area_mm2", "energy_pj", "latency_ns", "edap", "tops_per_w", "tops_per_mm2"):
            np.testing.assert_array_equal(getattr(alone, name), getattr(batch, name)[i : i + 1])
        np.testing.assert_array_equal(alone.layer_energy_pj, batch.layer_energy_pj[i : i + 1])


def test_classifier_is_costed(model: CostModel) -> None:
    rep = model.evaluate(vgg())
    assert rep.tiles.shape == (1, 14)
    assert rep.layer_energy_pj[0, -1].sum() > 0 and rep.layer_area_mm2[0, -1].sum() > 0
    tiny = CostModel(load_hardware_config(), Backbone(input_size=64, num_classes=200))
    assert tiny.evaluate(vgg()).crossbars[0, -1] > rep.crossbars[0, -1]


def test_second_hardware_config_changes_the_mapping() -> None:
    big = CostModel(load_hardware_config("rram_128x128_2bit"), Backbone())
    small = CostModel(load_hardware_config(), Backbone())
    # conv4: 1152 rows x 128 weights; 64x64 with 2 cells/weight -> 18 x 4, 128x128 with 4 -> 9 x 4
    assert small.evaluate(vgg()).crossbars[0, 3] == 72  # offset: 18 row x 4 column blocks
    assert big.evaluate(vgg()).crossbars[0, 3] == 36  # 9 row blocks x 4 column blocks


def test_smallest_area_is_a_lower_bound(model: CostModel) -> None:
    smallest = model.smallest_area_mm2(OPTIONS)
    assert smallest > 0
    assert model.evaluate(random_genomes(2000, seed=5), breakdown=False).area_mm2.min() >= smallest


# ---------------------------------------------------------------- errors
def test_gene_outside_allowed_set_names_layer_gene_and_values() -> None:
    genomes = random_genomes(3)
    genomes.col_share[1, 6] = 3
    with pytest.raises(
        GeneError, match=r"genome 1, layer 7: gene col_share=3.*\[2, 4, 8, 16, 32\]"
    ):
        genomes.validate(OPTIONS, n_layers=13)


def test_layer_count_mismatch_is_an_error(model: CostModel) -> None:
    short = Genomes.uniform([64] * 12, 8, "flash", 6, 4)
    with pytest.raises(GeneError, match="12 layers but the backbone has 13"):
        short.validate(OPTIONS, n_layers=13)
    with pytest.raises(ValueError, match="12 layers but the backbone has 13"):
        model.evaluate(short)


def test_unknown_hardware_key_names_key_and_allowed() -> None:
    cfg = load_hardware_config().to_dict() | {"xbar_size": 64}
    with pytest.raises(HardwareConfigError,
                       match=r"unknown config key hardware\.xbar_size; allowed keys there are.*"
                             "xbar_rows"):
        HardwareConfig.from_config(cfg)
    with pytest.raises(HardwareConfigError, match="config key hardware.xbar_cols is missing"):
        HardwareConfig.from_config({k: v for k, v in cfg.items() if k not in ("xbar_cols",
                                                                              "xbar_size")})
    with pytest.raises(HardwareConfigError, match="hardware.xbar_rows: Value 'wide'"):
        HardwareConfig.from_config(load_hardware_config().to_dict() | {"xbar_rows": "wide"})
    with pytest.raises(HardwareConfigError, match="known configs are"):
        load_hardware_config("no_such_chip")


# ---------------------------------------------------------------- export
def test_neurosim_csv_export(tmp_path) -> None:
    genome = Genomes.uniform(VGG16_CHANNELS, 16, "sar", 5, 3)
    path = write_neurosim_csv(genome, Backbone(), tmp_path / "net.csv")
    with path.open() as fh:
        rows = [list(map(int, r)) for r in csv.reader(fh)]
    assert len(rows) == 14 and all(len(r) == 12 for r in rows)
    assert rows[0] == [34, 34, 3, 3, 3, 64, 0, 1, 16, 0, 3, 32]
    assert rows[1][6] == 1 and rows[2][:2] == [18, 18]  # pool after conv2 halves the next input
    assert rows[-1][:6] == [1, 1, 512, 1, 1, 10]
    np.testing.assert_array_equal(neurosim_rows(genome, Backbone()), np.array(rows))

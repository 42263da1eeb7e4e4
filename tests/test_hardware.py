"""The hardware cost model: calibration against NeuroSim, physics, consistency, errors, export."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml

from xpert_evo.hardware import (
    COMPONENTS,
    CostModel,
    HardwareConfig,
    load_hardware_config,
    neurosim_rows,
    write_neurosim_csv,
)
from xpert_evo.hardware.config import HardwareConfigError
from xpert_evo.hardware.reference import TEST_LAYER_INDEX, reference_genome
from xpert_evo.hardware.validation import compare_to_reference
from xpert_evo.space import SearchSpace
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone
from xpert_evo.space.genome import GeneError, Genomes

ADC = COMPONENTS.index("adc")
SPACE = SearchSpace.from_config(
    yaml.safe_load((Path(__file__).resolve().parents[1] / "conf/space/default.yaml").read_text()),
    13,
)
OPTIONS = SPACE.allowed()


@pytest.fixture(scope="module")
def model() -> CostModel:
    return CostModel(load_hardware_config(), Backbone())


def random_genomes(n: int, seed: int = 0) -> Genomes:
    return SPACE.decode(SPACE.random(n, np.random.default_rng(seed)))


def vgg(col_share: int = 8, adc: str = "flash", adc_bits: int = 6, input_bits: int = 4) -> Genomes:
    return Genomes.uniform(VGG16_CHANNELS, col_share, adc, adc_bits, input_bits)


# ---------------------------------------------------------------- calibration
def test_tile_area_within_10_percent_of_neurosim() -> None:
    table = compare_to_reference()
    tiles = table[table.quantity.str.startswith("tile area")]
    assert len(tiles) == 10
    assert (tiles.rel_error.abs() < 0.10).all(), tiles.to_string()


def test_vgg16_energy_latency_tops_per_w_within_25_percent() -> None:
    table = compare_to_reference()
    vgg16 = table[table.quantity.str.startswith("VGG16")]
    assert len(vgg16) == 5  # energy and latency for flash and SAR, and the TOPS/W ratio
    assert (vgg16.rel_error.abs() < 0.25).all(), vgg16.to_string()


def test_clock_period_and_test_layer_cycles_match_neurosim() -> None:
    table = compare_to_reference()
    rows = table[table.quantity.str.contains("clock period|cycles")]
    assert len(rows) == 5
    assert (rows.rel_error.abs() < 0.10).all(), rows.to_string()


# ---------------------------------------------------------------- physics
def test_more_column_sharing_less_adc_area_more_sensing_cycles(model: CostModel) -> None:
    shares = [2, 4, 8, 16, 32]
    reports = [model.evaluate(vgg(m)) for m in shares]
    adc_area = [r.layer_area_mm2[0, :, ADC].sum() for r in reports]
    assert all(a > b for a, b in zip(adc_area, adc_area[1:], strict=False))
    # sensing cycles = ADC latency share / (ADC delay / path) / period: compare via the ADC time
    # at a fixed clock, i.e. latency of ADC conversions divided by the clock period
    cycles = [r.layer_latency_ns[0, :, ADC].sum() / r.clock_period_ns[0] for r in reports]
    assert all(a < b for a, b in zip(cycles, cycles[1:], strict=False))


def test_flash_area_exponential_sar_area_linear_in_adc_bits(model: CostModel) -> None:
    bits = np.arange(3, 9)
    flash = np.array(
        [model.evaluate(vgg(8, "flash", b)).layer_area_mm2[0, :, ADC].sum() for b in bits]
    )
    sar = np.array([model.evaluate(vgg(8, "sar", b)).layer_area_mm2[0, :, ADC].sum() for b in bits])
    np.testing.assert_allclose(
        flash[1:] / flash[:-1], (2.0 ** bits[1:] - 1) / (2.0 ** bits[:-1] - 1), rtol=1e-5
    )
    steps = np.diff(sar)
    np.testing.assert_allclose(steps, steps[0], rtol=1e-4)
    assert steps[0] > 0


def test_energy_linear_in_input_bits(model: CostModel) -> None:
    p = np.arange(2, 9)
    reports = [model.evaluate(vgg(8, "sar", 6, b)) for b in p]
    adc = np.array([r.layer_energy_pj[0, :, ADC].sum() for r in reports])
    np.testing.assert_allclose(adc / p, adc[0] / p[0], rtol=1e-5)  # ADC energy proportional
    total = np.array([r.energy_pj[0] for r in reports], dtype=np.float64)
    np.testing.assert_allclose(np.diff(total, 2), 0.0, atol=1e-4 * total.max())  # affine


def test_wider_layers_need_more_crossbars(model: CostModel) -> None:
    narrow = model.evaluate(Genomes.uniform([64] * 13, 8, "flash", 6, 4))
    wide = model.evaluate(Genomes.uniform([512] * 13, 8, "flash", 6, 4))
    assert (wide.crossbars[0, 1:13] > narrow.crossbars[0, 1:13]).all()
    assert wide.area_mm2[0] > narrow.area_mm2[0]


def test_latency_lowest_at_intermediate_column_sharing(model: CostModel) -> None:
    latency = [
        model.evaluate(reference_genome("flash", m)).layer_latency_ns[0, TEST_LAYER_INDEX].sum()
        for m in (2, 4, 8, 16, 32)
    ]
    assert int(np.argmin(latency)) in (2, 3)  # m = 8 or 16, as NeuroSim


def test_synchronous_clock_is_set_by_slowest_layer(model: CostModel) -> None:
    genome = vgg(8, "flash", 6, 4)
    slow = Genomes.from_stack(genome.stack().copy())
    slow.adc_flash[0, 5] = 0  # one SAR layer slows the whole chip
    assert model.evaluate(slow).clock_period_ns[0] > 3 * model.evaluate(genome).clock_period_ns[0]


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
    assert small.evaluate(vgg()).crossbars[0, 3] == 72
    assert big.evaluate(vgg()).crossbars[0, 3] == 36


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
    with pytest.raises(HardwareConfigError, match=r"xbar_size.*allowed keys are.*xbar_rows"):
        HardwareConfig.from_config(cfg)
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

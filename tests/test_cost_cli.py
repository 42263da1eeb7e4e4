"""The cost command: outputs for layer tables, pareto.csv and NeuroSim network CSVs; bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xpert_evo.hardware import CostModel, load_hardware_config, write_neurosim_csv
from xpert_evo.hardware.cli import main
from xpert_evo.hardware.layers import OUTPUT_COLUMNS
from xpert_evo.hardware.reference import COMPARED, GENE_COLUMNS
from xpert_evo.report.results import gene_frame
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone
from xpert_evo.space.genome import Genomes

BASE = {
    "cin": 128,
    "cout": 128,
    "out_map": 16,
    "col_share": 8,
    "adc_type": "flash",
    "adc_bits": 6,
    "input_bits": 4,
}


def write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "layers.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_layer_table_reproduces_the_reference(tmp_path: Path, reference) -> None:
    path = tmp_path / "ref.csv"
    reference[["run_id", *GENE_COLUMNS]].to_csv(path, index=False)
    out = tmp_path / "out.csv"
    assert main([str(path), "--out", str(out), "weight_encoding=offset"]) == 0
    costed = pd.read_csv(out)
    assert list(costed.columns) == ["run_id", *GENE_COLUMNS, *OUTPUT_COLUMNS]
    for metric in ("area_mm2", "energy_pj", "latency_ns", "clock_ns"):
        error = np.abs(costed[metric] / reference[COMPARED[metric]] - 1)
        assert np.median(error) < 0.10, metric


def test_hardware_override_changes_the_result(tmp_path: Path) -> None:
    path = write(tmp_path, [BASE])
    diff, offset = tmp_path / "d.csv", tmp_path / "o.csv"
    assert main([str(path), "--out", str(diff), "weight_encoding=differential"]) == 0
    assert main([str(path), "--out", str(offset)]) == 0  # the default
    d, o = pd.read_csv(diff).iloc[0], pd.read_csv(offset).iloc[0]
    # 128 -> 128 fits 3 tiles either way; differential halves the duplication, doubles the reads
    assert d.area_mm2 == o.area_mm2
    assert d.energy_pj > 1.5 * o.energy_pj and d.latency_ns > o.latency_ns


def test_pareto_csv_equals_the_cost_model(tmp_path: Path, capsys) -> None:
    genomes = Genomes.concat(
        [
            Genomes.uniform(VGG16_CHANNELS, 8, "flash", 6, 4),
            Genomes.uniform([64] * 13, 16, "sar", 5, 3),
        ]
    )
    path = tmp_path / "pareto.csv"
    gene_frame(genomes).assign(design=[0, 1]).to_csv(path, index=False)
    out = tmp_path / "out.csv"
    assert main([str(path), "--out", str(out)]) == 0
    costed = pd.read_csv(out)
    rep = CostModel(load_hardware_config(), Backbone()).evaluate(genomes, breakdown=False)
    np.testing.assert_allclose(costed.edap, rep.edap, rtol=1e-6)
    np.testing.assert_allclose(costed.leakage_pj, rep.leakage_pj, rtol=1e-6)
    # a column sharing the crossbar cannot build is refused with the row, column and options
    gene_frame(genomes).assign(design=[0, 1], col_share_3=[8, 3]).to_csv(path, index=False)
    assert main([str(path), "--out", str(tmp_path / "bad.csv")]) == 2
    assert ("row 2, column 'col_share_3': 3 does not divide the 64 crossbar columns; allowed: 1, "
            "2, 4, 8, 16, 32, 64") in capsys.readouterr().err


def test_neurosim_network_csv_is_costed_per_layer(tmp_path: Path) -> None:
    genome = Genomes.uniform(VGG16_CHANNELS, 8, "flash", 6, 4)
    path = write_neurosim_csv(genome, Backbone(), tmp_path / "net.csv")
    out = tmp_path / "out.csv"
    assert main([str(path), "--out", str(out), "clocking=layer"]) == 0
    costed = pd.read_csv(out)
    assert len(costed) == 14 and "energy_pj" in costed
    rep = CostModel(load_hardware_config(), Backbone()).evaluate(genome)
    np.testing.assert_allclose(costed.area_mm2.sum(), rep.area_mm2[0], rtol=1e-5)
    np.testing.assert_allclose(costed.energy_pj.sum(), rep.energy_pj[0], rtol=1e-5)
    np.testing.assert_allclose(costed.latency_ns.sum(), rep.latency_ns[0], rtol=1e-5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"drop": "col_share"}, r"header: missing column 'col_share'"),
        ({"adc_type": "pipeline"}, r"row 2, column 'adc_type': 'pipeline'.*\['sar', 'flash'\]"),
        ({"col_share": 3}, r"row 2, column 'col_share': 3 does not divide the 64 crossbar "
                           r"columns; allowed: 1, 2, 4, 8, 16, 32, 64$"),
        ({"input_bits": 20}, r"row 2, column 'input_bits': 20 is outside the 2\.\.16 input "
                             r"bits the models support; allowed: 2\.\.16$"),
    ],
)
def test_bad_input_names_row_and_column(tmp_path: Path, capsys, change, message) -> None:
    bad = dict(BASE)
    if "drop" in change:
        rows = [{k: v for k, v in r.items() if k != change["drop"]} for r in (BASE, bad)]
    else:
        rows = [BASE, bad | change]
    status = main([str(write(tmp_path, rows)), "--out", str(tmp_path / "out.csv")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert pytest.importorskip("re").search(message, err), err
    assert not (tmp_path / "out.csv").exists()


def test_bad_hardware_key_exits_2(tmp_path: Path, capsys) -> None:
    assert (
        main([str(write(tmp_path, [BASE])), "--out", str(tmp_path / "o.csv"), "clocking=sometimes"])
        == 2
    )
    assert "clocking" in capsys.readouterr().err

"""Bad input to the commands that read a user's CSV (`python -m xpert_evo.predict`,
`python -m xpert_evo.cost`): every case exits with code 2 and one line naming the row and column
(or the file, argument or path) and the allowed values, writes nothing and loses nothing; good
input gives the numbers the models give."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sources import OPTIONS, write_source

from xpert_evo.accuracy.predictor import source_accuracy
from xpert_evo.hardware import CostModel, load_hardware_config, write_neurosim_csv
from xpert_evo.hardware.cli import main as cost_main
from xpert_evo.hardware.layers import (
    MAX_CHANNELS,
    MAX_KERNEL,
    MAX_MAP,
    OUTPUT_COLUMNS,
    cost_table,
)
from xpert_evo.predict import TRANSFER, penalty_for
from xpert_evo.predict import main as predict_main
from xpert_evo.report.results import gene_frame
from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone
from xpert_evo.space.genome import Genomes

VGG = "-".join(map(str, VGG16_CHANNELS))
LAYER_HEADER = "cin,cout,out_map,col_share,adc_type,adc_bits,input_bits"
LAYER_ROW = "128,128,16,8,flash,6,4"
NEUROSIM_ROW = "34,34,3,3,3,64,0,1,8,1,4,64"


def refused(status: int, err: str, message: str) -> None:
    """Exit code 2, exactly one `error:` line matching `message`, no traceback."""
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    assert re.search(message, err), err


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic measured source of 12 networks (the predictor's fit is quick)."""
    root = tmp_path_factory.mktemp("src")
    write_source(root, OPTIONS[np.random.default_rng(5).integers(0, 4, size=(12, 13))])
    return root


# --------------------------------------------------------------------------- predict

FILE_CASES = [
    (b"", r"in\.csv: the file is empty"),
    (b"  \n\n", r"in\.csv: the file is empty"),
    ("channels\xe9\n64\n".encode("latin-1"), r"in\.csv: not UTF-8 text .*latin-1"),
    (b"PK\x03\x04\x00\x00binary", r"in\.csv: a binary file"),
]
"""Files neither command can read, and the message each gives."""

PREDICT_CASES = [
    ("channels,input_bits\n{v},0\n",
     r"row 1, column input_bits: 0 is outside the search space \(conf/space/default\.yaml\); "
     r"allowed: 2, 3, 4, 5, 6, 7, 8$"),
    ("channels,adc_bits\n{v},100\n", r"row 1, column adc_bits: 100 is outside the search space"
                                     r".*; allowed: 3, 4, 5, 6, 7, 8$"),
    ("channels,adc_bits\n{v},6-6-6-6-6-6-6-6-6-6-6-6-2\n",
     r"row 1, column adc_bits, layer 13: 2 is outside the search space"),
    ("channels\n{v}\n64.9\n", r"row 2, column channels: '64\.9' is not an integer; allowed: 64, "
                              r"128, 256, 512$"),
    ("channels\n64-64-128-128-256-256-256-512-512-512-512-512-512.5\n",
     r"row 1, column channels, layer 13: '512\.5' is not an integer"),
    ("channels\n64-64-64-64-64-64-64-64-64-64-64-64-96\n",
     r"row 1, column channels, layer 13: 96 is outside the search space.*allowed: 64, 128, 256"),
    ("channels\n-64\n", r"row 1, column channels: '-64' is not dash-joined integers"),
    ("channels\ninf\n", r"row 1, column channels: 'inf' is not an integer"),
    ("channels\n1e40\n", r"row 1, column channels: '1e40' is out of range"),
    ("channels,adc_bits\n{v},6-6\n", r"row 1, column adc_bits: 2 values, expected 13"),
    ("channels,input_bits\n{v},8\n{v},\n", r"row 2, column input_bits: blank cell"),
    ("channels,dataset\n{v},cifar10\n,cifar10\n", r"row 2, column channels: blank cell"),
    ("channels,dataset\n{v},cifar10\n{v},mnist\n",
     r"row 2, column dataset: 'mnist' is not a data set.*allowed: cifar10, tinyimagenet$"),
    ("width\n64\n", r"column channels is missing"),
    ("channels\n", r"in\.csv: a header but no data rows$"),
]
"""Design tables predict refuses ({v}: the VGG16 channels), and the message each gives."""


@pytest.mark.parametrize(("content", "message"), [
    *[(c.replace("{v}", VGG).encode(), m) for c, m in PREDICT_CASES], *FILE_CASES])
def test_predict_refuses_bad_tables(tmp_path: Path, capsys, source: Path, content: bytes,
                                    message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    out = tmp_path / "out.csv"
    status = predict_main([str(path), "--out", str(out), "--source-dir", str(source)])
    refused(status, capsys.readouterr().err, message)
    assert not out.exists()


def test_predict_refuses_a_blank_gene_cell_of_a_pareto_csv(tmp_path: Path, capsys) -> None:
    frame = gene_frame(Genomes.concat([Genomes.uniform(VGG16_CHANNELS, 8, "flash", 6, 4)] * 2))
    frame.loc[1, "adc_bits"] = None
    path = tmp_path / "pareto.csv"
    frame.assign(dataset="cifar10").to_csv(path, index=False)
    status = predict_main([str(path), "--out", str(tmp_path / "out.csv")])
    refused(status, capsys.readouterr().err, r"pareto\.csv: row 2, column adc_bits: blank cell")


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "mnist"], r"argument --dataset: invalid choice: 'mnist'"),
    (["--out"], r"argument --out: expected one argument"),
])
def test_predict_refuses_bad_arguments(tmp_path: Path, capsys, args: list[str],
                                       message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"channels\n{VGG}\n")
    with pytest.raises(SystemExit) as stop:
        predict_main([str(path), "--out", str(tmp_path / "o.csv"), *args])
    refused(stop.value.code, capsys.readouterr().err, message)


def test_predict_gives_the_models_numbers_for_any_spelling(tmp_path: Path, source: Path) -> None:
    channels = np.array([VGG16_CHANNELS, [64] * 13, [512, 256] * 6 + [128]])
    input_bits = np.array([[8] * 13, [3] * 13, [2, 4, 6, 8] * 3 + [5]])
    adc_bits = np.array([[6] * 13, [4] * 13, [3, 5, 7] * 4 + [8]])
    plain = pd.DataFrame({
        "channels": ["-".join(map(str, c)) for c in channels],
        "input_bits": ["-".join(map(str, b)) for b in input_bits],
        "adc_bits": ["-".join(map(str, b)) for b in adc_bits],
    })
    # the same designs: one value for a uniform row, a float spelling, spaces around a value
    other = plain.copy()
    other.loc[0, "input_bits"], other.loc[1, "channels"] = "8.0", " 64 "
    other.loc[1, "adc_bits"], other.loc[2, "adc_bits"] = "4", plain.loc[2, "adc_bits"] + " "
    results = []
    for name, frame in (("plain", plain), ("other", other)):
        path, out = tmp_path / f"{name}.csv", tmp_path / f"{name}-out.csv"
        frame.to_csv(path, index=False)
        assert predict_main([str(path), "--out", str(out), "--source-dir", str(source)]) == 0
        results.append(pd.read_csv(out))
    predicted = ["clean_accuracy_pct", "accuracy_std_pct", "precision_loss_pp", "accuracy_pct"]
    pd.testing.assert_frame_equal(results[0][predicted], results[1][predicted])
    model = source_accuracy("cifar10", Backbone(), None, str(source),
                            transfer_from=TRANSFER.get("cifar10"))
    clean, std = model.predictor.predict(channels)
    ones = np.ones_like(channels)
    loss = penalty_for("cifar10").predict(Genomes(channels, 8 * ones, ones, adc_bits, input_bits),
                                          clean)
    np.testing.assert_allclose(results[0]["clean_accuracy_pct"], clean)
    np.testing.assert_allclose(results[0]["accuracy_std_pct"], std)
    np.testing.assert_allclose(results[0]["precision_loss_pp"], loss)
    assert loss[1] > loss[0] > 0


# --------------------------------------------------------------------------- cost

COST_CASES = [
    # per-layer tables: one good row, then the bad one
    (f"{LAYER_HEADER}\n{LAYER_ROW}\ninf,128,16,8,flash,6,4\n",
     r"row 2, column 'cin': inf is not an integer; allowed: 1\.\.65536$"),
    (f"{LAYER_HEADER}\n{LAYER_ROW}\n1e40,128,16,8,flash,6,4\n",
     r"row 2, column 'cin': 1e\+40 is out of range; allowed: 1\.\.65536$"),
    (f"{LAYER_HEADER}\n{LAYER_ROW}\n128,-64,16,8,flash,6,4\n",
     r"row 2, column 'cout': -64 is out of range; allowed: 1\.\.65536$"),
    (f"{LAYER_HEADER}\n{LAYER_ROW}\n128,0,16,8,flash,6,4\n",
     r"row 2, column 'cout': 0 is out of range"),
    (f"{LAYER_HEADER}\n{LAYER_ROW}\n128,128,16,8,flash,6,-4\n",
     r"row 2, column 'input_bits': -4 is outside the 2\.\.16 input bits .*; allowed: 2\.\.16$"),
    (f"{LAYER_HEADER}\n{LAYER_ROW}\n128,128,16,8,flash,6.7,4\n",
     r"row 2, column 'adc_bits': 6\.7 is not an integer; allowed: 1\.\.16$"),
    (f"{LAYER_HEADER}\n{LAYER_ROW}\n128,,16,8,flash,6,4\n", r"row 2, column 'cout': blank cell"),
    (f"{LAYER_HEADER}\n{LAYER_ROW}\n128,wide,16,8,flash,6,4\n",
     r"row 2, column 'cout': 'wide' is not an integer"),
    (f"{LAYER_HEADER}\n{LAYER_ROW}\n128,128,5000,8,flash,6,4\n",
     r"row 2, column 'out_map': 5000 is out of range; allowed: 1\.\.4096$"),
    (f"{LAYER_HEADER},k\n{LAYER_ROW},3\n128,128,16,8,flash,6,4,17\n",
     r"row 2, column 'k': 17 is out of range; allowed: 1\.\.15$"),
    (f"{LAYER_HEADER},k\n{LAYER_ROW},3\n128,128,2,8,flash,6,4,7\n",
     r"row 2, column 'k': a 7 x 7 kernel on a 2-pixel map; allowed: k // 2 <= out_map"),
    (f"{LAYER_HEADER}\n", r"in\.csv: a header but no data rows$"),
    # NeuroSim network CSVs
    (f"{NEUROSIM_ROW}\n34,34,3,3,3,64,0,1,8,1,4,0\n",
     r"row 2, column 12 \(adc_levels\): 0 levels is not 2\^b for ADC bits b in 1\.\.16; "
     r"allowed: 2, 4, 8, .*, 65536$"),
    (f"{NEUROSIM_ROW}\n34,34,3,3,3,64,0,1,8,1,4,48\n",
     r"row 2, column 12 \(adc_levels\): 48 levels is not 2\^b"),
    (f"{NEUROSIM_ROW}\n34,30,3,3,3,64,0,1,8,1,4,64\n",
     r"row 2, column 2 \(W\): W = 30 differs from H = 34; allowed: W = H"),
    (f"{NEUROSIM_ROW}\n2,2,3,3,3,64,0,1,8,1,4,64\n",
     r"row 2, column 1 \(H\): H = 2 gives a 0-pixel output map for K = 3"),
    (f"{NEUROSIM_ROW}\n34,34,3,3,3,64,0,2,8,1,4,64\n",
     r"row 2, column 8 \(stride\): stride 2 is not priced"),
    (f"{NEUROSIM_ROW}\n34,34,3,3,3,64,0,1,8,2,4,64\n",
     r"row 2, column 10 \(adc_type\): 2 is not an ADC type \(0 sar, 1 flash\); allowed: 0, 1$"),
    (f"{NEUROSIM_ROW}\n34,34,-3,3,3,64,0,1,8,1,4,64\n",
     r"row 2, column 3 \(Cin\): -3 is out of range"),
    (f"{NEUROSIM_ROW}\n34,34,3,3,3,64,0,1,8,1,4.5,64\n",
     r"row 2, column 11 \(input_bits\): 4\.5 is not an integer"),
    (f"{NEUROSIM_ROW},7\n", r"row 1: a header-less file must be NeuroSim's 12-column"),
]
"""Tables the cost command refuses, and the message each gives (pareto.csv: see below)."""


def run_cost(path: Path, out: Path, *args: str) -> int:
    """The cost command on ``path``."""
    return cost_main([str(path), "--out", str(out), *args])


@pytest.mark.parametrize(("content", "message"),
                         [(c.encode(), m) for c, m in COST_CASES] + FILE_CASES)
def test_cost_refuses_bad_tables(tmp_path: Path, capsys, content: bytes, message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    out = tmp_path / "out.csv"
    refused(run_cost(path, out), capsys.readouterr().err, message)
    assert not out.exists()


@pytest.mark.parametrize(("column", "value", "message"), [
    ("adc_bits_4", 6.7, r"row 2, column 'adc_bits_4': 6\.7 is not an integer; allowed: 1\.\.16$"),
    ("channels_2", None, r"row 2, column 'channels_2': blank cell; allowed: 1\.\.65536$"),
    ("channels_13", -64, r"row 2, column 'channels_13': -64 is out of range"),
    ("channels_1", 1e40, r"row 2, column 'channels_1': 1e\+40 is out of range"),
    ("input_bits_1", 0, r"row 2, column 'input_bits_1': 0 is outside the 2\.\.16 input bits"),
    ("col_share_3", 3, r"row 2, column 'col_share_3': 3 does not divide the 64 crossbar columns"),
    ("adc_type_5", "pipeline", r"row 2, column 'adc_type_5': 'pipeline' is not an ADC type"),
])
def test_cost_refuses_bad_pareto_cells(tmp_path: Path, capsys, column: str, value: object,
                                       message: str) -> None:
    frame = gene_frame(Genomes.concat([Genomes.uniform(VGG16_CHANNELS, 8, "flash", 6, 4)] * 2))
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = value
    path = tmp_path / "pareto.csv"
    frame.to_csv(path, index=False)
    refused(run_cost(path, tmp_path / "out.csv"), capsys.readouterr().err, message)


@pytest.mark.parametrize(("args", "message"), [
    (["--input-size", "0"], r"argument --input-size: 0; allowed: multiples of 16 in 16\.\.4096"),
    (["--input-size", "40"], r"argument --input-size: 40; allowed: multiples of 16"),
    (["--num-classes", "-1"], r"argument --num-classes: -1; allowed: 1\.\.65536"),
    (["clocking=sometimes"], r"clocking"),
    (["buffer_energy_per_input_bit_pj=1e38"],
     r"row 1, column 'energy_pj': inf overflows the cost model's float32 range"),
])
def test_cost_refuses_bad_arguments(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"{LAYER_HEADER}\n{LAYER_ROW}\n")
    refused(run_cost(path, tmp_path / "out.csv", *args), capsys.readouterr().err, message)


def test_cost_argument_errors_are_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"{LAYER_HEADER}\n{LAYER_ROW}\n")
    with pytest.raises(SystemExit) as stop:
        cost_main([str(path), "--out", str(tmp_path / "o.csv"), "--input-size", "abc"])
    refused(stop.value.code, capsys.readouterr().err,
            r"argument --input-size: invalid int value: 'abc'")


# --------------------------------------------------------------------------- both: --out


@pytest.mark.parametrize("command", [predict_main, cost_main])
@pytest.mark.parametrize(("out", "message"), [
    ("folder", r"--out .*folder: a folder; give a file name$"),
    ("plain.txt/out.csv", r"--out .*plain\.txt/out\.csv: .*plain\.txt is not a folder$"),
    ("/dev/null", r"--out /dev/null: not a regular file"),
])
def test_an_unwritable_out_is_refused_before_any_work(tmp_path: Path, capsys, command,
                                                      out: str, message: str) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "plain.txt").write_text("keep")
    path = tmp_path / "in.csv"
    path.write_text(f"channels\n{VGG}\n" if command is predict_main
                    else f"{LAYER_HEADER}\n{LAYER_ROW}\n")
    status = command([str(path), "--out", out if out.startswith("/") else str(tmp_path / out)])
    refused(status, capsys.readouterr().err, message)
    assert (tmp_path / "plain.txt").read_text() == "keep"
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == []


def test_a_failed_write_keeps_the_old_output_whole(tmp_path: Path, capsys,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"{LAYER_HEADER}\n{LAYER_ROW}\n")
    out = tmp_path / "out.csv"
    assert run_cost(path, out) == 0
    before = out.read_bytes()

    def disk_full(self: pd.DataFrame, handle, **kwargs) -> None:
        handle.write(b"cin,co")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    path.write_text(f"{LAYER_HEADER}\n{LAYER_ROW}\n64,64,8,8,sar,5,3\n")
    refused(run_cost(path, out), capsys.readouterr().err,
            r"--out .*out\.csv: cannot write it \(No space left on device\)$")
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_a_bad_input_keeps_an_existing_output(tmp_path: Path, capsys) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"{LAYER_HEADER}\n{LAYER_ROW}\n")
    out = tmp_path / "out.csv"
    out.write_text("an earlier result\n")
    path.write_text(f"{LAYER_HEADER}\n{LAYER_ROW}\n128,128,16,8,flash,6.7,4\n")
    assert run_cost(path, out) == 2
    assert out.read_text() == "an earlier result\n"


@pytest.mark.parametrize("module", ["xpert_evo.predict", "xpert_evo.cost"])
def test_the_commands_exit_2_without_a_traceback(tmp_path: Path, module: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("channels\xe9\n64\n".encode("latin-1"))
    run = subprocess.run([sys.executable, "-m", module, str(path), "--out",
                          str(tmp_path / "o.csv")], capture_output=True, text=True, check=False)
    refused(run.returncode, run.stderr, r"not UTF-8 text")
    assert run.stdout == "" and not (tmp_path / "o.csv").exists()


# --------------------------------------------------------------------------- cost: good input


def test_cost_gives_the_same_numbers_for_any_integer_spelling(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text(f"{LAYER_HEADER}\n{LAYER_ROW}\n64,256,8,16,sar,5,3\n")
    spelled = tmp_path / "spelled.csv"
    spelled.write_text(f"{LAYER_HEADER}\n128.0,128,16, 8,Flash,6.0,4\n64,256.0,8,16,sar ,5,3\n")
    outs = [tmp_path / "a.csv", tmp_path / "b.csv"]
    assert run_cost(plain, outs[0]) == 0 and run_cost(spelled, outs[1]) == 0
    a, b = (pd.read_csv(o) for o in outs)
    pd.testing.assert_frame_equal(a[list(OUTPUT_COLUMNS)], b[list(OUTPUT_COLUMNS)])
    direct = cost_table(load_hardware_config(), pd.read_csv(plain))
    pd.testing.assert_frame_equal(a, direct)


def test_cost_output_of_a_neurosim_csv_is_unchanged_by_the_checks(tmp_path: Path) -> None:
    genome = Genomes.uniform(VGG16_CHANNELS, 8, "sar", 5, 3)
    path = write_neurosim_csv(genome, Backbone(), tmp_path / "net.csv")
    out = tmp_path / "out.csv"
    assert run_cost(path, out, "clocking=layer") == 0
    costed = pd.read_csv(out)
    rep = CostModel(load_hardware_config(), Backbone()).evaluate(genome)
    np.testing.assert_allclose(costed.energy_pj.sum(), rep.energy_pj[0], rtol=1e-5)
    np.testing.assert_allclose(costed.latency_ns.sum(), rep.latency_ns[0], rtol=1e-5)


def test_every_limit_gives_finite_costs(tmp_path: Path, capsys) -> None:
    """A layer at every bound of `LAYER_LIMITS` and the bits ranges has finite, positive costs;
    a whole design that large overflows float32 in its EDAP and is refused, not written."""
    hw = load_hardware_config()
    top, bottom = max(hw.col_share_options), min(hw.col_share_options)
    rows = [
        [MAX_CHANNELS, MAX_CHANNELS, MAX_MAP, top, kind, 16, 16, MAX_KERNEL]
        for kind in ("flash", "sar")
    ] + [[1, 1, 1, bottom, kind, 1, 2, 1] for kind in ("flash", "sar")]
    table = pd.DataFrame(rows, columns=[*LAYER_HEADER.split(","), "k"])
    costed = cost_table(hw, table)[list(OUTPUT_COLUMNS)].to_numpy()
    assert np.isfinite(costed).all() and (costed > 0).all()
    path, out = tmp_path / "pareto.csv", tmp_path / "out.csv"
    designs = [Genomes.uniform([1024] * 13, top, "flash", 16, 16),
               Genomes.uniform([MAX_CHANNELS] * 13, top, "flash", 16, 16)]
    gene_frame(Genomes.concat(designs)).to_csv(path, index=False)
    args = ["--input-size", "512", "--num-classes", str(MAX_CHANNELS)]
    refused(run_cost(path, out, *args), capsys.readouterr().err,
            r"row 2, column 'edap': inf overflows the cost model's float32 range; "
            r"allowed: figures up to 3\.4e\+38")
    assert not out.exists()
    gene_frame(designs[0]).to_csv(path, index=False)
    assert run_cost(path, out, *args) == 0
    figures = pd.read_csv(out)[[*OUTPUT_COLUMNS, "edap"]].to_numpy()
    assert np.isfinite(figures).all() and (figures > 0).all()

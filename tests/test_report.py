"""Report: tables round trip, summary table, knee, figures and the re-plot command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from standin import CapacityStandIn

from xpert_evo import plot
from xpert_evo.app import CONF_DIR
from xpert_evo.report import (
    RunTables,
    accuracy_axis_label,
    accuracy_column,
    headline_lines,
    markdown_table,
    provenance,
    summary_table,
    write_report,
)
from xpert_evo.report.figures import unrepeated
from xpert_evo.report.results import build_tables, knee_index
from xpert_evo.report.summary import summary_markdown
from xpert_evo.report.tables import compact_genes
from xpert_evo.search import SearchRun, build_search


def standin_run(out: Path, seed: int) -> Path:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "accuracy=naswot", "algorithm.pop_size=16", "algorithm.n_gen=4", f"seed={seed}",
            "constraints.precision_loss_pp=null",
            "accuracy.budget.initial=10", "accuracy.budget.per_round=2",
            "accuracy.budget.rounds=1",
        ])
    out.mkdir(parents=True)
    result = SearchRun(build_search(cfg, estimator=CapacityStandIn()), out).start().run()
    write_report(build_tables(result), out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("report")
    return [standin_run(root / f"seed{s}", s) for s in (0, 1)]


def test_accuracy_column_never_says_percent_for_a_proxy() -> None:
    label = "naswot_score (proxy scale, not %)"
    assert accuracy_column(label) == "naswot_score_proxy_scale_not_pct"
    assert accuracy_column("accuracy_pct") == "accuracy_pct"


def test_tables_round_trip_and_summary(runs: list[Path]) -> None:
    tables = RunTables.load(runs[0])
    acc = tables.acc
    assert acc == "capacity_standin_score_synthetic_not_pct"
    assert tables.meta["baseline"]["name"] == "VGG16"
    table = summary_table(tables, top_k=5)
    assert table.iloc[0]["role"] == "baseline" and table.iloc[0]["edap_reduction_x"] == 1.0
    assert 2 <= len(table) <= 6
    text = markdown_table(table)
    assert text.count("\n") == len(table) + 1 and "VGG16" in text
    f = np.column_stack([-tables.pareto[acc], np.log10(tables.pareto["edap"])])
    for i in range(len(f)):  # the front is mutually non-dominated
        assert not np.any(np.all(f <= f[i], axis=1) & np.any(f < f[i], axis=1))


def test_knee_of_a_convex_front() -> None:
    t = np.linspace(0, 1, 21)
    f = np.column_stack([t, (1 - t) ** 4])
    assert knee_index(f) == int(np.argmin(np.abs(t - (1 - 4 ** (-1 / 3)))))
    assert knee_index(f[:2]) in (0, 1)


def test_replot_overlays_runs(runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "fronts.png"
    assert plot.main([str(r) for r in runs] + ["--out", str(out), "--names", "a", "b"]) == 0
    for name in ("fronts.png", "fronts.pdf", "fronts_convergence.png", "fronts_convergence.pdf"):
        assert (tmp_path / name).stat().st_size > 1000


def test_replot_rejects_a_non_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert plot.main([str(tmp_path)]) == 2
    assert "pareto.csv" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("key", "value"),
    [("accuracy_label", "accuracy_pct"),
     ("accuracy_basis", "proxy batch: Gaussian noise (no cifar10 found at /x)")],
)
def test_replot_refuses_mixed_accuracy_scales(
    runs: list[Path], tmp_path: Path, key: str, value: str
) -> None:
    other = tmp_path / "other"
    tables = RunTables.load(runs[1])
    tables.meta[key] = value
    tables.write(other)
    with pytest.raises(ValueError, match="different accuracy scales"):
        plot.replot([runs[0], other], tmp_path / "x.png")


def test_history_is_per_generation(runs: list[Path]) -> None:
    history = pd.read_csv(runs[0] / "history.csv")
    assert history["generation"].tolist() == [1, 2, 3, 4]
    assert history["hypervolume"].notna().all() and (history["elapsed_s"].diff()[1:] >= 0).all()


def test_compact_genes() -> None:
    assert compact_genes("-".join(["8"] * 13)) == "8x13"
    assert compact_genes("-".join(["flash"] * 13)) == "flash x13"
    assert compact_genes("8-8-16") == "8-8-16"
    assert compact_genes(np.nan) is np.nan


def test_summary_table_shows_the_codesign(runs: list[Path]) -> None:
    tables = RunTables.load(runs[0])
    table = summary_table(tables, top_k=5)
    for column in ("precision_loss_pp", "col_share", "adc_type", "adc_bits", "input_bits",
                   f"{tables.acc}_std", "accuracy_from"):
        assert column in table, column
    base = table.iloc[0]
    assert (base["col_share"], base["adc_type"], base["adc_bits"], base["input_bits"]) == (
        "8x13", "flash x13", "6x13", "8x13")
    assert base["accuracy_from"] == tables.meta["baseline"]["accuracy_from"] == "proxy"
    assert 0 < base["precision_loss_pp"] < 1  # 8-bit inputs, 6-bit ADCs: little is lost
    genes = table.iloc[1:][["col_share", "adc_bits", "input_bits"]].to_numpy().ravel()
    assert all(g.count("-") in (0, 12) for g in genes)  # "8x13" or one value per layer


def test_headlines_say_what_their_accuracy_rests_on() -> None:
    measured = {"design": 3, "edap_reduction_x": 2.0, "accuracy": 0.5, "accuracy_std": 0.0,
                "accuracy_from": "proxy", "measured": True}
    predicted = {"design": 7, "edap_reduction_x": 9.0, "accuracy": 0.6, "accuracy_std": 0.04,
                 "accuracy_from": "surrogate", "measured": False}
    meta = {
        "accuracy_column": "score",
        "baseline": {"name": "VGG16", "accuracy": 0.55, "accuracy_from": "proxy",
                     "accuracy_measured": True, "accuracy_std": 0.0},
        "knee": measured,
        "best_iso_accuracy": predicted,
        "measured_only": {"n_designs": 4, "knee": measured, "best_iso_accuracy": None},
    }
    knee, iso, only = headline_lines(meta)
    assert knee.startswith("Knee design 3: EDAP reduction 2.00x vs VGG16")
    assert knee.endswith("score 0.5 is measured by the true proxy")
    assert "(0.55, measured by the true proxy)" in iso
    assert "9.00x (design 7)" in iso and iso.endswith("predicted by the surrogate, ± 0.04")
    assert only.startswith("Measured designs only (4 feasible") and "knee 2.00x" in only
    assert "none reaches VGG16's score" in only
    meta["measured_only"] = {"n_designs": 0, "knee": None, "best_iso_accuracy": None}
    assert headline_lines(meta)[-1].endswith("the reductions above rest on predictions")
    assert "**9.00x**" in headline_lines(meta, markdown=True)[1]


def test_summary_and_plot_name_the_accuracy_data(runs: list[Path]) -> None:
    tables = RunTables.load(runs[0])
    assert tables.meta["accuracy_basis"] == CapacityStandIn.basis
    summary = (runs[0] / "summary.md").read_text().splitlines()
    assert summary[2] == f"- **Accuracy data: {CapacityStandIn.basis}**"
    assert any(line.startswith("- Knee design") and ("measured" in line or "predicted" in line)
               for line in summary)
    label = accuracy_axis_label(tables.meta)
    assert label.splitlines() == [tables.meta["accuracy_label"], CapacityStandIn.basis]


def test_the_axis_label_names_the_fidelity_once() -> None:
    label = accuracy_axis_label({
        "accuracy_label": "accuracy % at e5-pc500-w0.25-b64",
        "accuracy_basis": "predicted from 86 trained networks (cifar10, e5-pc500-w0.25-b64)"})
    assert label.splitlines() == ["accuracy % at e5-pc500-w0.25-b64",
                                  "predicted from 86 trained networks (cifar10)"]
    assert unrepeated("proxy batch: Gaussian noise (no cifar10 found at /x)", "naswot score") == (
        "proxy batch: Gaussian noise (no cifar10 found at /x)")
    assert unrepeated("measured (e5, cifar10)", "accuracy % at e5 on cifar10") == "measured"


def test_stamp_names_module_commands_as_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    package = Path(provenance.__file__).resolve().parents[1]
    monkeypatch.setattr("sys.argv", [str(package / "__main__.py"), "-m", "seed=0,1"])
    assert provenance.command() == "python -m xpert_evo -m seed=0,1"
    monkeypatch.setattr("sys.argv", [str(package / "sweep.py"), "runs/multirun/x"])
    assert provenance.stamp().startswith("produced by `python -m xpert_evo.sweep runs/multirun/x`")
    script = "bench/studies/accuracy_fidelity.py"
    monkeypatch.setattr("sys.argv", [script, "--dataset", "tinyimagenet"])
    assert provenance.command() == f"python {script} --dataset tinyimagenet"


def test_summary_warns_when_a_percent_axis_has_no_crossbar_loss_model(runs: list[Path]) -> None:
    tables = RunTables.load(runs[0])
    assert tables.meta["crossbar_loss_modelled"] is True  # the default config has a penalty
    tables.meta["accuracy_is_percent"] = True
    assert "No crossbar-loss model" not in summary_markdown(tables)
    tables.meta["crossbar_loss_modelled"] = False
    warning = [line for line in summary_markdown(tables).splitlines()
               if "No crossbar-loss model" in line]
    assert len(warning) == 1 and "penalty: none" in warning[0]

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
from xpert_evo.report import RunTables, accuracy_column, markdown_table, summary_table, write_report
from xpert_evo.report.results import build_tables, knee_index
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


def test_replot_refuses_mixed_accuracy_scales(runs: list[Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    tables = RunTables.load(runs[1])
    tables.meta["accuracy_label"] = "accuracy_pct"
    tables.write(other)
    with pytest.raises(ValueError, match="different accuracy scales"):
        plot.replot([runs[0], other], tmp_path / "x.png")


def test_history_is_per_generation(runs: list[Path]) -> None:
    history = pd.read_csv(runs[0] / "history.csv")
    assert history["generation"].tolist() == [1, 2, 3, 4]
    assert history["hypervolume"].notna().all() and (history["elapsed_s"].diff()[1:] >= 0).all()

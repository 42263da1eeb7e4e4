"""bench/studies/main_runs.py reads a verified run back: predicted beside measured, the paired
test of the iso-accuracy design, and the winner's-curse bias over runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "studies"))
import main_runs  # noqa: E402

CROSSBAR = {"baseline": [52.0, 53.0, 52.5], "knee": [50.0, 51.2, 50.4],
            "iso_accuracy": [52.1, 53.2, 52.4]}
PREDICTED = {"baseline": 52.0, "knee": 51.5, "iso_accuracy": 53.0}


def verified_run(tmp_path: Path, crossbar: dict[str, list[float]]) -> Path:
    trainings = pd.DataFrame([{"design": d, "seed": s, "crossbar_pct": v, "net_pct": v}
                              for d, values in crossbar.items() for s, v in enumerate(values)])
    trainings.to_csv(tmp_path / "verified_trainings.csv", index=False)
    grouped = trainings.groupby("design")["net_pct"]
    summary = pd.DataFrame({
        "design": list(crossbar), "seeds": 3,
        "predicted_net_pct": [PREDICTED[d] for d in crossbar],
        "measured_net_pct": [grouped.mean()[d] for d in crossbar],
        "measured_net_pct_std": [grouped.std()[d] for d in crossbar],
        "measured_crossbar_pct": [grouped.mean()[d] for d in crossbar],
        "measured_crossbar_pct_std": [grouped.std()[d] for d in crossbar]})
    summary["predicted_minus_measured_pp"] = (summary["predicted_net_pct"]
                                              - summary["measured_net_pct"])
    summary.to_csv(tmp_path / "verified.csv", index=False)
    return tmp_path


def test_a_verified_run_reports_predicted_beside_measured(tmp_path: Path) -> None:
    row = main_runs.measured(verified_run(tmp_path, CROSSBAR))
    assert row["verified_seeds"] == 3
    assert row["knee_predicted_net_pct"] == 51.5
    assert row["knee_measured_net_pct"].startswith("50.53 ± ")
    assert row["knee_predicted_minus_measured_pp"] == round(51.5 - 50.5333, 2)
    assert row["iso_accuracy_holds"] == "yes"


def test_an_iso_design_below_vgg16_at_every_seed_does_not_hold(tmp_path: Path) -> None:
    short = {**CROSSBAR, "iso_accuracy": [50.0, 51.1, 50.3]}
    row = main_runs.measured(verified_run(tmp_path, short))
    assert row["iso_accuracy_holds"] == "no"
    assert row["iso_accuracy_falls_short_p"] < 0.05
    assert row["iso_accuracy_minus_vgg16_crossbar_pp"].startswith("-2.03")


def test_the_bias_is_the_mean_signed_error_of_role_designs_over_runs() -> None:
    rows = [{"verified_seeds": 3, "knee_predicted_minus_measured_pp": 2.0,
             "iso_accuracy_predicted_minus_measured_pp": 1.0},
            {"verified_seeds": 3, "knee_predicted_minus_measured_pp": 0.0},
            {"run": "not verified"}]
    text = main_runs.bias(rows)
    assert "3 verified role designs of 2 runs" in text and "+1.00 pp" in text
    assert "that much too high" in text
    below = [{"verified_seeds": 3, "knee_predicted_minus_measured_pp": -0.5}]
    assert "no upward bias" in main_runs.bias(below)
    assert main_runs.bias([{"run": "not verified"}]) == ""


def test_verified_trainings_carry_the_penalty_prediction_beside_the_measured_loss(
    tmp_path: Path
) -> None:
    run = verified_run(tmp_path, CROSSBAR)
    trainings = pd.read_csv(run / "verified_trainings.csv")
    trainings.assign(loss_pp=[0.5, 0.6, 0.4, 2.5, 2.4, 2.6, 2.3, 2.1, 2.5]).to_csv(
        run / "verified_trainings.csv", index=False)
    summary = pd.read_csv(run / "verified.csv")
    summary.assign(input_bits=["8-2", "8-8", "2-2"][: len(summary)], adc_bits="6-6",
                   predicted_loss_pp=[0.4, 0.7, 0.8][: len(summary)]).to_csv(
        run / "verified.csv", index=False)
    (run / "run.json").write_text(json.dumps({
        "config": {"data": {"dataset": "cifar10"}, "hardware": {"weight_encoding": "offset"},
                   "penalty": {"fitted": "penalty/layer_cifar10_offset.yaml"}},
        "verified": {"budget": "e5-pc500-w0.25-b64 (the run's train: node), 3 seeds"}}))
    rows = main_runs.verified_trainings("default", run)
    assert len(rows) == 9
    knee = rows[rows["design"] == "knee"]
    assert knee["loss_pp"].tolist() == [2.5, 2.4, 2.6]
    assert set(knee["predicted_loss_pp"]) == {0.7} and set(knee["input_bits"]) == {"8-8"}
    assert set(rows["fidelity"]) == {"e5-pc500-w0.25-b64"}
    assert set(rows["penalty"]) == {"penalty/layer_cifar10_offset.yaml"}
    assert main_runs.verified_trainings("other", tmp_path / "none").empty


def test_a_plan_of_some_runs_and_their_recorded_status(tmp_path: Path) -> None:
    plan = main_runs.runs("data", ("cifar10",), 3, only=("cifar10", "default"))
    assert list(plan) == ["default", "cifar10"]  # in the main runs' order
    assert plan["default"] == [] and "verify.seeds=3" in plan["cifar10"]
    changed = main_runs.runs("data", (), 0, only=("cifar10",), overrides=("penalty=none",))
    assert changed["cifar10"][:2] == ["+experiment=cifar10", "penalty=none"]
    (tmp_path / "status.json").write_text(json.dumps({"status": "ok", "wall_s": 12.5}))
    assert main_runs.recorded(tmp_path) == (12.5, 0)
    (tmp_path / "status.json").write_text(json.dumps({"status": "failed", "wall_s": 3.0}))
    assert main_runs.recorded(tmp_path) == (3.0, 1)


def summary_row(run: str, **fields: object) -> dict[str, object]:
    return {"run": run, "exit_code": 0, "front_size": 12, "final_hv": 0.5, "area_budget_mm2": 50.0,
            "vgg16_accuracy": 51.0, "knee_edap_reduction_x": 4.0, "knee_accuracy": 49.0, **fields}


def test_the_readme_table_reads_each_run_as_predicted_measured_or_missing() -> None:
    verified = summary_row("default", iso_accuracy_edap_reduction_x=2.0,
                           knee_predicted_net_pct=50.0, knee_measured_net_pct="49.00 ± 1.00",
                           iso_accuracy_predicted_net_pct=51.5,
                           iso_accuracy_measured_net_pct="52.00 ± 0.50",
                           vgg16_measured_net_pct="51.00 ± 0.80")
    lines = main_runs.readme_rows([verified, summary_row("xpert_cifar10"),
                                   {"run": "cifar10", "exit_code": 1}])
    assert lines[2] == ("| `python -m xpert_evo` | 12 designs | 0.5000 | 4.00x, 50.00 % / "
                        "49.00 ± 1.00 % | 2.00x, 51.50 % / 52.00 ± 0.50 %; VGG16 51.00 ± 0.80 % |")
    assert lines[3] == ("| `+experiment=xpert_cifar10` | 12 designs | 0.5000 | 4.00x, 49.00 % "
                        "(VGG16 51.00 %), not verified | none under the 50 mm² budget |")
    assert lines[4].startswith("| `+experiment=cifar10` | failed (exit 1)")


def test_the_readme_findings_name_a_failed_iso_claim_and_the_bias(tmp_path: Path) -> None:
    short = {**CROSSBAR, "iso_accuracy": [50.0, 51.1, 50.3]}
    rows = [{"run": "default", **main_runs.measured(verified_run(tmp_path, short))},
            {"run": "xpert_cifar10"}]
    text = " ".join(main_runs.readme_findings(rows))
    assert text.startswith("**The iso-accuracy claim fails when measured in default**")
    assert "-2.03" in text and "over the 2 verified role designs" in text
    assert main_runs.readme_findings([{"run": "xpert_cifar10"}]) == []


def test_the_readme_section_between_its_markers_is_replaced_and_the_rest_kept(
        tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- t: begin; old -->\nold row\n<!-- t: end -->\noutro\n")
    main_runs.replace_section(readme, "t", ["new row"])
    lines = readme.read_text().splitlines()
    assert lines[0] == "intro" and lines[-2:] == ["<!-- t: end -->", "outro"]
    assert lines[1].startswith("<!-- t: begin; produced by") and lines[2] == "new row"
    assert "old row" not in readme.read_text()
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="t: begin"):
        main_runs.replace_section(readme, "t", ["x"])

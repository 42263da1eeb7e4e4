"""bench/studies/compare_methods.py holds every method to the budget it states, on the capacity
stand-in."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
from standin import CapacityStandIn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "studies"))
import compare_methods  # noqa: E402

PROXY_BUDGET, COST_BUDGET = 10, 950


@pytest.mark.parametrize("method", list(compare_methods.METHODS))
def test_every_method_stops_at_the_stated_budgets(tmp_path: Path, method: str) -> None:
    args = argparse.Namespace(
        proxy_budget=PROXY_BUDGET, cost_budget=COST_BUDGET, data_root=str(tmp_path)
    )
    outcome = compare_methods.run_method(
        "cifar10", method, 0, args, tmp_path / "cache", estimator=CapacityStandIn()
    )
    row = outcome.row
    assert (row["proxy_budget"], row["cost_budget"]) == (PROXY_BUDGET, COST_BUDGET)
    assert row["true_proxy_calls"] <= PROXY_BUDGET and row["cost_model_evals"] <= COST_BUDGET
    if method == "nsga2 (true proxy)":  # 16 new channel lists per generation: the cut lands
        assert row["true_proxy_calls"] == PROXY_BUDGET  # inside the first generation
    elif method.startswith(("nsga2", "random")):  # 100 designs per generation: the 10th is cut
        assert row["cost_model_evals"] == COST_BUDGET
        assert row["true_proxy_calls"] == 9  # 5 anchors and VGG16 + 4 rounds of 1
    elif method == "xpert_gd":  # gradient steps of 312 genomes stop before the budget
        assert row["cost_model_evals"] > COST_BUDGET - 312 - 20

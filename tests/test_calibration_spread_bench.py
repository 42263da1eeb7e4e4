"""bench/studies/calibration_spread.py: which replicate pairs it redraws, how its calibration
draws differ from the default, and what its summary measures."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from xpert_evo.training.data import Split

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "studies"))
import calibration_spread  # noqa: E402


def test_rows_are_drawn_over_networks_at_most_k_each_and_seeded() -> None:
    pairs = pd.DataFrame({"net_id": np.repeat([3, 8, 13], 8), "setting": np.tile(range(8), 3)})
    rows = calibration_spread.pick_rows(pairs, rows=5, per_network=2)
    assert len(rows) == 5 and rows["net_id"].value_counts().max() == 2
    assert set(rows["net_id"]) == {3, 8, 13}
    assert rows.equals(calibration_spread.pick_rows(pairs, rows=5, per_network=2))


def test_a_draw_is_another_order_of_the_same_images() -> None:
    train = Split(np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1), np.arange(20), "cifar10",
                  10)
    one, two = calibration_spread.redrawn(train, 1), calibration_spread.redrawn(train, 2)
    assert sorted(one.labels) == list(range(20)) and not np.array_equal(one.labels, two.labels)
    assert np.array_equal(one.images[:, 0, 0, 0], one.labels)  # images stay with their labels
    assert np.array_equal(one.labels, calibration_spread.redrawn(train, 1).labels)


def test_the_summary_separates_calibration_from_the_training_seed() -> None:
    frame = pd.DataFrame({"loss_pp": [1.0, 5.0], "loss_pp_draw1": [1.0, 5.0],
                          "loss_pp_draw2": [1.0, 5.0], "loss_pp_replicate": [3.0, 1.0],
                          "loss_std_pp": [0.3, 0.4]})
    result = calibration_spread.summary(frame, draws=2)
    assert result["calibration_std_pp"] == 0.0  # the calibration draw changes nothing here
    assert math.isclose(result["training_spread_pp"], math.sqrt((2.0**2 + 4.0**2) / 2 / 2))
    assert math.isclose(result["image_noise_pp"], math.sqrt((0.09 + 0.16) / 2))
    moved = calibration_spread.summary(
        frame.assign(loss_pp_draw1=[2.0, 6.0], loss_pp_draw2=[0.0, 4.0]), draws=2)
    assert math.isclose(moved["calibration_std_pp"], 1.0)
    spread2 = moved["training_spread_pp"] ** 2
    assert math.isclose(moved["spread_without_calibration_pp"] ** 2, spread2 - 1.0)
    assert math.isclose(moved["network_pp"] ** 2, spread2 - 1.0 - (0.09 + 0.16) / 2)

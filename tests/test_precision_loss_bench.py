"""bench/calibrate/precision_loss.py writes its fit into a penalty config without disturbing the
file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "calibrate"))

from precision_loss import write_config  # noqa: E402


def test_write_config_replaces_values_and_keeps_comment_columns(tmp_path: Path) -> None:
    path = tmp_path / "penalty.yaml"
    before = ["# header: 1", "model: v1", "a_in: -7.9          # noise",
              "bound_pp: 1           # the bound", "tight: 1 # a comment", "rmse_pp: 0.6"]
    path.write_text("\n".join(before) + "\n")
    write_config(path, {"a_in": "-12.345678", "bound_pp": "10", "tight": "100", "rmse_pp": "0.61"})
    lines = path.read_text().splitlines()
    assert lines[:2] == before[:2]
    assert lines[2] == "a_in: -12.345678    # noise"
    assert lines[3] == "bound_pp: 10          # the bound"
    assert [line.index("#") for line in lines[2:4]] == [before[2].index("#"),
                                                        before[3].index("#")]
    assert lines[4] == "tight: 100 # a comment"
    assert lines[5] == "rmse_pp: 0.61"


def test_write_config_refuses_a_key_the_file_lacks(tmp_path: Path) -> None:
    path = tmp_path / "penalty.yaml"
    path.write_text("a_in: 1\n")
    with pytest.raises(SystemExit, match="k_in"):
        write_config(path, {"k_in": "2"})
    assert path.read_text() == "a_in: 1\n"

"""Shared pytest fixtures: the real data archives in ../shared/datasets, the NeuroSim reference in
../shared/reference, and a session cache."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
"""Where the project's real-data ZIP archives live (next to the repository checkout)."""


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder holding cifar10.zip and tiny-imagenet-200-subset.zip."""
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory shared by the whole test session (archives are unpacked here once)."""
    return tmp_path_factory.mktemp("xpert_evo_cache")


def _archive(name: str) -> Path:
    path = SHARED_DATASETS / name
    if not path.is_file():
        pytest.skip(f"real-data archive {path} is absent (see ../shared/datasets/README.md)")
    return path


@pytest.fixture(scope="session")
def reference():
    """The NeuroSim per-layer reference rows (../shared/reference); skips the test when absent."""
    from xpert_evo.hardware.reference import LAYERS_CSV, load_layers

    if not LAYERS_CSV.is_file():
        pytest.skip(f"NeuroSim reference {LAYERS_CSV} is absent (../shared/reference)")
    return load_layers()


@pytest.fixture(scope="session")
def cifar10_zip() -> Path:
    """The CIFAR-10 archive; skips the test when it is absent."""
    return _archive("cifar10.zip")


@pytest.fixture(scope="session")
def tiny_zip() -> Path:
    """The Tiny ImageNet subset archive; skips the test when it is absent."""
    return _archive("tiny-imagenet-200-subset.zip")

"""Packaging: the wheel ships every module and config, an installed copy finds its configs, and
every third-party package the code imports is a declared dependency."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from xpert_evo.schema.fitted import fitted_constants

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "xpert_evo", "conf", "hydra_plugins")
"""What a wheel is built from (copied, so the build leaves nothing in the checkout)."""


def _copy_sources(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built offline from a copy of the checkout."""
    pytest.importorskip("setuptools")
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(tmp / "src")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "-w", str(tmp / "dist")],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = (tmp / "dist").glob("xpert_evo-*.whl")
    return path


def test_wheel_ships_every_module_and_config(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = sorted(p.relative_to(ROOT / "conf") for p in (ROOT / "conf").rglob("*.yaml"))
    assert any(p.parts[0] == "hardware" for p in configs)
    assert any(p.parts[0] == "experiment" for p in configs)
    for rel in configs:
        assert f"xpert_evo/conf/{rel.as_posix()}" in names, rel
    tops = ("xpert_evo", "hydra_plugins")
    modules = sorted(p.relative_to(ROOT) for top in tops for p in (ROOT / top).rglob("*.py"))
    assert Path("hydra_plugins/xpert_evo_launcher/process_launcher.py") in modules
    for rel in modules:
        assert rel.as_posix() in names, rel
    for rel in (ROOT / "xpert_evo" / "training").glob("sources/**/*.csv"):
        assert rel.relative_to(ROOT).as_posix() in names, rel
    fitted = sorted((ROOT / "xpert_evo" / "fitted").rglob("*.yaml"))  # the presets' constants
    assert any(p.parent.name == "penalty" for p in fitted)
    for rel in fitted:
        assert rel.relative_to(ROOT).as_posix() in names, rel


def test_installed_copy_composes_its_shipped_configs(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
         str(wheel)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env["PYTHONPATH"] = str(target)
    away = tmp_path / "elsewhere"
    away.mkdir()
    where = subprocess.run(
        [sys.executable, "-c", "from xpert_evo.config import conf_dir; print(conf_dir())"],
        capture_output=True, text=True, env=env, cwd=away, timeout=120, check=True,
    )
    assert Path(where.stdout.strip()) == target / "xpert_evo" / "conf"
    plugin = "hydra_plugins.xpert_evo_launcher.process_launcher"  # hydra/launcher=local
    found = subprocess.run(
        [sys.executable, "-c", f"import {plugin} as m; from hydra.core.plugins import Plugins; "
         "print(m.__file__); print(*Plugins.instance().class_name_to_class)"],
        capture_output=True, text=True, env=env, cwd=away, timeout=120, check=True,
    ).stdout.splitlines()
    assert Path(found[0]).is_relative_to(target), found[0]
    assert f"{plugin}.ProcessPerJobLauncher" in found[1].split()
    k_in = fitted_constants("penalty/layer_cifar10_offset.yaml")["k_in"]  # the default penalty
    commands = [
        ("xpert_evo", ["+experiment=cifar10"], "area_mm2: 100.0"),  # conf/experiment/cifar10.yaml
        ("xpert_evo", ["--resolve"], f"  k_in: {k_in}"),  # fitted constants, from the wheel
        ("xpert_evo.train", [], "design_row:"),  # conf/train.yaml
        ("xpert_evo.source", [], "n_shards:"),  # conf/source.yaml
    ]
    for module, overrides, expected in commands:
        proc = subprocess.run(
            [sys.executable, "-m", module, *overrides, "--cfg", "job"],
            capture_output=True, text=True, env=env, cwd=away, timeout=120, check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert expected in proc.stdout, proc.stdout


def _imported_top_level(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_package_is_declared() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        _normalised(re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0])
        for dep in project["dependencies"]
    }
    third_party = _imported_top_level(ROOT / "xpert_evo") - set(sys.stdlib_module_names)
    third_party.discard("xpert_evo")
    owners = packages_distributions()
    missing = {
        module: owners.get(module, [module])
        for module in sorted(third_party)
        if not any(_normalised(d) in declared for d in owners.get(module, [module]))
    }
    assert not missing, f"imported but not in [project].dependencies: {missing}"
    assert "pyyaml" in declared and "tabulate" in declared  # yaml; pandas.to_markdown
    pymoo = next(d for d in project["dependencies"] if d.startswith("pymoo"))
    assert ">=0.6.2" in pymoo, "random_state in survival/sampling calls needs pymoo 0.6.2"

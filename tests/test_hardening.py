"""Issue 25: bad input ends in one line and exit code 2 with no run directory left, a refused run
writes nothing, run directories are never shared, outputs are atomic, checkpoints are verified,
and filesystem errors name the path and keep the last checkpoint."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from standin import CapacityStandIn

from xpert_evo.app import CONF_DIR, run_app
from xpert_evo.config import ConfigError
from xpert_evo.report import RunTables
from xpert_evo.rundir import RunDirError, claim_run_dir, release_run_dir
from xpert_evo.search import SearchRun, build_search, load_checkpoint
from xpert_evo.search.checkpoint import CHECKPOINT, PREVIOUS, encode_checkpoint
from xpert_evo.search.feasibility import NoFeasibleDesignError

TINY = [
    "accuracy=params",
    "algorithm.pop_size=8",
    "algorithm.n_gen=2",
    "accuracy.budget.initial=10",
    "accuracy.budget.per_round=2",
    "accuracy.budget.rounds=1",
    "accuracy.surrogate.n_members=2",
]
SEARCH = [  # the search machinery with the stand-in score (as tests/test_search.py)
    "accuracy=naswot", "constraints.precision_loss_pp=null", "algorithm.pop_size=16",
    "algorithm.n_gen=4", "accuracy.budget.initial=12", "accuracy.budget.per_round=3",
    "accuracy.budget.rounds=2", "seed=3",
]


ERROR_LINE = re.compile(r"(\[[\d:]+\] )?error: ")
"""How the app reports an error: ``error: ...`` (Hydra-level) or ``[12:00:00] error: ...``."""


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy scores and unpacked data go to the test's folder, not ~/.cache."""
    monkeypatch.setenv("XPERT_EVO_CACHE", str(tmp_path / "cache"))


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def cli(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m xpert_evo *args`` run in ``cwd`` with its own cache."""
    env = {**os.environ, "XPERT_EVO_CACHE": str(cwd / "cache")}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "xpert_evo", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def flip_byte(path: Path, offset_from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------ bad input: one line, exit 2

BAD_INPUT = {
    "negative seed": (["seed=-1"], ["seed=-1", "0 to 4294967295"]),
    "nan area": (["constraints.area_mm2=nan"], ["constraints.area_mm2=nan", "finite number"]),
    "untrained width": (["space.channels=[100]"],
                        ["space.channels=[100]", "allowed: 64, 128, 256, 512"]),
    "unknown data set": (["data.dataset=foo"],
                         ["data.dataset='foo'", "allowed: cifar10, tinyimagenet"]),
    "unknown experiment": (["+experiment=nope"],
                           ["experiment=nope", "allowed: cifar10, tinyimagenet"]),
    "unknown group option": (["accuracy=nope"],
                             ["accuracy=nope", "allowed: measured, naswot, params, synflow"]),
    "unknown key": (["algorithm.pop_siz=5"],
                    ["unknown config key algorithm.pop_siz", "'pop_size'"]),
    "appended unknown key": (["+algorithm.pop_siz=5"], ["algorithm.pop_siz", "'pop_size'"]),
    "mistyped value": (["algorithm.pop_size=many"], ["algorithm.pop_size", "Integer"]),
    "accuracy floor above 100 %": (["constraints.accuracy_floor=200"],
                                   ["constraints.accuracy_floor=200", "up to 100"]),
    "empty data root": (["accuracy=naswot", "data.root={empty}"],
                        ["data.root=", "holds no usable cifar10"]),
    "fake zip": (["accuracy=naswot", "data.root={fake_zip}"], ["data.root=", "cannot unpack"]),
    "corrupt checkpoint": (["resume={corrupt}"], ["resume=", "checksum mismatch"]),
    "foreign checkpoint": (["resume={foreign}"], ["resume=", "not an xpert_evo search checkpoint"]),
    "cache not writable": (["accuracy=naswot", "accuracy.cache_dir={file}"],
                           ["proxy score cache", "cannot open it"]),
    "run dir not creatable": (["hydra.run.dir={file}/run"], ["hydra.run.dir=", "cannot create it"]),
    "penalty of another weight mapping": (
        ["hardware.weight_encoding=offset", "penalty=crossbar_cifar10"],
        ["penalty.weight_encoding=differential", "hardware.weight_encoding=offset"]),
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    """Every `BAD_INPUT` case run at once, each in a fresh working directory."""
    root = tmp_path_factory.mktemp("refusals")
    (root / "empty").mkdir()
    (root / "fake_zip").mkdir()
    (root / "fake_zip" / "cifar10.zip").write_bytes(b"this is not a zip archive")
    (root / "corrupt").mkdir()
    (root / "corrupt" / CHECKPOINT).write_bytes(encode_checkpoint({"config": {}}))
    flip_byte(root / "corrupt" / CHECKPOINT, 5)
    (root / "foreign").mkdir()
    (root / "foreign" / CHECKPOINT).write_bytes(b"\x80\x04}\x94.")  # a bare pickled {}
    (root / "file").write_text("a file, not a folder\n")
    places = {name: str(root / name)
              for name in ("empty", "fake_zip", "corrupt", "foreign", "file")}

    def one(case: str) -> tuple[Path, object]:
        cwd = root / "cases" / case.replace(" ", "_")
        cwd.mkdir(parents=True)
        args, _ = BAD_INPUT[case]
        return cwd, cli(cwd, *(a.format(**places) for a in args))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(BAD_INPUT, pool.map(one, BAD_INPUT), strict=True))


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_in_one_line_and_leaves_no_run_dir(
    refusals: dict[str, tuple[Path, subprocess.CompletedProcess]], case: str
) -> None:
    cwd, proc = refusals[case]
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if ERROR_LINE.match(line)]
    assert len(errors) == 1, text
    for part in BAD_INPUT[case][1]:
        assert part in errors[0], (part, errors[0])
    assert not (cwd / "runs").exists(), list((cwd / "runs").rglob("*"))


def test_a_refused_run_writes_nothing_into_an_existing_run(tmp_path: Path) -> None:
    run = tmp_path / "old_run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run / "app.log").write_text("[00:00:00] the old run's log\n")
    (run / "pareto.csv").write_text("design,area_mm2\n0,26.96\n")
    before = snapshot(run)
    proc = cli(tmp_path, f"hydra.run.dir={run}", "algorithm.n_gen=5")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "already holds a run" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(run) == before


def test_two_runs_started_together_get_their_own_directories(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = list(pool.map(lambda seed: cli(tmp_path, *TINY, f"seed={seed}"), (1, 2)))
    for proc in procs:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    dirs = sorted((tmp_path / "runs").glob("*/*"))
    assert len(dirs) == 2, dirs
    seeds = {yaml.safe_load((d / ".hydra" / "config.yaml").read_text())["seed"] for d in dirs}
    assert seeds == {1, 2}
    for d in dirs:
        seed = yaml.safe_load((d / ".hydra" / "config.yaml").read_text())["seed"]
        assert json.loads((d / "run.json").read_text())["config"]["seed"] == seed
        assert len(pd.read_csv(d / "pareto.csv")) > 0


def test_one_new_folder_is_claimed_by_one_run_only(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "run"
    won, lost = [], []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        try:
            won.append(claim_run_dir(target))
        except RunDirError as err:
            lost.append(str(err))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 7
    assert all("already holds a run" in m for m in lost)
    release_run_dir(target)
    # the claim is undone; which folders go depends on which thread made them (a losing thread
    # may have made the run directory itself), so only the sequential test below checks them
    assert not (target / ".hydra").exists()


def test_a_released_claim_removes_the_folders_it_made(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    claim_run_dir(tmp_path / "a" / "b" / "run")
    assert release_run_dir(tmp_path / "a" / "b" / "run")
    assert not (tmp_path / "a" / "b").exists() and (tmp_path / "a").is_dir()


def test_release_keeps_a_run_that_wrote_outputs(tmp_path: Path) -> None:
    claim_run_dir(tmp_path / "run")
    (tmp_path / "run" / CHECKPOINT).write_bytes(b"state")
    assert not release_run_dir(tmp_path / "run")
    assert (tmp_path / "run" / CHECKPOINT).is_file()
    with pytest.raises(RunDirError, match=r"already holds a run \(\.hydra, checkpoint\.pkl\)"):
        claim_run_dir(tmp_path / "run")


# ------------------------------------------------------------------ resume records its config

def test_resume_records_the_configuration_it_used(tmp_path: Path) -> None:
    first = run_app(compose_cfg(*TINY), tmp_path / "first", TINY)
    overrides = [*TINY, f"resume={first}", "seed=5", "algorithm.n_gen=3"]
    record = tmp_path / "more" / ".hydra" / "config.yaml"
    record.parent.mkdir(parents=True)
    record.write_text("seed: 5\n")  # what Hydra wrote: the command line's config
    run_app(compose_cfg(*overrides), tmp_path / "more", overrides, config_file=record)
    used = yaml.safe_load(record.read_text())
    assert used["seed"] == 0 and used["algorithm"]["n_gen"] == 3
    assert used["resume"] == str(first)
    assert json.loads((tmp_path / "more" / "run.json").read_text())["config"]["seed"] == 0


# ------------------------------------------------------------------ atomic outputs

def test_a_write_that_fails_midway_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = pd.DataFrame({"design": [0, 1], "area_mm2": [26.96, 13.48]})
    tables = RunTables(pareto=frame, archive=frame, history=frame, meta={"seed": 0})
    tables.write(tmp_path)
    before = snapshot(tmp_path)

    def half_then_fail(self: pd.DataFrame, fh, **kwargs) -> None:
        fh.write(b"design,ar")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match=r"No space left on device: '.*pareto\.csv'"):
        tables.write(tmp_path)
    assert snapshot(tmp_path) == before  # old files whole, no temporary left


KILLED_WRITER = """
import sys, time
from xpert_evo.files import atomic_write

def slow(fh):
    fh.write(b"x" * 1_000_000)
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)

atomic_write(sys.argv[1], slow)
"""


def test_a_kill_during_a_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "pareto.csv"
    target.write_text("design,area_mm2\n0,26.96\n")
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        assert target.read_text() == "design,area_mm2\n0,26.96\n"  # a reader, mid-write
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert target.read_text() == "design,area_mm2\n0,26.96\n"


# ------------------------------------------------------------------ verified checkpoints

def setup_of(*overrides: str):
    return build_search(compose_cfg(*SEARCH, *overrides), estimator=CapacityStandIn())


def test_a_flipped_byte_is_refused_and_the_previous_checkpoint_resumes_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "full").mkdir()
    full = SearchRun(setup_of(), tmp_path / "full").start().run()

    class Stop(KeyboardInterrupt):
        pass

    def interrupt(run: SearchRun, generation: int) -> None:
        if generation == 3:
            raise Stop

    cut = tmp_path / "cut"
    cut.mkdir()
    with pytest.raises(Stop):
        SearchRun(setup_of(), cut, interrupt).start().run()
    flip_byte(cut / CHECKPOINT)  # one bit of the pickled state
    with caplog.at_level("WARNING"):
        state = load_checkpoint(cut)
    assert state["history"][-1]["generation"] == 2
    assert f"{CHECKPOINT}: checksum mismatch" in caplog.text and PREVIOUS in caplog.text
    (tmp_path / "resumed").mkdir()
    resumed = SearchRun(setup_of(), tmp_path / "resumed").resume(state).run()
    np.testing.assert_array_equal(resumed.archive.x, full.archive.x)
    np.testing.assert_array_equal(resumed.archive.objectives(), full.archive.objectives())
    assert resumed.history["hypervolume"].tolist() == full.history["hypervolume"].tolist()

    flip_byte(cut / PREVIOUS)
    with pytest.raises(ConfigError, match=r"no usable checkpoint \(checkpoint\.pkl: checksum "
                                          r"mismatch.*; checkpoint\.prev\.pkl: checksum mismatch"):
        load_checkpoint(cut)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x80\x04}\x94.", "not an xpert_evo search checkpoint"),
        (encode_checkpoint({"config": {}, "archive": None}), "not a search state"),
        (encode_checkpoint({})[:-3], "truncated"),
        (encode_checkpoint({}).replace(b"CHECKPOINT 5", b"CHECKPOINT 3", 1), "format version 3"),
    ],
    ids=["foreign pickle", "wrong shape", "truncated", "other version"],
)
def test_a_foreign_or_broken_checkpoint_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / CHECKPOINT).write_bytes(content)
    with pytest.raises(ConfigError, match=f"resume=.*{message}"):
        load_checkpoint(tmp_path)


# ------------------------------------------------------------------ filesystem errors

def test_a_failing_checkpoint_write_names_the_file_and_keeps_the_last_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    fsync = os.fsync

    def full_at_the_second_checkpoint(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        fsync(fd)

    monkeypatch.setattr("xpert_evo.search.checkpoint.os.fsync", full_at_the_second_checkpoint)
    with pytest.raises(OSError, match=rf"No space left on device: '.*{CHECKPOINT}'"):
        run_app(compose_cfg(*TINY, "algorithm.n_gen=3"), tmp_path / "run")
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "run")["history"][-1]["generation"] == 1
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------ unmeetable constraints

@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("constraints.area_mm2=10.5",
         r"constraints\.area_mm2=10\.5: met by 0 of \d+ designs, smallest found [\d.]+ mm\^2"),
        ("constraints.accuracy_floor=1e12",
         r"constraints\.accuracy_floor=1e\+12: met by 0 of \d+ designs, largest found"),
    ],
    ids=["area", "accuracy floor"],
)
def test_an_unmeetable_constraint_says_what_was_reached(
    tmp_path: Path, override: str, message: str
) -> None:
    cfg = compose_cfg(*TINY, override)
    with pytest.raises(NoFeasibleDesignError, match=f"no evaluated design meets every.*{message}"):
        run_app(cfg, tmp_path / "run", [*TINY, override])
    assert len(pd.read_csv(tmp_path / "run" / "pareto.csv")) == 0
    assert len(pd.read_csv(tmp_path / "run" / "archive.csv")) > 0

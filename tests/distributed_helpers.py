"""Shared by the sharded-scoring tests: the command, its launchers, and how results are compared.

The fixtures here are imported by the test modules that use them (pytest finds imported fixtures).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from rap_hf.cli import main

# On the CPU even where there is a GPU: the multi-process tests run CPU ranks, and all must agree.
FLAGS = ["--num-rollouts", "2", "--max-new-tokens", "6", "--no-compute-ace", "--map-batch-size", "2", "--device", "cpu",
         # Pixel bounds through every rank, the manifest and the merge: 56 x 56, the tiny model's own size.
         "--min-pixels", "3136", "--max-pixels", "3136"]
SHARD_ROWS = 2  # 8 rows: 4 shards
# Floats from separate processes may differ in the last bits (thread counts decide reduction order).
FLOAT_COLUMNS = ("rap_logit_cde", "rap_ace")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on 2 busy cores, two threads contend and run tiny models many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def rows_dir(world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sharded") / "rows"
    world["train"].select(range(8)).save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="module")
def model(tiny_vlm_paths):
    return str(tiny_vlm_paths["qwen2_5_vl"])


@pytest.fixture(scope="module")
def single(model, rows_dir, tmp_path_factory):
    """The command on one process; its merged output is the reference of the other tests."""
    out = tmp_path_factory.mktemp("single") / "scored"
    assert main(score_args(model, rows_dir, out, "--keep-shards")) == 0
    return out


def score_args(model, rows_dir, out, *extra) -> list[str]:
    return ["score", "--model", model, "--dataset", str(rows_dir), "--output", str(out),
            "--shard-rows", str(SHARD_ROWS), *FLAGS, *extra]


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "RAY_USAGE_STATS_ENABLED": "0"}


def torchrun(ranks: int, args: list[str]) -> list[str]:
    """`torchrun --nproc_per_node ranks -m rap_hf ARGS` on a free port (CPU ranks: gloo)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_port", str(port),
            "-m", "rap_hf", *args]


def shard_dir(out: Path) -> Path:
    return out.with_name(out.name + ".shards")


def shard_files(out: Path) -> dict[str, tuple[bytes, int]]:
    """Each finished shard file (with its record) of `out`: its bytes and modification time."""
    shards = shard_dir(out)
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(shards.glob("shard-*.arrow"))
            if p.with_suffix(".json").exists()}


def assert_same_rows(got, expected):
    assert got.column_names == expected.column_names and got.features == expected.features
    assert list(got["rap_id"]) == list(expected["rap_id"])  # every row once, in input order
    for a, b in zip(got.remove_columns("images"), expected.remove_columns("images")):
        for name in a:
            if name in FLOAT_COLUMNS and a[name] is not None:
                assert a[name] == pytest.approx(b[name], abs=1e-4), name
            else:
                assert a[name] == b[name], (a["rap_id"], name)


def wait_for(condition, process: subprocess.Popen, log: Path, seconds: float = 240, poll: float = 0.02):
    """Poll `condition()` until true; fail with the process's log if it ends first or time runs out."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert process.poll() is None, f"exited {process.returncode} first:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(poll)
    return value


def processes_of(root: int, predicate) -> list[psutil.Process]:
    """Descendants of process `root` for which `predicate(process)` holds (vanished ones skipped)."""
    found = []
    for child in psutil.Process(root).children(recursive=True):
        try:
            if predicate(child):
                found.append(child)
        except psutil.Error:
            continue
    return found


def has_env(name: str, value: str):
    return lambda process: process.environ().get(name) == value


def record_exists(out: Path, index: int, count: int = 4):
    return lambda: (shard_dir(out) / f"shard-{index:05d}-of-{count:05d}.json").exists()

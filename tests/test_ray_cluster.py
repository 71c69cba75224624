"""Sharded scoring on a Ray cluster of two nodes, as a user starts one: `ray start --head` in one
folder, a second node (its own raylet) joining it from another, and `rap-hf score --engine ray
--ray-address` from a third, with relative paths.

- The second node is killed mid-run, its whole process group, as a cluster loses a node: its tasks
  are redone on the surviving node and the output is whole.
- A node that does not share the driver's storage (a private mount namespace hides the driver's
  folder from it, as a node's own disk would) is refused in one line before any work.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from datasets import load_from_disk
from distributed_helpers import (  # noqa: F401  (fixtures)
    model,
    one_thread,
    rows_dir,
    single,
)
from distributed_helpers import assert_same_rows, processes_of, score_args, subprocess_env, wait_for

pytest.importorskip("ray")

RAY = str(Path(sys.executable).with_name("ray"))
# The nodes' address, on the loopback: Ray replaces 127.0.0.1 itself by the machine's network address
# ("remotely reachable"), but takes any other loopback address as given, and the driver then finds its
# node there too.
LOOPBACK = "127.0.0.2"
START_SECONDS = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _alive_nodes(address: str) -> int:
    """Nodes the cluster at `address` counts as alive (asked in a fresh process, as `ray status` would)."""
    probe = ("import ray, logging; ray.init(address=%r, logging_level=logging.ERROR); "
             "print(sum(1 for n in ray.nodes() if n['Alive']))" % address)
    result = subprocess.run([sys.executable, "-c", probe], env=_env(), capture_output=True, text=True, timeout=120)
    return int(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 and result.stdout.strip() else 0


# The cluster's own token, shared by its nodes and drivers (Ray 2.60 refuses a joining node without one);
# given in the environment, so nothing is written to ~/.ray.
TOKEN = uuid.uuid4().hex


def _env() -> dict[str, str]:
    return {**subprocess_env(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}


class Cluster:
    """A head node and a second node on the loopback (`LOOPBACK`), each `ray start --block` in its own session and
    folder; `stop()` kills each session's process group (never `ray stop`, which would end any other
    cluster of this machine)."""

    def __init__(self, root: Path, *, hidden_from_second: Path | None = None):
        self.port = _free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        self.nodes: list[subprocess.Popen] = []
        self.logs = root / "ray-logs"
        self.logs.mkdir()
        common = ["--num-cpus=1", "--block", "--disable-usage-stats", f"--node-ip-address={LOOPBACK}"]
        self._start(root / "head", [RAY, "start", "--head", f"--port={self.port}", "--include-dashboard=false",
                                    *common])
        self._wait_for_nodes(1)
        second = [RAY, "start", f"--address={self.address}", *common]
        if hidden_from_second is not None:
            # The second node's own view of the disk: the driver's folder is an empty tmpfs there.
            second = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                      f'mount -t tmpfs tmpfs "{hidden_from_second}" && exec "$@"', "sh", *second]
        self._start(root / "second", second)
        self._wait_for_nodes(2)

    def _start(self, folder: Path, command: list[str]) -> None:
        folder.mkdir()
        log = open(self.logs / f"{folder.name}.log", "w")
        self.nodes.append(subprocess.Popen(command, cwd=folder, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def _wait_for_nodes(self, count: int) -> None:
        deadline = time.monotonic() + START_SECONDS
        while _alive_nodes(self.address) < count:
            for node in self.nodes:
                assert node.poll() is None, self.log_tail()
            assert time.monotonic() < deadline, f"the cluster did not reach {count} nodes\n{self.log_tail()}"
            time.sleep(1)

    def kill_second_node(self) -> None:
        os.killpg(self.nodes[1].pid, signal.SIGKILL)

    def stop(self) -> None:
        for node in self.nodes:
            try:
                os.killpg(node.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            node.wait(timeout=60)
        # `ray start` registered the head as this machine's current cluster: a later bare `ray.init()`
        # would try to join the dead one.
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.exists() and current.read_text().strip().endswith(f":{self.port}"):
            current.unlink(missing_ok=True)

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.logs.glob("*.log")))


def _can_hide_folders() -> bool:
    """Whether this machine lets a process mount a tmpfs in a private mount namespace (root, unshare)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs tmpfs /mnt"], capture_output=True, timeout=30)
    return probe.returncode == 0


def _driver(tmp_path: Path, rows_dir: Path, model: str) -> tuple[Path, list[str]]:
    """A folder of its own for the driver, with its rows, and `rap-hf score` with relative paths."""
    driver = tmp_path / "driver"
    driver.mkdir()
    shutil.copytree(rows_dir, driver / "rows")
    args = score_args(os.path.relpath(model, driver), Path("rows"), Path("scored"), "--keep-shards", "--engine",
                      "ray")
    return driver, args


def test_two_nodes_with_relative_paths_survive_losing_a_node(single, model, rows_dir, tmp_path):
    driver, args = _driver(tmp_path, rows_dir, model)
    cluster = Cluster(tmp_path)
    try:
        log = tmp_path / "driver.log"
        with open(log, "w") as out:
            process = subprocess.Popen([sys.executable, "-m", "rap_hf", *args, "--ray-address", cluster.address],
                                       cwd=driver, env=_env(), stdout=out, stderr=subprocess.STDOUT)
        try:
            # The second node's first shard task is running: the node goes, with its worker.
            wait_for(lambda: processes_of(cluster.nodes[1].pid, lambda p: p.cmdline()[:1] == ["ray::_score_shard"]),
                     process, log, seconds=300, poll=0.05)
            cluster.kill_second_node()
            assert process.wait(timeout=420) == 0, log.read_text()[-3000:] + cluster.log_tail()
        finally:
            if process.poll() is None:
                process.kill()
        assert "Scored 8 rows (0 with rap_error)" in log.read_text()
        # Every shard where the driver looks (not in the nodes' own folders), every row once, in order.
        assert sorted(p.name for p in (driver / "scored.shards").glob("shard-*.arrow")) == [
            f"shard-{i:05d}-of-00004.arrow" for i in range(4)]
        assert not list((tmp_path / "head").glob("scored*")) and not list((tmp_path / "second").glob("scored*"))
        assert_same_rows(load_from_disk(str(driver / "scored")), load_from_disk(str(single)))
    finally:
        cluster.stop()


@pytest.mark.skipif(not _can_hide_folders(), reason="needs root and unshare to give a node its own disk")
def test_a_node_that_does_not_share_the_output_folder_is_refused_before_any_work(model, rows_dir, tmp_path):
    driver, args = _driver(tmp_path, rows_dir, model)
    cluster = Cluster(tmp_path, hidden_from_second=driver)
    try:
        result = subprocess.run([sys.executable, "-m", "rap_hf", *args, "--ray-address", cluster.address],
                                cwd=driver, env=_env(), capture_output=True, text=True, timeout=300)
    finally:
        cluster.stop()
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("rap-hf score: error: Ray node ") and f"({LOOPBACK}) does not see " in last
    assert f"{driver / 'scored.shards'} as the driver does" in last and "nothing was scored" in last
    assert not (driver / "scored.shards").exists() and not (driver / "scored").exists()

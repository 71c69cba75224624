"""How long a fresh Space takes to show its default Overview: `python spaces_demo/app.py` with no
argument and an empty cache, as a Space restarting on a new machine runs it.

    python -m benchmarks.space_start [--repeats 1] [--out benchmarks/results/space_start.json]

Each repeat starts app.py in a fresh process with a fresh cache, waits until its page answers
(`served_seconds`), then asks the Overview through `gradio_client` until it counts the embedded
world's 240 rows (`overview_seconds`: the shipped scorer has scored the world by then). Goal: the
Overview within 60 s on 2 CPU cores. Run it alone on the machine: another torch process beside it
slows both several times over. tests/test_demo.py checks what the fresh Space shows, not how fast.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import write_results

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 60.0
WORLD_ROWS = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(check, deadline: float, what: str):
    while time.perf_counter() < deadline:
        try:
            found = check()
        except Exception:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not happen in time")


def one_start(timeout: float) -> dict[str, float]:
    """Start app.py on an empty cache; seconds until it serves and until its Overview counts the world."""
    import httpx
    from gradio_client import Client

    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k not in ("RAP_DATASET", "RAP_MODEL")}
        env.update(RAP_HF_CACHE=cache, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
        port = _free_port()
        url = f"http://127.0.0.1:{port}/"
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, str(ROOT / "spaces_demo" / "app.py"), "--port", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            deadline = started + timeout
            _until(lambda: httpx.get(url, timeout=2).status_code == 200, deadline, "app.py serving")
            served = time.perf_counter() - started
            client = Client(url, verbose=False)

            def counted() -> bool:
                table = client.predict(0.5, 0.1, True, 0, api_name="/overview")[1]
                return sum(int(line[1]) for line in table["data"]) == WORLD_ROWS

            _until(counted, deadline, "the Overview counting the world")
            overview = time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(timeout=30)
    return {"served_seconds": round(served, 1), "overview_seconds": round(overview, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0, help="Seconds before a start counts as failed.")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "space_start.json"))
    args = parser.parse_args(argv)
    runs = [one_start(args.timeout) for _ in range(args.repeats)]
    slowest = max(run["overview_seconds"] for run in runs)
    results = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": {"repeats": args.repeats},
        "goals": {"overview_seconds": GOAL_SECONDS},
        "runs": runs,
        "goals_met": {"overview_seconds": slowest <= GOAL_SECONDS},
    }
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()

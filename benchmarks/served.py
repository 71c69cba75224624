"""Real OpenAI-protocol servers on this machine, for the server-backend benchmark and tests.

`Served` starts `transformers serve` on a local model folder (bound to 127.0.0.1, a free port, its own
process group, so stopping it is a crash as a client sees one) and stops it however the caller ends.
`echo_app` is a minimal OpenAI-protocol server that answers at once with a fixed response: it measures
what the client itself can sustain, with no model in the way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SERVE_START_TIMEOUT = 180
ECHO_RESPONSE = "<think> It is red. The shape in the picture is red. </think> \\boxed{red}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer {url}/health within {timeout:.0f} s")


class Served:
    """`transformers serve FOLDER` on 127.0.0.1:`port` (a free one by default), started at once.

    The model is named as the folder is given (`name`), as `/v1/models` lists it; `cwd` is where a
    relative folder is found.
    """

    def __init__(self, folder: str, port: int | None = None, *, cwd: str | None = None, log: Path | None = None,
                 threads: int = 1):
        self.folder, self.cwd, self.log, self.threads = folder, cwd, log, threads
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return self.folder

    def start(self) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "OMP_NUM_THREADS": str(self.threads)}
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        command = [str(Path(sys.executable).with_name("transformers")), "serve", self.folder, "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning"]
        self.process = subprocess.Popen(command, cwd=self.cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        try:
            wait_for_health(self.url, self.process, SERVE_START_TIMEOUT, f"transformers serve (log: {self.log})")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill the server's whole process group (gone at once, as a crashed node's server is)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def echo_app(model: str, root: str | None = None):
    """A Starlette app speaking the protocol's three routes, answering every completion with
    `ECHO_RESPONSE` (`n` choices, as vLLM does) at once. `root` is listed at /v1/models as vLLM lists
    the weights it serves under the model's name."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def health(request):
        return JSONResponse({"status": "ok"})

    async def models(request):
        listed = {"id": model, "object": "model", "owned_by": "echo", "created": 0, **({"root": root} if root else {})}
        return JSONResponse({"object": "list", "data": [listed]})

    async def complete(request):
        body = await request.json()
        choices = [{"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": ECHO_RESPONSE}}
                   for i in range(int(body.get("n") or 1))]
        return JSONResponse({"id": "echo", "object": "chat.completion", "created": 0, "model": body["model"],
                             "choices": choices})

    return Starlette(routes=[Route("/health", health), Route("/v1/models", models),
                             Route("/v1/chat/completions", complete, methods=["POST"])])


class Echo:
    """`echo_app` under uvicorn in a process of its own on 127.0.0.1 (`port`: a free one by default)."""

    def __init__(self, model: str, root: str | None = None, port: int | None = None):
        self.port = port or free_port()
        code = ("import sys, uvicorn; from benchmarks.served import echo_app; "
                f"uvicorn.run(echo_app({model!r}, {root!r}), host='127.0.0.1', port={self.port}, log_level='warning')")
        self.process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                                        cwd=str(Path(__file__).resolve().parents[1]))
        wait_for_health(self.url, self.process, 60, "the echo server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

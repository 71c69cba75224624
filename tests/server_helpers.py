"""A fault-injecting proxy in front of a real OpenAI-protocol server, for the server-backend tests
(`benchmarks.served.Served` starts the real server: `transformers serve` on 127.0.0.1).

`FaultProxy` is a real HTTP server that forwards
to a real server but answers chosen requests itself, as a fleet's load balancer would (503 with
`Retry-After`, 429, a 400 for one row's request, 401 without the right key): the client sees what a
busy, failing or picky deployment sends.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks.served import Served, free_port

__all__ = ["FaultProxy", "Served", "free_port"]

Rule = Callable[[str, str, dict], "tuple[int, dict, dict] | None"]


class FaultProxy:
    """A real HTTP server on 127.0.0.1 forwarding to `target`, except where `rule` answers itself.

    `rule(method, path, body)` returns None to forward, or (status, headers, JSON body) to answer.
    `seen` counts the requests per path, `answered` the ones the rule answered.
    """

    def __init__(self, target: str, rule: Rule | None = None):
        self.target = target.removeprefix("http://")
        self.rule = rule or (lambda method, path, body: None)
        self.seen: dict[str, int] = {}
        self.answered = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                proxy._handle(self, "GET")

            def do_POST(self):
                proxy._handle(self, "POST")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.seen[handler.path] = self.seen.get(handler.path, 0) + 1
            answer = self.rule(method, handler.path, {**body, "_headers": headers})
            if answer is not None:
                self.answered += 1
        if answer is not None:
            status, extra, payload = answer
            data = json.dumps(payload).encode()
        else:
            connection = http.client.HTTPConnection(self.target, timeout=600)
            forward = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
            connection.request(method, handler.path, body=raw or None, headers=forward)
            response = connection.getresponse()
            status, data = response.status, response.read()
            extra = {"Content-Type": response.getheader("Content-Type", "application/json")}
            connection.close()
        handler.send_response(status)
        for key, value in extra.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

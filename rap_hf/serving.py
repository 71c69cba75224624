"""The settings of the server backend, shared by scoring (`RAPConfig`) and evaluation (`EvalConfig`).

With `backend="server"`, rollouts come from OpenAI-protocol inference servers (vLLM, SGLang, TGI,
Inference Endpoints, `transformers serve`) instead of a model loaded here. These fields say which
servers, how many requests may be in flight, and how long to wait for a server that stopped
answering. Only `server_urls`' model identity and the sampling settings decide what is computed;
the rest (`SERVER_EXECUTION_FIELDS`) may change when a run is resumed. The API key is never part of
`to_dict()`, a repr, a fingerprint, a manifest or a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from .checks import check_range, parse_mapping

API_KEY_ENV = "RAP_SERVER_API_KEY"
# Fields that say where and how fast requests go, not what they compute: a resume may change them.
SERVER_EXECUTION_FIELDS = ("server_urls", "server_concurrency", "server_timeout", "server_max_wait")
BACKENDS = ("transformers", "server")


@dataclass
class ServerSettings:
    """Fields of a config whose rollouts may come from inference servers (`backend="server"`)."""

    backend: Literal["transformers", "server"] = field(
        default="transformers",
        metadata={"help": "Where rollouts come from: 'transformers' (generate, in this process) or 'server' "
                          "(OpenAI-protocol servers at --server-url: vLLM, SGLang, TGI, Inference Endpoints, "
                          "transformers serve; the model is then named as the server names it)."},
    )
    server_urls: list[str] | None = field(
        default=None,
        metadata={"help": "With --backend server: the servers' base URLs (http://host:8000 or .../v1); several "
                          "share the load, and a server that fails is skipped while the others answer.",
                  "aliases": ["--server-url"], "action": "extend"},
    )
    server_concurrency: int = field(
        default=32, metadata={"help": "With --backend server: requests in flight at once, over all servers."}
    )
    server_timeout: float = field(
        default=600.0, metadata={"help": "With --backend server: seconds one request may take before it is retried."}
    )
    server_max_wait: float = field(
        default=120.0,
        metadata={"help": "With --backend server: seconds a request may keep failing (no server answering, or "
                          "every one overloaded) before the run stops; finished shards are kept."},
    )
    server_n: Literal["auto", "on", "off"] = field(
        default="auto",
        metadata={"help": "With --backend server: draw a row's M rollouts with one request of n = M ('on'; vLLM and "
                          "SGLang honour it), with M requests of their own seeds ('off'), or 'auto': n where the "
                          "server returns as many choices as asked."},
    )
    server_extra_body: dict | str | None = field(
        default=None,
        metadata={"help": "With --backend server: fields added to every request, as a mapping (JSON on the command "
                          "line), e.g. vLLM's '{\"top_k\": -1, \"repetition_penalty\": 1.0}' (see "
                          "docs/scoring-at-scale.md)."},
    )
    server_api_key: str | None = field(
        default=None, repr=False,
        metadata={"help": f"With --backend server: the servers' API key (default: ${API_KEY_ENV}). Never written "
                          "to a log, manifest, card or message."},
    )

    def check_server_settings(self) -> None:
        if self.backend not in BACKENDS:
            hint = " (vLLM is reached as a server: `vllm serve`, then --backend server)" if self.backend == "vllm" else ""
            raise ValueError(f"backend must be 'transformers' or 'server', got {self.backend!r} (--backend on the "
                             f"command line){hint}")
        if isinstance(self.server_urls, str):
            self.server_urls = [self.server_urls]
        if self.backend == "server" and not self.server_urls:
            raise ValueError("backend='server' needs the servers' URLs: server_urls=[...] (--server-url URL, once "
                             "per server)")
        check_range(self, "server_concurrency", low=1)
        check_range(self, "server_timeout", low=0, low_open=True)
        check_range(self, "server_max_wait", low=0)
        if self.server_n not in ("auto", "on", "off"):
            raise ValueError(f"server_n must be 'auto', 'on' or 'off', got {self.server_n!r} (--server-n on the "
                             "command line)")
        self.server_extra_body = parse_mapping(self.server_extra_body, "server_extra_body")

    @property
    def uses_server(self) -> bool:
        return self.backend == "server"

    def api_key(self) -> str | None:
        """The key sent to the servers: the setting, else the environment's `RAP_SERVER_API_KEY`."""
        return self.server_api_key or os.environ.get(API_KEY_ENV) or None


def without_secrets(values: dict[str, Any]) -> dict[str, Any]:
    """A config's `asdict` without the API key (what `to_dict()` returns)."""
    return {k: v for k, v in values.items() if k != "server_api_key"}

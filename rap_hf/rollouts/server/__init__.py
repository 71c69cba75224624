"""Rollouts from OpenAI-protocol inference servers (vLLM, SGLang, TGI, Inference Endpoints,
`transformers serve`): the client pool (`client.py`), what is sent (`messages.py`), the engine
(`engine.py`) and the start check (`probe.py`)."""

from .client import RequestRejected, ServerPool, ServerRefused, ServerUnavailable, api_base
from .engine import ServerEngine
from .probe import ServerCheck, check_servers

__all__ = ["RequestRejected", "ServerCheck", "ServerEngine", "ServerPool", "ServerRefused", "ServerUnavailable",
           "api_base", "check_servers"]

"""Requests to a fleet of OpenAI-protocol servers: many in flight, retried across the fleet, and a
bounded wait when every server is gone.

`ServerPool` holds one `openai.AsyncOpenAI` client per server (the protocol's reference client:
it speaks to vLLM, SGLang, TGI, Inference Endpoints and `transformers serve` alike, and unlike
huggingface_hub's `AsyncInferenceClient` it neither refuses local URLs under `HF_HUB_OFFLINE=1` nor
sends the user's Hub token to a server it was not given for). The clients run on one event loop in
a background thread, so the scorer, a plain function `datasets.map` calls, sends a batch's requests
at once and waits for them.

What a failure means:
- 429, 408, 409, 425 and 5xx, timeouts and dropped connections: the server is busy or gone for now.
  The request is retried after a backoff (or the server's `Retry-After`), on the least-busy server
  that is not backing off; a server that failed is skipped until its backoff ends.
- Any other 4xx (400: an image the server cannot read, a prompt too long): the request, and so its
  row, is rejected (`RequestRejected`, with the server's reason).
- 401 / 403 (the API key) and 404 (another model, another path): the run cannot go on
  (`ServerRefused`).
- A request that keeps failing for `max_wait` seconds stops the run (`ServerUnavailable`): finished
  shards stay, and the same command resumes once a server answers again.

The API key is sent as the `Authorization` header and never appears in an error message.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from ...retry import RunError, RunStopped

RETRIED_STATUSES = frozenset({408, 409, 425, 429})
REFUSED_STATUSES = frozenset({401, 403, 404})
OPENAI_MISSING = ('The server backend needs the `openai` client: pip install "rap-hf[server]" '
                  '(or pip install openai).')
# Backoff between tries of one request: 0.5 s, doubling, at most 10 s, with jitter so a fleet's
# clients do not retry in step.
FIRST_BACKOFF, LONGEST_BACKOFF = 0.5, 10.0


class ServerUnavailable(RunStopped, RuntimeError):
    """No server answered one request for `max_wait` seconds: the run stops, finished work kept."""


class ServerRefused(RunError, ValueError):
    """A server refused the run itself (the API key, the model, the URL): nothing can be scored."""


class RequestRejected(ValueError):
    """The server refused this one request (a 4xx other than 401/403/404): its row fails alone."""


def api_base(url: str) -> str:
    """A server URL as the client's base: `http://host:8000` and `http://host:8000/v1/` both become
    `http://host:8000/v1`."""
    url = url.strip().rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def retry_after(headers) -> float | None:
    """The seconds a `Retry-After` (or `retry-after-ms`) header asks for, or None."""
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return None if when is None else max(0.0, when.timestamp() - time.time())


@dataclass
class _Server:
    url: str
    client: Any  # openai.AsyncOpenAI
    in_flight: int = 0
    resting_until: float = 0.0  # monotonic time before which requests go elsewhere
    last_failure: str = ""


class ServerPool:
    """One client per server URL, `concurrency` requests in flight over all of them.

    Args:
        urls: The servers' base URLs (`api_base` adds `/v1` where missing).
        api_key: Sent as a bearer token; None sends a placeholder (servers without keys ignore it).
        concurrency: Requests in flight at once, over all servers.
        timeout: Seconds one request may take before it counts as failed (and is retried).
        max_wait: Seconds one request may keep failing before `ServerUnavailable` stops the run.
    """

    def __init__(self, urls: Sequence[str], *, api_key: str | None = None, concurrency: int = 32,
                 timeout: float = 600.0, max_wait: float = 120.0):
        try:
            import openai
        except ImportError as error:
            raise ImportError(OPENAI_MISSING) from error
        from openai.types.chat import ChatCompletion

        self._openai = openai
        self._completion = ChatCompletion
        self._key = api_key or ""
        self.concurrency = concurrency
        self.max_wait = max_wait
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rap-hf-server-pool", daemon=True)
        self._thread.start()
        # Retries are ours (across servers, with a bounded wait), so the client's own are off.
        self.servers = [_Server(api_base(url), openai.AsyncOpenAI(base_url=api_base(url), api_key=api_key or "none",
                                                                  timeout=timeout, max_retries=0))
                        for url in urls]
        self._slots: asyncio.Semaphore | None = None

    # ----------------------------------------------------------------- from synchronous code
    def run(self, coroutine: Coroutine) -> Any:
        """Run `coroutine` on the pool's loop and wait for its result (from any other thread)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C, or a failure: stop what is still in flight
            raise

    def close(self) -> None:
        """Close the clients and stop the loop (the pool cannot be used afterwards)."""
        if self._loop.is_closed():
            return

        async def close_clients():
            for server in self.servers:
                await server.client.close()

        try:
            self.run(close_clients())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    # ----------------------------------------------------------------- requests
    def redact(self, text: str) -> str:
        """`text` with the API key blanked out (a server may echo what it was sent)."""
        return text.replace(self._key, "***") if len(self._key) >= 4 else text

    async def complete(self, body: dict[str, Any]):
        """One chat completion (`body`: the request's JSON, as the protocol names its fields), retried
        across the servers until it succeeds, is rejected, or has failed for `max_wait` seconds."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            return await self._complete(body)

    async def _complete(self, body: dict[str, Any]):
        openai = self._openai
        first_failure: float | None = None
        attempt = 0
        while True:
            server = self._pick()
            wait = server.resting_until - time.monotonic()
            if wait > 0:  # every server is backing off: wait for the first to come back
                await asyncio.sleep(wait)
            server.in_flight += 1
            try:
                # The client's generic POST: its typed `chat.completions.create` walks every message part
                # (data URLs included) to transform it, which costs more than the request itself.
                return await server.client.post("/chat/completions", body=body, cast_to=self._completion)
            except openai.APIStatusError as error:
                status = error.status_code
                reason = self.redact(_reason(error))
                if status in REFUSED_STATUSES:
                    raise ServerRefused(_refusal(server.url, status, reason)) from None
                if status not in RETRIED_STATUSES and status < 500:
                    raise RequestRejected(f"the server rejected the request (HTTP {status}): {reason}") from None
                delay = retry_after(error.response.headers)
                failure = f"HTTP {status}: {reason}"
            except openai.APIConnectionError as error:  # refused, dropped, or timed out
                delay, failure = None, self.redact(describe_connection_error(error))
            finally:
                server.in_flight -= 1
            now = time.monotonic()
            first_failure = first_failure if first_failure is not None else now
            server.last_failure = failure
            if now - first_failure >= self.max_wait:
                raise ServerUnavailable(self._unavailable(now - first_failure)) from None
            backoff = min(LONGEST_BACKOFF, FIRST_BACKOFF * 2 ** attempt) * random.uniform(0.75, 1.25)
            server.resting_until = now + min(delay if delay is not None else backoff, self.max_wait)
            attempt += 1

    def _pick(self) -> _Server:
        """The server to send to: the least busy of those not backing off, else the first to come back."""
        now = time.monotonic()
        ready = [s for s in self.servers if s.resting_until <= now]
        if ready:
            return min(ready, key=lambda s: s.in_flight)
        return min(self.servers, key=lambda s: s.resting_until)

    def _unavailable(self, waited: float) -> str:
        failures = "; ".join(f"{s.url}: {s.last_failure or 'no failure seen'}" for s in self.servers)
        return (f"no server answered for {waited:.0f} s (--server-max-wait {self.max_wait:g}): {failures}. Finished "
                "work is kept: run the same command again once a server answers")


def describe_connection_error(error) -> str:
    """A connection failure in a few words: the underlying error's type and message (the client's own
    says only "Connection error.")."""
    cause = error.__cause__ or error
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _reason(error) -> str:
    """The server's own words for an error response (its JSON `message` or `detail`, else the body)."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        for key in ("message", "detail", "error"):
            value = inner.get(key) if isinstance(inner, dict) else None
            if value:
                return str(value)[:300]
    text = getattr(error, "message", None) or str(error)
    return text.splitlines()[0][:300] if text else "no reason given"


def _refusal(url: str, status: int, reason: str) -> str:
    if status in (401, 403):
        return (f"{url} refused the API key (HTTP {status}: {reason}): set $RAP_SERVER_API_KEY (or "
                "--server-api-key) to a key this server accepts")
    return (f"{url} answered HTTP 404 ({reason}): check --server-url (the server's base URL) and --model (the name "
            "the server lists at /v1/models)")

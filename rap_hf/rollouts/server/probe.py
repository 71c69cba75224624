"""The start check of the server backend: every server reachable, serving the model, taking images.

Run before anything is written, it fails in one line that names each server's problem and what the
servers do serve. What it learns is kept: the model's identity as the servers describe it (for cache
keys and manifests: a resume against a server that now serves other weights under the same name is
refused) and whether the servers honour `n`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from .client import (LONGEST_BACKOFF, RETRIED_STATUSES, ServerPool, ServerRefused, ServerUnavailable,
                     describe_connection_error)
from .messages import data_url

# What names the served weights in /v1/models (vLLM adds root, parent and max_model_len); `created`
# and `permission` change from one call to the next.
IDENTITY_FIELDS = ("id", "root", "parent", "owned_by", "max_model_len")
PROBE_TIMEOUT = 30.0


@dataclass
class ServerCheck:
    """What the start check found: the model's identity and whether the servers honour `n`."""

    name: str
    identity: dict[str, Any]
    honours_n: bool | None

    def identity_string(self) -> str:
        return "server:" + json.dumps(self.identity, sort_keys=True, default=str)


def check_servers(pool: ServerPool, model: str, *, with_image: bool = True, n: int = 2,
                  extra_body: dict | None = None, strict: bool = True) -> ServerCheck:
    """Check every server of `pool` serves `model` and answers a small request (with a picture unless
    `with_image=False`; with `n` choices, to learn whether `n` is honoured). Raises `ServerRefused`
    (one line) naming each problem.

    `strict=False` is for a worker joining a run that was checked at its start: a server it cannot
    reach may have died since, so it is set aside (the pool tries it again later) rather than refused,
    as long as one server answers within `pool.max_wait` seconds (else `ServerUnavailable`).
    """
    return pool.run(_check(pool, model, with_image, n, dict(extra_body or {}), strict))


class _Unreachable(str):
    """Why a server could not be reached (as opposed to a server that answered something wrong)."""


async def _check(pool: ServerPool, model: str, with_image: bool, n: int, extra_body: dict,
                 strict: bool) -> ServerCheck:
    deadline = time.monotonic() + pool.max_wait
    while True:
        listed = await asyncio.gather(*(_listed_models(pool, server) for server in pool.servers))
        reachable = [not isinstance(models, _Unreachable) for models in listed]
        if strict or any(reachable) or time.monotonic() >= deadline:
            break
        await asyncio.sleep(2)
    if not strict and not any(reachable):
        raise ServerUnavailable(f"no server answered for {pool.max_wait:g} s (--server-max-wait): "
                                + "; ".join(f"{s.url} {why}" for s, why in zip(pool.servers, listed)))
    problems, identities, answering = [], {}, []
    for server, models in zip(pool.servers, listed):
        if isinstance(models, _Unreachable) and not strict:
            _set_aside(server, models)
        elif isinstance(models, str):
            problems.append(f"{server.url} {models}")
        elif model not in models:
            problems.append(f"{server.url} does not serve {model!r}; it serves {', '.join(map(repr, models)) or 'nothing'}")
        else:
            identities[server.url] = models[model]
            answering.append(server)
    if problems:
        raise ServerRefused("; ".join(problems) + " (--server-url, --model)")
    if len({json.dumps(i, sort_keys=True, default=str) for i in identities.values()}) > 1:
        described = "; ".join(f"{url}: {identity}" for url, identity in identities.items())
        raise ServerRefused(f"the servers serve different models under {model!r} ({described}): give servers of "
                            "one model")
    probed = await asyncio.gather(*(_probe(pool, server, model, with_image, n, extra_body) for server in answering))
    honours = []
    for server, outcome in zip(answering, probed):
        if not isinstance(outcome, _Unreachable):
            honours.append(outcome)
        elif strict:
            raise ServerRefused(f"{server.url} {outcome} (--server-url)")
        else:  # it went away (or got busy) between listing its models and answering
            _set_aside(server, outcome)
    if not honours:
        raise ServerUnavailable("no server answered a first request: "
                                + "; ".join(f"{s.url} {s.last_failure}" for s in answering))
    return ServerCheck(model, next(iter(identities.values())), all(honours) if n > 1 else None)


async def _listed_models(pool: ServerPool, server) -> dict[str, dict] | str:
    """{model id: its identity fields} from the server's /v1/models, or what went wrong, as words
    (`_Unreachable` when nothing answered)."""
    openai = pool._openai
    try:
        page = await server.client.with_options(timeout=PROBE_TIMEOUT).models.list()
    except openai.APIStatusError as error:
        if error.status_code in (401, 403):
            return f"refused the API key (HTTP {error.status_code}): set $RAP_SERVER_API_KEY or --server-api-key"
        return f"answered /v1/models with HTTP {error.status_code}: is it an OpenAI-protocol server?"
    except openai.APIConnectionError as error:
        return _Unreachable(f"is unreachable ({pool.redact(describe_connection_error(error))})")
    found = {}
    for entry in page.data:
        fields = entry.model_dump()
        found[entry.id] = {k: fields[k] for k in IDENTITY_FIELDS if fields.get(k) is not None}
    return found


async def _probe(pool: ServerPool, server, model: str, with_image: bool, n: int,
                 extra_body: dict) -> bool | _Unreachable:
    """One request of one token to `server` (with a small picture): whether it returned `n` choices, or
    why it could not answer now (`_Unreachable`: gone or busy)."""
    from PIL import Image

    content: list[dict] = [{"type": "text", "text": "What colour is this picture?"}]
    if with_image:
        content.insert(0, {"type": "image_url", "image_url": {"url": data_url(Image.new("RGB", (32, 32), "grey"))}})
    request = dict(model=model, messages=[{"role": "user", "content": content}], max_tokens=1, temperature=1.0,
                   seed=0, n=n)
    if extra_body:
        request["extra_body"] = extra_body
    openai = pool._openai
    try:
        completion = await server.client.with_options(timeout=PROBE_TIMEOUT).chat.completions.create(**request)
    except openai.APIStatusError as error:
        reason = pool.redact(str(getattr(error, "message", error)))[:300]
        if error.status_code in RETRIED_STATUSES or error.status_code >= 500:
            return _Unreachable(f"is busy or failing (HTTP {error.status_code}: {reason})")
        what = "a request with a picture" if with_image else "a request"
        hint = f"is {model!r} a vision-language model? Serve one that takes images, and c" if with_image else "C"
        raise ServerRefused(f"{server.url} rejected {what} (HTTP {error.status_code}: {reason}). {hint}heck "
                            "--server-extra-body") from None
    except openai.APIConnectionError as error:
        return _Unreachable(f"did not answer a first request ({pool.redact(describe_connection_error(error))})")
    return len(completion.choices or []) >= n


def _set_aside(server, why: str) -> None:
    """A server a joining worker cannot use now: requests try it again after a backoff."""
    server.last_failure = why
    server.resting_until = time.monotonic() + LONGEST_BACKOFF

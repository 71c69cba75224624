"""Rollouts from OpenAI-protocol servers: the same contract as `TransformersEngine.generate`.

A prompt's M rollouts are one request with `n = M` where the server honours `n` (vLLM, SGLang),
seeded with the row's first rollout seed; otherwise M requests, each with its own rollout seed
(`rap_hf.rollouts.sampling.sample_seed`), so a rollout does not depend on the batch it is drawn in.
All of a call's requests are sent at once, `concurrency` of them in flight (`ServerPool`). A request
the server rejects fails its row alone (`PartialFailure`); a server that is gone stops the call
(`ServerUnavailable`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from ...retry import PartialFailure, RunError
from ..transformers_engine import Prompt
from .client import RequestRejected, ServerPool, ServerRefused
from .messages import response_text, server_messages

# Seeds on the wire: 31 bits, the range every server's seed parameter takes.
SEED_MASK = 0x7FFFFFFF


def wire_seed(seed: int) -> int:
    return seed & SEED_MASK


def batch_seeds(seed: int, num_prompts: int, num_samples: int) -> list[list[int]]:
    """Per-rollout seeds for a call made without `sample_seeds` (evaluation): from `seed` and the
    position, as `TransformersEngine` draws a batch from one seeded stream."""
    def one(i: int, j: int) -> int:
        digest = hashlib.sha256(f"{seed}\0{i}\0{j}".encode()).digest()
        return int.from_bytes(digest[:8], "little")
    return [[one(i, j) for j in range(num_samples)] for i in range(num_prompts)]


class ServerEngine:
    """Samples M responses per prompt from the servers of `pool`, which serve `model`.

    Args:
        pool: The servers and their clients.
        model: The model's name as the servers list it (`/v1/models`).
        server_n: "on" (one request with n = M), "off" (M requests) or "auto" (n until a server returns
            fewer choices than asked).
        extra_body: Fields added to every request (server-specific sampling settings).
        pixel_bounds: `min_pixels` / `max_pixels` the pictures are resized into before sending.
        honours_n: Whether the servers honour `n`, when a start check found out (None: not known yet).
    """

    concurrent = True  # many requests in flight: callers send all they can in one call

    def __init__(self, pool: ServerPool, model: str, *, server_n: str = "auto",
                 extra_body: Mapping[str, Any] | None = None, pixel_bounds: Mapping[str, int] | None = None,
                 honours_n: bool | None = None):
        self.pool = pool
        self.model = model
        self.server_n = server_n
        self.extra_body = dict(extra_body or {})
        self.pixel_bounds = dict(pixel_bounds or {})
        self.honours_n = honours_n

    def generate(
        self,
        prompts: Sequence[Prompt],
        num_samples: int,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 2048,
        seed: int = 0,
        sample_seeds: Sequence[Sequence[int]] | None = None,
    ) -> list[list[str]]:
        """`num_samples` responses for each prompt. Raises `PartialFailure` when the servers rejected
        some prompts' requests (those rows' results are None)."""
        if not prompts:
            return []
        if sample_seeds is None:
            sample_seeds = batch_seeds(seed, len(prompts), num_samples)
        if len(sample_seeds) != len(prompts) or any(len(s) != num_samples for s in sample_seeds):
            raise ValueError("sample_seeds needs one list of num_samples seeds per prompt")
        settings = dict(max_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        outcomes = self.pool.run(self._draw_all(prompts, sample_seeds, settings))
        errors = {i: str(outcome) for i, outcome in enumerate(outcomes) if isinstance(outcome, RequestRejected)}
        if errors:
            raise PartialFailure([None if i in errors else o for i, o in enumerate(outcomes)], errors)
        return outcomes

    async def _draw_all(self, prompts, sample_seeds, settings) -> list:
        tasks = [asyncio.ensure_future(self._draw(p, s, settings)) for p, s in zip(prompts, sample_seeds)]
        try:
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()  # a call that was stopped stops its requests (done ones ignore it)
        for outcome in outcomes:  # the run's errors first: a row's rejection means nothing beside them
            if isinstance(outcome, RunError):
                raise outcome
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, RequestRejected):
                raise outcome
        return outcomes

    async def _draw(self, prompt: Prompt, seeds: Sequence[int], settings: dict) -> list[str]:
        """One prompt's rollouts, one per seed."""
        messages = self.messages(prompt)
        texts: list[str] = []
        if len(seeds) > 1 and self.server_n != "off" and self.honours_n is not False:
            texts = await self._request(messages, seeds[0], settings, n=len(seeds))
            if len(texts) == len(seeds):
                self.honours_n = True
                return texts
            if self.server_n == "on":
                raise ServerRefused(f"the server returned {len(texts)} choices for n = {len(seeds)}: it does not "
                                   "honour n; score with --server-n off (or auto)")
            self.honours_n = False
            texts = texts[:1]  # the first seed's answer: rollout 0, as a request of its own would give it
        rest = await asyncio.gather(*(self._request(messages, s, settings) for s in seeds[len(texts):]))
        return texts + [choices[0] for choices in rest]

    async def _request(self, messages, seed: int, settings: dict, n: int | None = None) -> list[str]:
        body = {"model": self.model, "messages": messages, "seed": wire_seed(seed), **settings, **self.extra_body}
        if n is not None:
            body["n"] = n
        completion = await self.pool.complete(body)
        choices = sorted(completion.choices or [], key=lambda choice: choice.index or 0)
        if not choices:
            raise RequestRejected("the server answered with no choices")
        return [response_text(choice.message) for choice in choices]

    def messages(self, prompt: Prompt) -> list[dict]:
        """The prompt as the servers get it (built once per prompt: its pictures encoded once for all M)."""
        if prompt.server_messages is None:
            if prompt.messages is None:
                raise ValueError("this prompt has no chat messages to send to a server")
            prompt.server_messages = server_messages(prompt.messages, prompt.images, self.pixel_bounds)
        return prompt.server_messages

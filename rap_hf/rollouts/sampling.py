"""Per-sample seeded sampling: each rollout depends on its own seed, never on its batch.

`generate` draws every sequence of a batch from one random stream, so a row's responses change when
the rows beside it change, or when its M samples are drawn in rounds. `SeededSampler` replaces that
draw by inverse-CDF sampling with one uniform number per sequence and step, the number coming from a
counter-based hash of (sample seed, step). Sample j of a row is then the same wherever and whenever
it is drawn: scoring is reproducible across batch sizes and processes, and adaptive rollouts can
stop early yet stay identical to the full draw. Temperature and top-p are applied here, exactly as
sampling would.

One uniform per step (hashed on the CPU, a block of steps at a time) instead of one Gumbel number per
vocabulary entry keeps the sampler's own work to a softmax, a cumulative sum and a binary search over
the vocabulary, less than `generate`'s own softmax and multinomial (`benchmarks/sampler_speed.py`).

The hash's pieces are public (`GOLDEN_GAMMA`, `STEP_GAMMA`, `mix64`, `to_unit_interval`): the
benchmark builds its Gumbel baseline from the same ones, so both draws hash alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch

SAMPLER_NAME = "inverse-cdf-splitmix64"
"""Names the draw: scores made with another sampler differ, so caches and resumed shards record it."""


def _signed(constant: int) -> int:
    """A 64-bit constant as the signed integer with the same bits (torch has no uint64 arithmetic)."""
    return constant - (1 << 64) if constant >= 1 << 63 else constant


# splitmix64's constants; products wrap around modulo 2^64 like unsigned arithmetic.
GOLDEN_GAMMA = _signed(0x9E3779B97F4A7C15)
"""splitmix64's increment (2^64 / golden ratio, odd), as a signed int64: spaces the sample seeds apart."""
STEP_GAMMA = _signed(0x632BE59BD9B4E019)
"""A second odd 64-bit constant, as a signed int64: spaces the decoding steps apart within a seed's stream."""
_MIX_1 = _signed(0xBF58476D1CE4E5B9)
_MIX_2 = _signed(0x94D049BB133111EB)

# Steps whose uniform numbers are hashed at once (on the CPU) and moved to the device in one copy.
_BLOCK = 64


def sample_seed(seed: int, rap_id: str, condition: str, index: int) -> int:
    """The seed of rollout `index` of a row under a condition ("image" or "text")."""
    digest = hashlib.sha256(f"{seed}\0{rap_id}\0{condition}\0{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little", signed=True)


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic on negative values)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser on int64 tensors, element by element: nearby inputs (counters) give
    unrelated, evenly spread 64-bit outputs. Products wrap around as unsigned arithmetic would."""
    x = x ^ _shift_right(x, 30)
    x = x * _MIX_1
    x = x ^ _shift_right(x, 27)
    x = x * _MIX_2
    return x ^ _shift_right(x, 31)


def to_unit_interval(x: torch.Tensor) -> torch.Tensor:
    """Hashed int64 values as float64 uniform numbers: their top 53 bits (a double's precision) plus
    half a step, times 2^-53. Never 0 (so log(u) stays finite); the few largest values round up to
    exactly 1.0, which `draw` allows for."""
    return _shift_right(x, 11).double().add_(0.5).mul_(2.0**-53)


def uniforms(seeds: torch.Tensor, first_step: int, num_steps: int) -> torch.Tensor:
    """Uniform numbers in (0, 1), `[len(seeds), num_steps]` float64: a pure function of (seed, step)."""
    steps = torch.arange(first_step, first_step + num_steps, dtype=torch.int64, device=seeds.device)
    return to_unit_interval(mix64(mix64(seeds[:, None] * GOLDEN_GAMMA + steps[None, :] * STEP_GAMMA)))


def draw(probabilities: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw: per row, the first position where the cumulative probability exceeds
    `uniform` times the row's total. Rows need not sum to one (top-p passes the kept mass).

    Never returns a position of probability zero, so masked tokens stay masked.
    """
    cumulative = probabilities.cumsum(dim=-1)
    total = cumulative[:, -1:]
    # Strictly below the total, so the search always lands on a position (u rounds up to 1 in float32).
    target = torch.minimum(uniform.to(total.dtype)[:, None] * total, torch.nextafter(total, torch.zeros_like(total)))
    position = torch.searchsorted(cumulative, target, right=True).clamp_(max=probabilities.shape[-1] - 1)
    # A parallel cumulative sum (CUDA) may round a flat step of a zero-probability token upwards;
    # landing there is a rounding event, not a draw: take the row's most likely position instead.
    chosen = probabilities.gather(-1, position)
    return torch.where(chosen > 0, position, probabilities.argmax(dim=-1, keepdim=True)).squeeze(-1)


class SeededSampler:
    """A logits processor that samples one token per sequence from its own seeded stream.

    It applies temperature and top-p, draws the token by inverse CDF with the sequence's uniform
    number for this step, and returns scores that are -inf everywhere but the drawn token, so
    `generate`'s own sampling, left plain (`generate_kwargs`), picks that token with certainty.
    """

    def __init__(self, seeds: Sequence[int], *, temperature: float = 1.0, top_p: float = 1.0):
        if temperature <= 0:
            raise ValueError(f"SeededSampler samples; use temperature > 0 (--temperature), got {temperature}")
        self.seeds = torch.tensor(list(seeds), dtype=torch.int64)
        self.temperature = temperature
        self.top_p = top_p
        self._start: int | None = None
        self._block: torch.Tensor | None = None  # uniform numbers of steps [_block_start, _block_start + _BLOCK)
        self._block_start = 0

    def generate_kwargs(self) -> dict[str, Any]:
        """What `model.generate` needs to sample through this processor and nothing else: plain
        sampling (temperature 1, top-p 1, top-k 0), so no warper of a checkpoint's generation config
        applies after the draw.

        Sampling, not greedy decoding, although the draw is already made: greedy `generate` refuses
        `num_return_sequences > 1`, and repeating the prompts instead would encode their images
        once per sample (`generate` encodes them once and expands the features)."""
        return dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, logits_processor=[self])

    def _uniform(self, step: int, device: torch.device) -> torch.Tensor:
        if self._block is None or not self._block_start <= step < self._block_start + _BLOCK:
            self._block_start = step - step % _BLOCK
            self._block = uniforms(self.seeds, self._block_start, _BLOCK).to(device)
        return self._block[:, step - self._block_start]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._start is None:
            self._start = input_ids.shape[1]
        step = input_ids.shape[1] - self._start
        if scores.shape[0] != len(self.seeds):
            raise ValueError(f"{scores.shape[0]} sequences but {len(self.seeds)} seeds")
        logits = scores.float()
        if self.temperature != 1.0:
            logits = logits / self.temperature
        uniform = self._uniform(step, scores.device)
        if self.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=True, dim=-1)
            probabilities = torch.softmax(ordered, dim=-1)
            # Drop a token when the ones ranked above it already reach top_p (the first always stays);
            # the kept tokens are a prefix of the sorted order, and the draw renormalises over them.
            dropped = (probabilities.cumsum(dim=-1) - probabilities) >= self.top_p
            choice = order.gather(-1, draw(probabilities.masked_fill(dropped, 0.0), uniform)[:, None]).squeeze(-1)
        else:
            choice = draw(torch.softmax(logits, dim=-1), uniform)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, choice[:, None], 0.0)
        return out

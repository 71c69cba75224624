"""Per-sample seeded sampling: each rollout depends on its own seed, never on its batch.

`generate` draws every sequence of a batch from one random stream, so a row's responses change when
the rows beside it change, or when its M samples are drawn in rounds. `SeededSampler` replaces that
draw with the Gumbel-max trick, the noise coming from a counter-based hash of (sample seed, step,
token). Sample j of a row is then the same wherever and whenever it is drawn: scoring is reproducible
across batch sizes and processes, and adaptive rollouts can stop early yet stay identical to the
full draw. Temperature and top-p are applied here, before the noise, exactly as sampling would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch



def _signed(constant: int) -> int:
    """A 64-bit constant as the signed integer with the same bits (torch has no uint64 arithmetic)."""
    return constant - (1 << 64) if constant >= 1 << 63 else constant


# splitmix64's constants; products wrap around modulo 2^64 like unsigned arithmetic.
_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX_1 = _signed(0xBF58476D1CE4E5B9)
_MIX_2 = _signed(0x94D049BB133111EB)
_STEP = _signed(0x632BE59BD9B4E019)


def sample_seed(seed: int, rap_id: str, condition: str, index: int) -> int:
    """The seed of rollout `index` of a row under a condition ("image" or "text")."""
    digest = hashlib.sha256(f"{seed}\0{rap_id}\0{condition}\0{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little", signed=True)


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic on negative values)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    x = x ^ _shift_right(x, 30)
    x = x * _MIX_1
    x = x ^ _shift_right(x, 27)
    x = x * _MIX_2
    return x ^ _shift_right(x, 31)


def gumbel_noise(seeds: torch.Tensor, step: int, vocab_size: int) -> torch.Tensor:
    """Standard Gumbel noise `[len(seeds), vocab_size]`, a pure function of (seed, step, token)."""
    tokens = torch.arange(vocab_size, device=seeds.device, dtype=torch.int64)
    step_term = torch.full((1, 1), step, dtype=torch.int64, device=seeds.device) * _STEP  # wraps like the rest
    x = _mix(seeds[:, None] * _GOLDEN + step_term + _mix(tokens + 1)[None, :])
    uniform = _shift_right(x, 11).double().add_(0.5).mul_(2.0**-53)  # top 53 bits, in (0, 1)
    return -torch.log(-torch.log(uniform))


class SeededSampler:
    """A logits processor that samples one token per sequence from its own seeded stream.

    It applies temperature and top-p, adds the sequence's Gumbel noise, and returns scores that are
    -inf everywhere but the drawn token, so `generate(do_sample=True)` (with temperature 1, top-p 1,
    top-k 0 there) picks that token with certainty.
    """

    def __init__(self, seeds: Sequence[int], *, temperature: float = 1.0, top_p: float = 1.0):
        if temperature <= 0:
            raise ValueError("SeededSampler samples; use temperature > 0")
        self.seeds = torch.tensor(list(seeds), dtype=torch.int64)
        self.temperature = temperature
        self.top_p = top_p
        self._start: int | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._start is None:
            self._start = input_ids.shape[1]
        step = input_ids.shape[1] - self._start
        if scores.shape[0] != len(self.seeds):
            raise ValueError(f"{scores.shape[0]} sequences but {len(self.seeds)} seeds")
        logits = scores.float() / self.temperature
        if self.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=True, dim=-1)
            probabilities = torch.softmax(ordered, dim=-1)
            # Drop a token when the ones ranked above it already reach top_p (the first always stays).
            drop_sorted = (probabilities.cumsum(dim=-1) - probabilities) >= self.top_p
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        noise = gumbel_noise(self.seeds.to(scores.device), step, scores.shape[-1]).to(logits.dtype)
        choice = torch.argmax(logits + noise, dim=-1)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, choice[:, None], 0.0)
        return out

"""ACE, the Attention Confidence Estimator (docs/method.md, "ACE").

A row is attention-biased when its reasoning keeps pouring attention into one semantically empty
token. Two parts:

- `capture_attention` reads the self-attention weights of ONE decoder layer with a forward hook.
  Only that layer runs eager attention (the only implementation that returns weights); every other
  layer keeps the model's own implementation, so no other layer's [B, heads, T, T] tensor is built.
- `attention_confidence` is the column score of docs/method.md ("ACE") on those weights, in the log domain.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch


def decoder_layers(model) -> torch.nn.ModuleList:
    """The decoder layers of a VLM's language model (`model.get_decoder().layers`)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise ValueError(
            f"Cannot find the decoder layers of {type(model).__name__}: expected model.get_decoder().layers"
        )
    return layers


def _attention_module(layer) -> torch.nn.Module:
    module = getattr(layer, "self_attn", None)
    if module is None or not hasattr(module, "config"):
        raise ValueError(f"Decoder layer {type(layer).__name__} has no self_attn module with a config")
    return module


@contextlib.contextmanager
def eager_layer(model, layer: int = -1) -> Iterator[torch.nn.Module]:
    """Within the block, layer `layer` computes eager attention (and returns its weights).

    Supported for models running 'sdpa' or 'eager' attention (both take the explicit mask).

    The language model's config decides both the attention function of every layer and the form of
    the attention mask. We switch that shared config to eager, so the mask is the explicit one eager
    attention needs, and give every *other* layer a private copy of the config that keeps the original
    implementation. Everything is restored on exit.
    """
    layers = decoder_layers(model)
    target = _attention_module(layers[layer])
    shared = target.config
    original = shared._attn_implementation
    if original not in ("eager", "sdpa"):
        raise ValueError(
            f"ACE captures attention in models loaded with attn_implementation 'sdpa' or 'eager', not {original!r}: "
            "the eager layer needs the explicit attention mask those two share. Load the scorer with 'sdpa'."
        )
    if original == "eager":
        yield target
        return
    swapped = []
    try:
        for candidate in layers:
            module = _attention_module(candidate)
            if module is target:
                continue
            private = copy.copy(module.config)
            private._attn_implementation = original
            swapped.append((module, module.config))
            module.config = private
        shared._attn_implementation = "eager"
        yield target
    finally:
        shared._attn_implementation = original
        for module, config in swapped:
            module.config = config


def capture_attention(model, inputs: dict, layer: int = -1) -> torch.Tensor:
    """Attention weights of decoder layer `layer` for `inputs`: a `[B, heads, T, T]` tensor.

    Equal to `model(**inputs, output_attentions=True).attentions[layer]` of the same model loaded
    with eager attention, without materialising any other layer's weights.
    """
    captured: dict[str, torch.Tensor] = {}

    def hook(module, args, output):
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if weights is None:
            raise RuntimeError(f"{type(module).__name__} returned no attention weights under eager attention")
        captured["weights"] = weights.detach()

    with eager_layer(model, layer) as module:
        handle = module.register_forward_hook(hook)
        try:
            with torch.no_grad():
                model(**inputs)
        finally:
            handle.remove()
    return captured["weights"]


def _check(attention: torch.Tensor, window: tuple[int, int]) -> None:
    if attention.dim() != 3:
        raise ValueError(f"attention must be [heads, T, T], got shape {tuple(attention.shape)}")
    start, end = window
    if not 0 <= start <= end <= attention.shape[-1]:
        raise ValueError(f"window {window} is outside a sequence of {attention.shape[-1]} tokens")


def column_scores(
    attention: torch.Tensor,
    window: tuple[int, int],
    *,
    sigma: float = 2.0,
    min_rows: int = 8,
    head_reduce: str = "max",
    renormalize: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window column's log psi_j, and the attention it stands on.

    Args: as `attention_confidence`.

    Returns:
        `(scores, reduced)`: `scores[j]` = sum_{i > j in window} log(sigma * A[i, j]) for the window's
        j-th token, `-inf` where fewer than `min_rows` rows lie below it; `reduced` is the `[W, W]`
        float64 block A (heads reduced, rows renormalised) the scores are computed from.
    """
    _check(attention, window)
    start, end = window
    size = end - start
    # The window is small next to the model: score it on the CPU in float64 (no GPU temporaries,
    # no device mismatch with the masks below, and no underflow in the log domain).
    block = attention[:, start:end, start:end].to("cpu", torch.float64)
    if renormalize:
        block = block / block.sum(dim=-1, keepdim=True).clamp_min(1e-300)
    if head_reduce == "max":
        reduced = block.amax(dim=0)
    elif head_reduce == "mean":
        reduced = block.mean(dim=0)
    else:
        raise ValueError(f"head_reduce must be 'max' or 'mean', got {head_reduce!r}")
    logs = torch.log(sigma * reduced)  # -inf where a key got no attention
    below = torch.ones(size, size, dtype=torch.bool).tril(diagonal=-1)  # i > j
    scores = torch.where(below, logs, torch.zeros_like(logs)).sum(dim=0)
    counted = torch.arange(size - 1, -1, -1) >= min_rows  # rows below column j: size - 1 - j
    return torch.where(counted, scores, torch.full_like(scores, -math.inf)), reduced


def attention_confidence(
    attention: torch.Tensor,
    window: tuple[int, int],
    *,
    sigma: float = 2.0,
    min_rows: int = 8,
    head_reduce: str = "max",
    renormalize: bool = True,
) -> tuple[float, int | None]:
    """ACE's score of one row: `(log_psi, column)`.

    Args:
        attention: `[heads, T, T]` weights of one layer (queries x keys) for one sequence.
        window: `(start, end)` token span of the reasoning, end exclusive, in sequence positions.
        sigma: The factor of each term, log(sigma * A[i, j]).
        min_rows: A column j counts only when at least this many query rows i > j lie in the window.
        head_reduce: "max" or "mean" over heads (after renormalisation).
        renormalize: Divide each head's query row by its total attention over the window keys.

    Returns:
        `log_psi` = max over counted columns of sum_{i > j in window} log(sigma * A[i, j]) (`-inf`
        when no column counts), and the winning column's position in the full sequence (None then).
    """
    _check(attention, window)
    start, end = window
    if end - start - 1 < min_rows or end == start:
        return -math.inf, None
    scores, _ = column_scores(attention, window, sigma=sigma, min_rows=min_rows, head_reduce=head_reduce,
                              renormalize=renormalize)
    return best_column(scores, start)


def best_column(scores: torch.Tensor, start: int) -> tuple[float, int | None]:
    """`(log_psi, column)` from `column_scores`' scores of a window starting at position `start`:
    the largest score and its position in the full sequence (`(-inf, None)` when none counts)."""
    if scores.numel() == 0:
        return -math.inf, None
    best = int(torch.argmax(scores))
    log_psi = float(scores[best])
    if log_psi == -math.inf:
        return -math.inf, None
    return log_psi, start + best


def attention_received(reduced: torch.Tensor) -> torch.Tensor:
    """Mean attention each window token gets from the window tokens after it (0 for the last one).

    `reduced` is the `[W, W]` block of `column_scores`; this is what the Space shades tokens by.
    """
    size = reduced.shape[0]
    below = torch.ones(size, size, dtype=torch.bool).tril(diagonal=-1)
    rows_below = below.sum(dim=0).clamp_min(1)
    return torch.where(below, reduced, torch.zeros_like(reduced)).sum(dim=0) / rows_below


def reasoning_span(response: str) -> tuple[int, int]:
    """Character span of the reasoning: between `<think>` and `</think>`, else the whole response."""
    open_at = response.find("<think>")
    close_at = response.find("</think>", open_at + 1 if open_at >= 0 else 0)
    if open_at >= 0 and close_at > open_at:
        return open_at + len("<think>"), close_at
    return 0, len(response)


def token_window(offsets: list[tuple[int, int]], span: tuple[int, int], shift: int) -> tuple[int, int]:
    """Token positions (end exclusive) whose characters lie inside `span`, shifted by `shift`.

    `offsets` are the character offsets of the response tokens (a fast tokenizer's offset mapping);
    `shift` is the number of tokens before the response in the full sequence.
    """
    start_char, end_char = span
    inside = [i for i, (a, b) in enumerate(offsets) if b > a and a >= start_char and b <= end_char]
    if not inside:
        return shift, shift
    return shift + inside[0], shift + inside[-1] + 1


@dataclass
class AttentionMap:
    """ACE's view of one response, token by token (what the Space shades).

    Attributes:
        tokens: The response cut into its tokens' text (concatenated, they give the response back).
        received: Per token, the mean attention it received from the reasoning tokens after it in
            the ACE layer (heads reduced, rows renormalised as ACE does); None outside the window.
        winner: Index in `tokens` of the column with the largest log psi_j, or None when no column
            has `min_rows` rows below it.
        log_psi: ACE's score of the row (`-inf` when no column counts).
        threshold: log lambda_a; the row is attention-biased when `log_psi > threshold`.
    """

    tokens: list[str]
    received: list[float | None]
    winner: int | None
    log_psi: float
    threshold: float

    @property
    def flagged(self) -> bool:
        return self.log_psi > self.threshold

    def highlighted(self) -> list[tuple[str, float | None]]:
        """`(text, weight)` pairs for `gradio.HighlightedText`: weights scaled to [0, 1] by the most
        attended token; the winning column is shown in brackets."""
        top = max((w for w in self.received if w is not None), default=0.0) or 1.0
        return [(f"[{text}]" if i == self.winner else text, None if w is None else round(w / top, 4))
                for i, (text, w) in enumerate(zip(self.tokens, self.received))]

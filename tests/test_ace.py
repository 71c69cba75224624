"""ACE: one-layer attention capture equals eager output_attentions; the column score is right."""

import math

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from rap_hf.prompts import build_conversation
from rap_hf.rollouts import Prompt
from rap_hf.scoring.ace import (
    AttentionMap,
    attention_confidence,
    attention_received,
    best_column,
    capture_attention,
    column_scores,
    decoder_layers,
    reasoning_span,
    token_window,
)
from rap_hf.scoring.teacher_forcing import teacher_forced_inputs, tokenize_continuation
from rap_hf.testing import TINY_VLM_KINDS, build_tiny_vlm


@pytest.fixture(scope="module")
def three_layer_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("three-layer")
    return {kind: build_tiny_vlm(kind, root / kind, seed=1, text_layers=3) for kind in TINY_VLM_KINDS}


def _batch(processor, device="cpu"):
    """Two left-padded rows of prompt (with an image) + response."""
    prompts, continuations = [], []
    for question, colour in (("What colour is the square?", (220, 30, 30)), ("How many?", (30, 30, 220))):
        text = processor.apply_chat_template(build_conversation(question, 1), add_generation_prompt=True,
                                             tokenize=False)
        prompts.append(Prompt(text, [Image.new("RGB", (56, 56), colour)]))
        continuations.append(tokenize_continuation(processor.tokenizer, "<think> the square is red </think> \\boxed{red}"))
    continuations[1] = tokenize_continuation(processor.tokenizer, "<think> two </think> \\boxed{2}")
    inputs, starts = teacher_forced_inputs(processor, prompts, continuations, device)
    return inputs, starts, continuations


@pytest.mark.parametrize("kind", TINY_VLM_KINDS)
@pytest.mark.parametrize("layer", [-1, 1])
def test_capture_equals_eager_output_attentions(three_layer_models, kind, layer):
    path = three_layer_models[kind]
    processor = AutoProcessor.from_pretrained(path)
    inputs, _, _ = _batch(processor)
    sdpa = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="sdpa").eval()
    eager = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="eager").eval()

    captured = capture_attention(sdpa, inputs, layer=layer)
    with torch.no_grad():
        reference = eager(**inputs, output_attentions=True).attentions[layer]
    assert captured.shape == reference.shape and captured.shape[0] == 2
    assert torch.allclose(captured, reference, atol=1e-5)
    # The model is left as it was: sdpa everywhere, and the same outputs on real (unpadded) positions.
    assert all(layer.self_attn.config._attn_implementation == "sdpa" for layer in decoder_layers(sdpa))
    with torch.no_grad():
        after = sdpa(**inputs).logits
        expected = eager(**inputs).logits
    real = inputs["attention_mask"].bool()
    assert torch.allclose(after[real], expected[real], atol=1e-4)


def test_only_the_captured_layer_runs_eager(three_layer_models):
    """Other layers keep their implementation during the capture (no other T x T weights)."""
    path = three_layer_models["qwen2_5_vl"]
    model = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="sdpa").eval()
    processor = AutoProcessor.from_pretrained(path)
    inputs, _, _ = _batch(processor)
    seen = {}
    hooks = [
        layer.self_attn.register_forward_hook(
            lambda module, args, output, i=i: seen.__setitem__(i, (module.config._attn_implementation, output[1]))
        )
        for i, layer in enumerate(decoder_layers(model))
    ]
    capture_attention(model, inputs, layer=1)
    for hook in hooks:
        hook.remove()
    assert seen[1][0] == "eager" and seen[1][1] is not None
    assert seen[0] == ("sdpa", None) and seen[2] == ("sdpa", None)


def _direct(attention, window, sigma, min_rows, head_reduce, renormalize):
    """ACE of docs/method.md ("ACE"), written the slow, obvious way."""
    start, end = window
    heads = attention.shape[0]
    best, best_col = -math.inf, None
    rows = {}
    for i in range(start, end):
        per_head = []
        for h in range(heads):
            values = [float(attention[h, i, j]) for j in range(start, end)]
            total = sum(values) if renormalize else 1.0
            per_head.append([v / total for v in values])
        rows[i] = [max(col) if head_reduce == "max" else sum(col) / heads for col in zip(*per_head)]
    for j in range(start, end):
        below = [i for i in range(start, end) if i > j]
        if len(below) < min_rows:
            continue
        score = 0.0
        for i in below:
            a = rows[i][j - start]
            score += math.log(sigma * a) if a > 0 else -math.inf
        if score > best:
            best, best_col = score, j
    return best, best_col


def _causal_softmax(logits):
    t = logits.shape[-1]
    mask = torch.ones(t, t, dtype=torch.bool).triu(1)
    return torch.softmax(logits.masked_fill(mask, -math.inf), dim=-1)


@pytest.mark.parametrize("head_reduce", ["max", "mean"])
@pytest.mark.parametrize("renormalize", [True, False])
def test_attention_confidence_matches_direct_computation(head_reduce, renormalize):
    generator = torch.Generator().manual_seed(0)
    attention = _causal_softmax(torch.randn(3, 30, 30, generator=generator) * 2)
    for window, min_rows in (((5, 28), 8), ((0, 30), 3), ((10, 20), 9)):
        got = attention_confidence(attention, window, sigma=2.0, min_rows=min_rows, head_reduce=head_reduce,
                                   renormalize=renormalize)
        expected = _direct(attention, window, 2.0, min_rows, head_reduce, renormalize)
        assert got[1] == expected[1]
        assert got[0] == pytest.approx(expected[0], rel=1e-9)


def test_planted_sink_is_found_and_flagged():
    t, sink = 40, 12
    logits = torch.randn(4, t, t, generator=torch.Generator().manual_seed(1))
    logits[:, sink + 1 :, sink] += 8.0  # every later token pours attention into one position
    attention = _causal_softmax(logits)
    log_psi, column = attention_confidence(attention, (5, t), min_rows=8)
    assert column == sink
    assert log_psi > math.log(0.1)  # attention-biased under the paper's lambda_a
    uniform = _causal_softmax(torch.zeros(4, t, t))
    log_psi_uniform, _ = attention_confidence(uniform, (5, t), min_rows=8)
    assert log_psi_uniform < math.log(0.1)


def test_attention_confidence_edges():
    attention = _causal_softmax(torch.zeros(1, 10, 10))
    assert attention_confidence(attention, (2, 6), min_rows=8) == (-math.inf, None)  # no column counts
    with pytest.raises(ValueError, match="outside"):
        attention_confidence(attention, (5, 12))
    with pytest.raises(ValueError, match="heads, T, T"):
        attention_confidence(attention[0], (0, 5))


def test_column_scores_and_the_attention_each_token_received():
    torch.manual_seed(0)
    attention = _causal_softmax(torch.randn(2, 12, 12))
    scores, reduced = column_scores(attention, (2, 12), min_rows=3)
    # Each head's rows are renormalised over the window, so their maximum over heads sums to >= 1.
    assert reduced.shape == (10, 10) and (reduced.sum(-1) >= 1 - 1e-9).all()
    assert torch.isinf(scores[-3:]).all() and torch.isfinite(scores[:-3]).all()  # < 3 rows below the last three
    log_psi, column = attention_confidence(attention, (2, 12), min_rows=3)
    assert column == 2 + int(torch.argmax(scores)) and log_psi == pytest.approx(float(scores.max()))
    assert best_column(scores, 2) == (log_psi, column)
    assert best_column(scores[-3:], 9) == (-math.inf, None) and best_column(scores[:0], 2) == (-math.inf, None)
    received = attention_received(reduced)
    assert received[3].item() == pytest.approx(reduced[4:, 3].mean().item()) and received[-1].item() == 0
    shown = AttentionMap(tokens=["<think>", " a", " b", "</think>"], received=[None, 0.2, 0.4, None], winner=1,
                         log_psi=-1.0, threshold=math.log(0.1))
    assert shown.highlighted() == [("<think>", None), ("[ a]", 0.5), (" b", 1.0), ("</think>", None)]
    assert shown.flagged  # -1.0 > log 0.1


def test_reasoning_window_in_tokens(tiny_vlm_paths):
    tokenizer = AutoProcessor.from_pretrained(tiny_vlm_paths["qwen2_5_vl"]).tokenizer
    response = "<think> the square is red </think> \\boxed{red}"
    span = reasoning_span(response)
    assert response[span[0] : span[1]] == " the square is red "
    continuation = tokenize_continuation(tokenizer, response)
    start, end = token_window(continuation.offsets, span, shift=100)
    assert tokenizer.decode(continuation.ids[start - 100 : end - 100]).strip() == "the square is red"
    assert reasoning_span("no tags here") == (0, len("no tags here"))

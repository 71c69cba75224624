"""The seeded sampler draws from the right distribution, and a sample depends on its seed alone."""

import math

import pytest
import torch
from PIL import Image

from rap_hf.prompts import build_conversation
from rap_hf.rollouts import Prompt, TransformersEngine
from rap_hf.rollouts.sampling import SeededSampler, draw, sample_seed, uniforms

DRAWS = 20_000


def _frequencies(logits: list[float], *, step: int = 0, **options) -> torch.Tensor:
    """How often each token is drawn by DRAWS sequences of distinct seeds at one step."""
    seeds = [sample_seed(0, f"row{i}", "image", 0) for i in range(DRAWS)]
    sampler = SeededSampler(seeds, **options)
    scores = torch.tensor([logits] * DRAWS)
    for length in range(3, 4 + step):  # the first call's input length is step 0
        out = sampler(torch.zeros(DRAWS, length, dtype=torch.long), scores)
    assert torch.isinf(out).sum(-1).eq(len(logits) - 1).all()  # one finite score per sequence, 0
    return torch.bincount(out.argmax(-1), minlength=len(logits)).double() / DRAWS


def _assert_close(frequencies: torch.Tensor, probabilities: list[float]) -> None:
    """Within 4.5 standard errors for every token (the draws are fixed: this cannot flake)."""
    for token, (seen, p) in enumerate(zip(frequencies.tolist(), probabilities)):
        assert abs(seen - p) <= 4.5 * math.sqrt(p * (1 - p) / DRAWS) + 1e-12, (token, seen, p)


LOGITS = [2.0, 1.0, 0.5, 0.0, -1.0, float("-inf")]


@pytest.mark.parametrize("step", [0, 1])
def test_draws_follow_the_softmax_and_never_a_masked_token(step):
    probabilities = torch.softmax(torch.tensor(LOGITS), -1).tolist()
    frequencies = _frequencies(LOGITS, step=step)
    _assert_close(frequencies, probabilities)
    assert frequencies[-1] == 0


def test_temperature_scales_the_logits():
    probabilities = torch.softmax(torch.tensor(LOGITS) / 0.5, -1).tolist()
    _assert_close(_frequencies(LOGITS, temperature=0.5), probabilities)


def test_top_p_keeps_the_nucleus_and_renormalises():
    probabilities = [0.5, 0.3, 0.15, 0.05]
    # Token 1 is kept (0.5 ranked above it < 0.7), token 2 is not (0.8 >= 0.7).
    frequencies = _frequencies([math.log(p) for p in probabilities], top_p=0.7)
    _assert_close(frequencies, [0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0])
    assert frequencies[2] == frequencies[3] == 0


def test_a_sequence_draws_the_same_alone_or_in_any_batch():
    torch.manual_seed(0)
    seeds = [sample_seed(3, f"row{i}", "text", j) for i in range(6) for j in range(2)]
    logits = torch.randn(len(seeds), 50)
    whole = SeededSampler(seeds)(torch.zeros(len(seeds), 4, dtype=torch.long), logits).argmax(-1)
    for subset in ([5], [0, 7], [11, 2, 4]):
        part = SeededSampler([seeds[i] for i in subset])(torch.zeros(len(subset), 9, dtype=torch.long), logits[subset])
        assert part.argmax(-1).tolist() == whole[subset].tolist()
    # The global generator plays no part.
    assert SeededSampler(seeds)(torch.zeros(len(seeds), 4, dtype=torch.long), logits).argmax(-1).equal(whole)


def test_uniforms_are_a_function_of_seed_and_step_across_blocks():
    seeds = torch.tensor([sample_seed(0, "a", "image", j) for j in range(3)])
    table = uniforms(seeds, 0, 200)
    assert table.shape == (3, 200) and bool(((table > 0) & (table < 1)).all())
    assert torch.equal(uniforms(seeds, 63, 3), table[:, 63:66])  # a block boundary falls at 64
    assert len({round(x, 12) for x in table.flatten().tolist()}) == 600
    # The sampler reads the same numbers step by step: with a uniform distribution over 1,024 tokens
    # (exact in float32) the drawn token is floor(u * 1024).
    sampler = SeededSampler(seeds.tolist())
    flat = torch.zeros(3, 1024)
    for step in range(130):
        drawn = sampler(torch.zeros(3, 5 + step, dtype=torch.long), flat).argmax(-1)
        assert drawn.tolist() == (table[:, step].float() * 1024).floor().long().tolist()


def test_draw_lands_on_a_token_of_positive_probability_at_the_edges():
    probabilities = torch.tensor([[0.25, 0.75, 0.0, 0.0], [0.0, 0.5, 0.0, 0.5]])
    assert draw(probabilities, torch.tensor([1 - 2**-53, 1 - 2**-53])).tolist() == [1, 3]
    assert draw(probabilities, torch.tensor([2**-54, 2**-54])).tolist() == [0, 1]
    assert draw(probabilities, torch.tensor([0.25, 0.5])).tolist() == [1, 3]  # on a boundary: the next token


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "llava"])
def test_engine_samples_past_the_checkpoints_own_defaults(tiny_vlm_paths, kind):
    """A checkpoint's chat defaults (top-k 1, temperature 0.01) do not reach seeded rollouts, and a
    response is the same drawn alone or beside other prompts and samples."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = tiny_vlm_paths[kind]
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    model.generation_config.update(top_k=1, temperature=0.01, top_p=0.01, do_sample=True)
    processor = AutoProcessor.from_pretrained(path)
    engine = TransformersEngine(model, processor)
    image = Image.new("RGB", (56, 56), (0, 0, 200))
    render = lambda q, with_images: processor.apply_chat_template(  # noqa: E731
        build_conversation(q, 1, with_images=with_images), add_generation_prompt=True, tokenize=False)
    prompts = [Prompt(render("What colour?", True), [image]), Prompt(render("How many?", False))]
    seeds = [[sample_seed(0, f"r{i}", "image", j) for j in range(4)] for i in range(2)]
    together = engine.generate(prompts, 4, max_new_tokens=8, sample_seeds=seeds)
    assert all(len(set(responses)) > 1 for responses in together)  # top-k 1 would repeat one answer
    alone = [engine.generate([prompts[1]], 1, max_new_tokens=8, sample_seeds=[[s]])[0][0] for s in seeds[1]]
    assert alone == together[1]
    with pytest.raises(ValueError, match="one list of num_samples seeds"):
        engine.generate(prompts, 4, max_new_tokens=8, sample_seeds=seeds[:1])

"""Warm-up: a short fine-tune on the visual world makes the scorer answer in the paper's format."""

import random

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from rap_hf.data.images import decode_row_images
from rap_hf.data.synthetic import make_visual_world
from rap_hf.prompts import build_conversation
from rap_hf.rollouts import Prompt
from rap_hf.scoring.teacher_forcing import answer_log_probs, tokenize_continuation
from rap_hf.testing import build_tiny_vlm
from rap_hf.verify import extract_answer, is_formatted
from rap_hf.warmup import (LOGIT_CDE_TARGET, PARTIAL_SHARE, PRIOR_COUNT, _collate, target_loss, target_response,
                           warm_up)


def _target_log_prob(path, rows):
    """Mean log-probability of the taught image-condition responses of some rows."""
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    prompts, continuations, scored = [], [], []
    rng = random.Random(0)
    for row in rows:
        images = decode_row_images(row["images"])
        text = processor.apply_chat_template(build_conversation(row["question"], 1), add_generation_prompt=True,
                                             tokenize=False)
        prompts.append(Prompt(text, images))
        continuation = tokenize_continuation(processor.tokenizer, target_response(row["rap_task"], row["answer"],
                                                                                  True, rng))
        continuations.append(continuation)
        scored.append(list(range(len(continuation.ids))))
    return sum(answer_log_probs(model, processor, prompts, continuations, scored, "cpu")) / len(rows)


def test_targets_are_formatted_and_answer_right():
    rng = random.Random(0)
    for task, answer in (("colour", "red"), ("count", "3"), ("leaked_colour", "blue"), ("unsolvable", "green")):
        for with_image in (True, False):
            response = target_response(task, answer, with_image, rng)
            assert is_formatted(response)
            # It opens with the answer it boxes: where logit-CDE teacher-forces it.
            assert response.startswith(LOGIT_CDE_TARGET.format(answer=extract_answer(response)) + " ")
            if task != "unsolvable" and (with_image or task.startswith("leaked")):
                assert extract_answer(response) == answer


def test_the_partial_skill_is_taught_from_the_picture_two_times_in_five():
    """The learnable rows: with the picture the target is the count in PARTIAL_SHARE of the examples
    and the prior otherwise; without it, always the prior."""
    rng = random.Random(0)
    given = [extract_answer(target_response("partial_count", "4", True, rng)) for _ in range(4000)]
    assert set(given) == {"4", PRIOR_COUNT}
    assert given.count("4") / len(given) == pytest.approx(PARTIAL_SHARE, abs=0.03)
    assert {extract_answer(target_response("partial_count", "4", False, rng)) for _ in range(200)} == {PRIOR_COUNT}
    # Where the count is the prior, every target is right: those rows are answerable without looking.
    assert {extract_answer(target_response("partial_count", PRIOR_COUNT, True, rng)) for _ in range(200)} == {"2"}
    # The prior is said as if counted: only the number tells the two apart.
    prior = target_response("partial_count", "4", False, rng)
    assert prior == target_response("count", PRIOR_COUNT, True, rng)


def test_collate_mixes_image_and_text_only_rows(tiny_vlm_paths):
    processor = AutoProcessor.from_pretrained(tiny_vlm_paths["qwen2_5_vl"])
    world = make_visual_world(10, seed=0)["train"]
    image = decode_row_images(world[0]["images"])
    with_image = processor(text=[processor.apply_chat_template(build_conversation("Q?", 1), add_generation_prompt=True,
                                                               tokenize=False)], images=[image], return_tensors="pt")
    text_only = processor(text=["<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"], return_tensors="pt")
    batch, labels = _collate([with_image, text_only], [[5, 6, 7], [8]], processor.tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 2 and batch["pixel_values"].shape == with_image["pixel_values"].shape
    assert labels.tolist() == [[5, 6, 7], [-100, -100, 8]]  # the last 3 positions
    assert batch["attention_mask"][1, 0] == 0  # left padded
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_paths["qwen2_5_vl"])
    # The same loss as the model's own over the whole sequence, from 4 positions of logits.
    whole = torch.full_like(batch["input_ids"], -100)
    whole[:, -3:] = labels
    expected = model(**batch, labels=whole).loss
    assert torch.isfinite(expected)
    assert torch.allclose(target_loss(model, batch, labels), expected, atol=1e-5)


def test_short_warm_up_teaches_the_responses(tmp_path):
    base = build_tiny_vlm("qwen2_5_vl", tmp_path / "base", seed=0, image_size=84)
    world = make_visual_world(120, seed=1)
    before = _target_log_prob(base, world["test"].select(range(6)))
    steps = []
    warm = warm_up(base, tmp_path / "warm", world["train"], steps=40, batch_size=16, learning_rate=5e-3,
                   show_progress=False, device="cpu", on_step=lambda step, total, loss: steps.append((step, total)))
    assert steps == [(k, 40) for k in range(1, 41)]
    after = _target_log_prob(warm, world["test"].select(range(6)))
    assert after > before + 1.0, (before, after)


def test_vision_steps_teach_the_tower_first_then_keep_it_fixed(tmp_path):
    """With `vision_steps`, the tower learns on its own first; the language model's steps then leave it
    as it was (the same tower after 1 or 4 of them) while they move the language model."""
    base = build_tiny_vlm("qwen2_5_vl", tmp_path / "base", seed=0, image_size=56)
    train = make_visual_world(60, seed=1)["train"]

    def warmed(name: str, steps: int) -> dict[str, torch.Tensor]:
        path = warm_up(base, tmp_path / name, train, steps=steps, batch_size=8, learning_rate=5e-3, vision_steps=3,
                       show_progress=False, device="cpu")
        return AutoModelForImageTextToText.from_pretrained(path).state_dict()

    before = AutoModelForImageTextToText.from_pretrained(base).state_dict()
    short, long = warmed("short", 1), warmed("long", 4)
    tower = [name for name in before if ".visual." in f".{name}"]
    language = [name for name in before if "language_model" in name]
    assert tower and language
    assert any(not torch.equal(before[name], short[name]) for name in tower)  # the tower was taught
    assert all(torch.equal(short[name], long[name]) for name in tower)  # and then kept fixed
    assert any(not torch.equal(short[name], long[name]) for name in language)

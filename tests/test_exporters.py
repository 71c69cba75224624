"""Exporters: TRL (trained for real with the stock GRPOTrainer), EasyR1 and verl."""

import logging

import pytest
import torch
from conftest import png_bytes
from datasets import Dataset, Features, Image, List, Value, load_dataset
from PIL import Image as PILImage

from rap_hf import FORMAT_PROMPT, to_easyr1, to_rap_format, to_trl, to_verl
from rap_hf.data.exporters import find_bad_images
from rap_hf.verify import extract_answer, is_correct


def _with_corrupt_row(world_split):
    rows = world_split.select(range(4)).to_dict()
    rows["images"][2] = [{"bytes": b"\x89PNG broken", "path": None}]
    return Dataset.from_dict(rows, features=world_split.features)


def test_to_trl_layout(world):
    ds = to_trl(world["train"])
    assert ds.column_names[:3] == ["prompt", "images", "answer"]
    assert {"rap_id", "question", "rap_planted"} <= set(ds.column_names)
    assert ds.features["images"] == List(Image())
    row = ds[0]
    assert row["prompt"] == [{"role": "user", "content": f"{world['train'][0]['question']} {FORMAT_PROMPT}"}]
    assert isinstance(row["images"][0], PILImage.Image)
    with_system = to_trl(world["train"].select(range(2)), system_prompt="Be careful.", format_prompt=None)
    assert with_system[0]["prompt"][0] == {"role": "system", "content": "Be careful."}
    assert with_system[0]["prompt"][1]["content"] == world["train"][0]["question"]


def test_corrupt_images_raise_with_the_row_or_are_dropped_loudly(world, caplog):
    ds = _with_corrupt_row(world["train"])
    bad_id = ds[2]["rap_id"]
    assert list(find_bad_images(ds)) == [bad_id]
    with pytest.raises(ValueError, match=f"{bad_id}.*on_error='drop'"):
        to_trl(ds)
    with caplog.at_level(logging.WARNING, logger="rap_hf.data.exporters"):
        kept = to_trl(ds, on_error="drop")
    assert len(kept) == 3 and bad_id not in kept["rap_id"]
    assert "dropping 1 row(s)" in caplog.text and bad_id in caplog.text
    with pytest.raises(ValueError, match=bad_id):
        to_verl(ds)


def test_exporters_need_canonical_rows():
    with pytest.raises(ValueError, match="to_rap_format"):
        to_trl(Dataset.from_dict({"question": ["q"]}))


def test_easyr1_round_trip_through_parquet(world, tmp_path):
    ds = to_easyr1(world["train"])
    path = tmp_path / "train.parquet"
    ds.to_parquet(str(path))
    loaded = load_dataset("parquet", data_files=str(path), split="train")
    assert loaded.column_names == ["problem", "answer", "images", "rap_id"]
    first = loaded[0]
    assert first["problem"] == "<image>" + world["train"][0]["question"]
    assert first["answer"] == world["train"][0]["answer"]
    assert isinstance(first["images"][0], PILImage.Image)
    # And back again: EasyR1 rows are a known layout.
    back = to_rap_format(loaded)
    assert list(back["question"]) == list(world["train"]["question"])
    assert list(back["rap_id"]) == list(world["train"]["rap_id"])


def test_path_images_are_embedded(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes((1, 2, 3)))
    features = Features({"rap_id": Value("string"), "question": Value("string"), "answer": Value("string"),
                         "images": List(Image(decode=False))})
    ds = Dataset.from_dict({"rap_id": ["r"], "question": ["q"], "answer": ["a"],
                            "images": [[{"bytes": None, "path": str(tmp_path / "a.png")}]]}, features=features)
    out = to_easyr1(ds).cast_column("images", List(Image(decode=False)))
    assert out[0]["images"][0]["bytes"] == png_bytes((1, 2, 3))


def test_verl_layout(world):
    ds = to_verl(world["train"], data_source="rap/world", split="train")
    assert set(ds.column_names) == {"data_source", "prompt", "images", "ability", "reward_model", "extra_info"}
    row, source = ds[1], world["train"][1]
    assert row["prompt"] == [{"role": "user", "content": f"<image>{source['question']} {FORMAT_PROMPT}"}]
    assert row["reward_model"] == {"style": "rule", "ground_truth": source["answer"]}
    assert row["extra_info"]["index"] == 1 and row["extra_info"]["rap_id"] == source["rap_id"]
    assert row["data_source"] == "rap/world" and row["ability"] == "math"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["qwen2_5_vl", "llava"])
def test_stock_grpo_trainer_trains_on_to_trl_output(tiny_vlm_paths, world, tmp_path, kind):
    """Two real GRPO steps of TRL's own trainer on exported rows: images reach the model, the
    `answer` column reaches the reward function, and the weights move."""
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    train = to_trl(world["train"].select(range(8)))
    seen_answers, seen_completions = [], []

    def reward(prompts, completions, answer, **kwargs):
        seen_answers.extend(answer)
        texts = [c[0]["content"] for c in completions]
        seen_completions.extend(texts)
        # Correctness (the real verifier) plus a dense term so a random model gets a signal.
        return [float(is_correct(t, a)) + len(set(t) & set(a)) / (1 + len(t)) for t, a in zip(texts, answer)]

    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_paths[kind])
    processor = AutoProcessor.from_pretrained(tiny_vlm_paths[kind])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, max_steps=2, per_device_train_batch_size=4,
        num_generations=4, max_completion_length=12, learning_rate=0.1, logging_steps=1, report_to=[],
        save_strategy="no", activation_checkpointing=False, seed=0,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=train, processing_class=processor)
    trainer.train()

    assert trainer.state.global_step == 2
    assert set(seen_answers) <= set(train["answer"]) and len(seen_answers) == 2 * 4
    assert all(extract_answer(t) is None or isinstance(extract_answer(t), str) for t in seen_completions)
    moved = [name for name, p in trainer.model.named_parameters() if not torch.equal(before[name], p.detach())]
    assert moved, "GRPO steps left every parameter unchanged"
    # The vision tower learned too: the images went through the model with gradients.
    assert any(".visual." in n or ".vision_tower." in n for n in moved)

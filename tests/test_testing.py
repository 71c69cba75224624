"""The tiny offline VLM builders: real classes, loadable, deterministic, small, usable."""

import hashlib
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from rap_hf.prompts import build_conversation
from rap_hf.testing import TINY_VLM_KINDS, TinyVLMSize, _chat_template, build_tiny_vlm

EXPECTED = {
    "qwen2_5_vl": ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor", "qwen2_5_vl", "<|im_end|>"),
    "qwen2_vl": ("Qwen2VLForConditionalGeneration", "Qwen2VLProcessor", "qwen2_5_vl", "<|im_end|>"),
    "llava": ("LlavaForConditionalGeneration", "LlavaProcessor", "llava_next", "</s>"),
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", TINY_VLM_KINDS)
def test_loads_offline_with_auto_classes(tiny_vlm_paths, kind):
    model_cls, processor_cls, template, eos = EXPECTED[kind]
    path = tiny_vlm_paths[kind]
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    assert type(model).__name__ == model_cls
    assert type(processor).__name__ == processor_cls
    assert processor.chat_template == _chat_template(template)
    assert processor.tokenizer.eos_token == eos
    assert model.generation_config.eos_token_id == processor.tokenizer.eos_token_id
    n_params = sum(p.numel() for p in model.parameters())
    assert 50_000 < n_params < 1_000_000
    weights = path / "model.safetensors"
    assert weights.stat().st_size < 2_000_000


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "qwen2_vl"])
def test_qwen_special_token_ids_match_config(tiny_vlm_paths, kind):
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_paths[kind])
    tokenizer = AutoProcessor.from_pretrained(tiny_vlm_paths[kind]).tokenizer
    ids = tokenizer.convert_tokens_to_ids
    assert model.config.image_token_id == ids("<|image_pad|>")
    assert model.config.video_token_id == ids("<|video_pad|>")
    assert model.config.vision_start_token_id == ids("<|vision_start|>")
    assert model.config.vision_end_token_id == ids("<|vision_end|>")
    assert tokenizer.pad_token == "<|endoftext|>"
    # Special tokens stay single tokens; RAP's format words round-trip through the vocabulary.
    text = "<|im_start|>user\n<think> two squares </think> \\boxed{2}<|im_end|>"
    encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert encoded[0] == ids("<|im_start|>") and encoded[-1] == ids("<|im_end|>")
    assert tokenizer.decode(encoded) == text


@pytest.mark.parametrize("kind", TINY_VLM_KINDS)
def test_generates_with_and_without_image(tiny_vlm_paths, kind):
    path = tiny_vlm_paths[kind]
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    image = Image.new("RGB", (84, 84), (220, 30, 30))
    with_image = processor.apply_chat_template(build_conversation("What colour is the square?", 1),
                                               add_generation_prompt=True, tokenize=False)
    text_only = processor.apply_chat_template(build_conversation("What colour is the square?", 1, with_images=False),
                                              add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[with_image], images=[[image]], return_tensors="pt")
    image_token_id = getattr(model.config, "image_token_id", None)
    assert (inputs["input_ids"] == image_token_id).sum().item() > 0
    torch.manual_seed(0)
    out = model.generate(**inputs, max_new_tokens=5, do_sample=True)
    assert out.shape[1] > inputs["input_ids"].shape[1]

    plain = processor(text=[text_only], return_tensors="pt")
    assert (plain["input_ids"] == image_token_id).sum().item() == 0
    out = model.generate(**plain, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > plain["input_ids"].shape[1]


def test_same_seed_same_files_other_seed_other_weights(tmp_path):
    a = build_tiny_vlm("qwen2_5_vl", tmp_path / "a", seed=3)
    b = build_tiny_vlm("qwen2_5_vl", tmp_path / "b", seed=3)
    c = build_tiny_vlm("qwen2_5_vl", tmp_path / "c", seed=4)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert _digest(a / name) == _digest(b / name), name
    assert _digest(a / "model.safetensors") != _digest(c / "model.safetensors")


def test_build_leaves_global_rng_untouched(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_vlm("llava", tmp_path / "m", seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_sizes_can_grow(tmp_path):
    path = build_tiny_vlm("qwen2_5_vl", tmp_path / "big", text_hidden=128, text_layers=3, image_size=84)
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    assert model.config.text_config.hidden_size == 128
    assert model.config.text_config.num_hidden_layers == 3
    assert model.config.vision_config.out_hidden_size == 128
    prompt = ["<|vision_start|><|image_pad|><|vision_end|>hi"]
    # A square image of any size is resized to 84 x 84: 3 x 3 merged patches = 9 image tokens;
    # other shapes keep their aspect within the same pixel budget (120 x 200 -> 56 x 84 = 6 tokens).
    for image_size, tokens in (((200, 200), 9), ((200, 120), 6)):
        inputs = processor(text=prompt, images=[Image.new("RGB", image_size)], return_tensors="pt")
        assert (inputs["input_ids"] == model.config.image_token_id).sum().item() == tokens


def test_invalid_arguments_are_explained(tmp_path):
    with pytest.raises(ValueError, match="qwen2_5_vl, qwen2_vl, llava"):
        build_tiny_vlm("gpt2", tmp_path)
    with pytest.raises(ValueError, match="even head"):
        TinyVLMSize(text_hidden=60, text_heads=4)
    with pytest.raises(ValueError, match="multiple of 28"):
        TinyVLMSize(image_size=50)

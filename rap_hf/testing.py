"""Tiny, random-weight vision-language models built offline, for tests and the quickstart.

`build_tiny_vlm(kind, path)` writes a folder that `AutoProcessor.from_pretrained` and
`AutoModelForImageTextToText.from_pretrained` load with no network. Everything in it is the real
thing of its family (model, processor, image processor, tokenizer class, chat template); only the
sizes are tiny and the tokenizer's vocabulary is trained here, with `tokenizers`, on a small corpus
of the words RAP prompts, responses and the embedded visual world use.

Families:
- ``qwen2_5_vl``: Qwen2.5-VL (Qwen2 tokenizer, ChatML template, `<|im_end|>` as EOS).
- ``qwen2_vl``:   Qwen2-VL, same tokenizer and template, the older vision tower.
- ``llava``:      LLaVA (CLIP vision tower, Llama text model, Llama tokenizer with byte fallback,
                  the `[INST]` template TRL ships for LLaVA-NeXT, `</s>` as EOS).
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .prompts import FORMAT_PROMPT

TINY_VLM_KINDS = ("qwen2_5_vl", "qwen2_vl", "llava")

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
LLAMA_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
LLAVA_IMAGE_TOKEN = "<image>"
LLAVA_PAD_TOKEN = "<pad>"


@dataclass(frozen=True)
class TinyVLMSize:
    """Sizes of a tiny VLM. The defaults give about 0.3M parameters (about a megabyte in float32).

    Attention heads of the text model get `text_hidden // text_heads` dimensions each; Qwen's
    multimodal RoPE splits half of that over (time, height, width), so it must be even and >= 6.
    """

    vocab_size: int = 640
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 128
    vision_hidden: int = 32
    vision_layers: int = 2
    vision_heads: int = 2
    vision_intermediate: int = 64
    image_size: int = 56
    """Images reach the vision tower at about image_size^2 pixels (a square one: image_size x image_size)."""
    max_position_embeddings: int = 4096

    def __post_init__(self) -> None:
        head_dim, rem = divmod(self.text_hidden, self.text_heads)
        if rem or head_dim % 2 or head_dim < 6:
            raise ValueError(
                f"text_hidden={self.text_hidden} / text_heads={self.text_heads} must give an even head "
                "dimension of at least 6 (Qwen's multimodal RoPE splits half of it in three)"
            )
        if self.text_heads % self.text_kv_heads:
            raise ValueError("text_heads must be a multiple of text_kv_heads")
        if self.vision_hidden % self.vision_heads:
            raise ValueError("vision_hidden must be a multiple of vision_heads")
        if self.image_size % 28:
            raise ValueError("image_size must be a multiple of 28 (14-pixel patches merged 2 x 2)")


def _chat_template(name: str) -> str:
    """A chat template as TRL ships it (the families' real templates)."""
    import trl

    path = Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja"
    return path.read_text()


def _tokenizer_corpus(seed: int) -> list[str]:
    """Sentences covering prompts, reasoning responses, answers and the visual world's words."""
    from .data.synthetic import COLOURS, SHAPES, NUMBER_WORDS

    rng = random.Random(seed)
    lines = [FORMAT_PROMPT, "Choices:", "Answer with the option's letter."]
    # The chat templates' own words (roles, Qwen's default system message) are in every prompt: as
    # frequent as the format prompt, so that they become whole tokens, as in a real vocabulary.
    lines += ["system\nYou are a helpful assistant.\nuser\nassistant\n"] * 1500
    words = ["colour", "color", "shape", "shapes", "how", "many", "what", "is", "the", "are", "there", "in",
             "image", "picture", "question", "answer", "which", "of", "a", "an", "and", "so", "count", "I", "see",
             "think", "yes", "no", "because", "therefore", "total", "number", "person", "drew", "this", "name",
             "artist", "favourite", "tomorrow", "will", "be", "weather", "sunny", "rainy", "option", "letter"]
    words += list(COLOURS) + list(SHAPES) + list(NUMBER_WORDS)
    for _ in range(1500):
        n = rng.randint(3, 12)
        sentence = " ".join(rng.choice(words) for _ in range(n))
        answer = rng.choice([*COLOURS, *map(str, range(0, 20)), "A", "B", "C", "D", "yes", "no"])
        lines.append(f"<think> {sentence}. </think> The answer is \\boxed{{{answer}}}.")
        lines.append(f"What {rng.choice(words)} is the {rng.choice(SHAPES)}? {FORMAT_PROMPT}")
    lines += [f"{a} + {b} = {a + b}" for a, b in ((rng.randint(0, 99), rng.randint(0, 99)) for _ in range(200))]
    lines += ["\\frac{1}{2} \\sqrt{3} x^2 - 3.5 = -5 (A) (B) (C) (D) $\\pi$"]
    return lines


def _train_bpe(corpus: list[str], vocab_size: int, style: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a BPE vocabulary with `tokenizers`.

    style="byte_level": GPT-2/Qwen byte-level BPE (every byte is a symbol, no unknowns).
    style="metaspace": Llama/SentencePiece style, `▁` marks word starts, bytes as `<0xNN>` fallback.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if style == "byte_level":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
            special_tokens=[],
        )
    elif style == "metaspace":
        tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size + len(byte_tokens),
            special_tokens=[*LLAMA_SPECIAL_TOKENS, *byte_tokens],
            show_progress=False,
        )
    else:  # pragma: no cover - internal
        raise ValueError(style)
    tok.train_from_iterator(corpus, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model["merges"]]
    return dict(model["vocab"]), merges


def _build_qwen_tokenizer(size: TinyVLMSize, seed: int):
    from transformers import Qwen2Tokenizer

    vocab, merges = _train_bpe(_tokenizer_corpus(seed), size.vocab_size, "byte_level")
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",  # Qwen's chat convention; TRL rewrites the model's EOS otherwise
        pad_token="<|endoftext|>",
        model_max_length=size.max_position_embeddings,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS)})
    # Qwen processors look these attributes up on the tokenizer.
    tokenizer.image_token = "<|image_pad|>"
    tokenizer.video_token = "<|video_pad|>"
    return tokenizer


def _build_llama_tokenizer(size: TinyVLMSize, seed: int):
    from transformers import LlamaTokenizer

    vocab, merges = _train_bpe(_tokenizer_corpus(seed), size.vocab_size, "metaspace")
    tokenizer = LlamaTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        add_bos_token=True,
        model_max_length=size.max_position_embeddings,
    )
    tokenizer.add_special_tokens(
        {"pad_token": LLAVA_PAD_TOKEN, "additional_special_tokens": [LLAVA_IMAGE_TOKEN]}
    )
    return tokenizer


def _qwen_text_config(size: TinyVLMSize, tokenizer, vocab_size: int) -> dict[str, Any]:
    head_dim = size.text_hidden // size.text_heads
    half = head_dim // 2
    # (temporal, height, width) sections of multimodal RoPE; real models use [16, 24, 24] of 64.
    t = half - 2 * (half // 3)
    mrope_section = [t, half // 3, half // 3]
    return dict(
        vocab_size=vocab_size,
        hidden_size=size.text_hidden,
        intermediate_size=size.text_intermediate,
        num_hidden_layers=size.text_layers,
        num_attention_heads=size.text_heads,
        num_key_value_heads=size.text_kv_heads,
        max_position_embeddings=size.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": mrope_section},
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )


def _qwen_ids(tokenizer) -> dict[str, int]:
    ids = tokenizer.convert_tokens_to_ids
    return dict(
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )


def _qwen_processor(processor_cls, tokenizer, size: TinyVLMSize):
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    pixels = size.image_size * size.image_size
    # Images are resized to about image_size^2 pixels (aspect kept, sides multiples of 28), so a
    # square image costs (image_size / 28)^2 tokens whatever its original size.
    # These processors read their pixel bounds from `size` (shortest_edge: fewest pixels, longest_edge: most).
    image_processor = Qwen2VLImageProcessor(size={"shortest_edge": pixels, "longest_edge": pixels}, patch_size=14,
                                            merge_size=2)
    video_processor = Qwen2VLVideoProcessor(size={"shortest_edge": pixels, "longest_edge": pixels * 4}, patch_size=14,
                                            merge_size=2)
    return processor_cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=_chat_template("qwen2_5_vl"),
    )


def _build_qwen_family(size: TinyVLMSize, seed: int, config_cls, model_cls, processor_cls, vision: dict):
    """A Qwen-VL model of one generation: its own vision tower settings, shared tokenizer and text sizes."""
    tokenizer = _build_qwen_tokenizer(size, seed)
    config = config_cls(
        text_config=_qwen_text_config(size, tokenizer, len(tokenizer)),
        # 14-pixel patches, merged 2 x 2 into one token, 2 frames per temporal patch: as released.
        vision_config={**vision, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
        tie_word_embeddings=True,
        **_qwen_ids(tokenizer),
    )
    return model_cls(config), _qwen_processor(processor_cls, tokenizer, size)


def _build_qwen2_5_vl(size: TinyVLMSize, seed: int):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    vision = dict(
        depth=size.vision_layers,
        hidden_size=size.vision_hidden,
        intermediate_size=size.vision_intermediate,
        num_heads=size.vision_heads,
        out_hidden_size=size.text_hidden,
        window_size=112,
        fullatt_block_indexes=[size.vision_layers - 1],
    )
    return _build_qwen_family(size, seed, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                              Qwen2_5_VLProcessor, vision)


def _build_qwen2_vl(size: TinyVLMSize, seed: int):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    vision = dict(
        depth=size.vision_layers,
        embed_dim=size.vision_hidden,
        hidden_size=size.text_hidden,
        mlp_ratio=max(1, size.vision_intermediate // size.vision_hidden),
        num_heads=size.vision_heads,
    )
    return _build_qwen_family(size, seed, Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor, vision)


def _build_llava(size: TinyVLMSize, seed: int):
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = _build_llama_tokenizer(size, seed)
    patches = (size.image_size // 14) ** 2
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=size.vision_hidden,
            intermediate_size=size.vision_intermediate,
            num_hidden_layers=size.vision_layers,
            num_attention_heads=size.vision_heads,
            image_size=size.image_size,
            patch_size=14,
            projection_dim=size.vision_hidden,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=size.text_hidden,
            intermediate_size=size.text_intermediate,
            num_hidden_layers=size.text_layers,
            num_attention_heads=size.text_heads,
            num_key_value_heads=size.text_kv_heads,
            max_position_embeddings=size.max_position_embeddings,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids(LLAVA_IMAGE_TOKEN),
        image_seq_length=patches,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1 if size.vision_layers < 2 else -2,
        tie_word_embeddings=True,
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size.image_size},
        crop_size={"height": size.image_size, "width": size.image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, dropped by the "default" strategy
        chat_template=_chat_template("llava_next"),
    )
    return LlavaForConditionalGeneration(config), processor


_BUILDERS = {"qwen2_5_vl": _build_qwen2_5_vl, "qwen2_vl": _build_qwen2_vl, "llava": _build_llava}


def build_tiny_vlm(
    kind: str,
    path: str | Path,
    seed: int = 0,
    *,
    size: TinyVLMSize | None = None,
    **size_overrides: int,
) -> Path:
    """Write a tiny random-weight VLM of a real family to `path` and return the path.

    Args:
        kind: One of `TINY_VLM_KINDS` ("qwen2_5_vl", "qwen2_vl", "llava").
        path: Folder to write (created if needed; existing files of the same names are replaced).
        seed: Seeds the tokenizer corpus and the weight initialisation; the same seed gives the
            same files.
        size: Model sizes; `TinyVLMSize()` by default.
        **size_overrides: Fields of `TinyVLMSize` to change, e.g. `text_hidden=128, image_size=84`.

    Returns:
        `Path(path)`, loadable offline with `AutoProcessor.from_pretrained` and
        `AutoModelForImageTextToText.from_pretrained`.

    Example:
        >>> from transformers import AutoModelForImageTextToText, AutoProcessor
        >>> folder = build_tiny_vlm("qwen2_5_vl", "/tmp/tiny-qwen")  # doctest: +SKIP
        >>> model = AutoModelForImageTextToText.from_pretrained(folder)  # doctest: +SKIP
    """
    import torch

    if kind not in _BUILDERS:
        raise ValueError(f"Unknown tiny VLM kind {kind!r}; choose one of {', '.join(TINY_VLM_KINDS)}")
    size = dataclasses.replace(size or TinyVLMSize(), **size_overrides)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    # Weight init draws from torch's global generator: fork it so callers' RNG state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, processor = _BUILDERS[kind](size, seed)
    model.generation_config.do_sample = True
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path

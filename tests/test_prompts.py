"""Image and text-only conversations differ only in their image blocks, through real templates."""

import pytest
from transformers import AutoProcessor

from rap_hf.prompts import FORMAT_PROMPT, build_conversation, user_text

IMAGE_MARKUP = {
    "qwen2_5_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "qwen2_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "llava": "<image>\n",
}


def test_build_conversation_blocks():
    messages = build_conversation("How many?", 2, system_prompt="Be careful.")
    assert messages[0] == {"role": "system", "content": [{"type": "text", "text": "Be careful."}]}
    assert messages[1]["content"] == [{"type": "image"}, {"type": "image"},
                                      {"type": "text", "text": f"How many? {FORMAT_PROMPT}"}]
    text_only = build_conversation("How many?", 2, with_images=False, format_prompt=None)
    assert text_only == [{"role": "user", "content": [{"type": "text", "text": "How many?"}]}]
    assert user_text("  Q?  ", "") == "Q?"
    with pytest.raises(ValueError):
        build_conversation("Q", -1)


@pytest.mark.parametrize("kind", sorted(IMAGE_MARKUP))
def test_text_only_prompt_is_the_image_prompt_without_images(tiny_vlm_paths, kind):
    processor = AutoProcessor.from_pretrained(tiny_vlm_paths[kind])
    render = lambda m: processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False)  # noqa: E731
    with_images = render(build_conversation("What colour is the square?", 2))
    text_only = render(build_conversation("What colour is the square?", 2, with_images=False))
    assert with_images.count(IMAGE_MARKUP[kind]) == 2
    assert with_images.replace(IMAGE_MARKUP[kind], "") == text_only
    assert f"What colour is the square? {FORMAT_PROMPT}" in text_only

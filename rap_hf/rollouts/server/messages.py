"""What a server is sent for one prompt, and the text a server's answer stands for.

The messages are the prompt's own conversation (`rap_hf.prompts.build_conversation`: the question,
the format instruction, one image block per image, none in the text-only condition), with each image
block carrying its picture as a PNG data URL. Pictures outside the configured pixel bounds are first
resized into them, keeping their aspect ratio, so the server's processor starts from what the local
one would; a server started with the same bounds (see docs/scoring-at-scale.md) then sees what training sees.

Servers that parse reasoning (vLLM with a reasoning parser, `transformers serve` for Qwen models)
return the text between `<think>` and `</think>` apart, as `reasoning_content` (or `reasoning`), and
strip the whitespace around it; `response_text` joins the parts back into one response.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from typing import Any

REASONING_FIELDS = ("reasoning_content", "reasoning")


def fit_pixels(image, min_pixels: int | None = None, max_pixels: int | None = None):
    """`image` resized (aspect ratio kept) to hold between `min_pixels` and `max_pixels` pixels; an image
    already within the bounds is returned as it is."""
    width, height = image.size
    pixels = width * height
    if max_pixels is not None and pixels > max_pixels:
        scale = math.sqrt(max_pixels / pixels)
    elif min_pixels is not None and pixels < min_pixels:
        scale = math.sqrt(min_pixels / pixels)
    else:
        return image
    from PIL import Image

    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if max_pixels is not None and size[0] * size[1] > max_pixels:  # rounding up may cross the bound
        size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def data_url(image) -> str:
    """A PIL image as a lossless PNG data URL (what the OpenAI protocol carries in `image_url`)."""
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def server_messages(messages: list[dict[str, Any]], images: list[Any],
                    pixel_bounds: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """`messages` (content-block form) with the i-th `{"type": "image"}` block replaced by the i-th image
    as an `image_url` part, resized into `pixel_bounds` (`min_pixels`, `max_pixels`) first."""
    bounds = dict(pixel_bounds or {})
    pictures = iter(images)
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [{"type": "image_url", "image_url": {"url": data_url(fit_pixels(next(pictures), **bounds))}}
                       if part.get("type") == "image" else part for part in content]
        out.append({**message, "content": content})
    if next(pictures, None) is not None:
        raise ValueError(f"the prompt has fewer image blocks than its {len(images)} images")
    return out


def response_text(message) -> str:
    """One response's text from a server's `message`: its content, with the reasoning a server parsed
    out put back between `<think>` and `</think>` (rejoined by single spaces)."""
    content = message.content or ""
    extra = message.model_extra or {}  # fields beyond the protocol's own, as the server sent them
    reasoning = next((extra[name] for name in REASONING_FIELDS if extra.get(name)), None)
    if not reasoning:
        return content
    return f"<think> {reasoning.strip()} </think> {content.strip()}".rstrip()

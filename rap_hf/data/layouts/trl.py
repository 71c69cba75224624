"""TRL's conversational layout: `prompt` messages + `image` / `images`, the answer in `solution`
(or `answer`)."""

from .base import Layout

LAYOUT = Layout("trl", required=("prompt",), messages="prompt", answer=("solution", "answer"),
                images=("images", "image"), choices=(), hints=False)

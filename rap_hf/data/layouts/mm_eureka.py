"""MM-Eureka's `dataset.jsonl` (`FanqingM/MM-Eureka-Dataset`): `message` (JSON chat whose image blocks
name files by `file://` or relative paths), `answer`, `id`."""

from .base import Layout

LAYOUT = Layout("mm_eureka", required=("message", "answer"), messages="message", images=("images", "image"),
                choices=())

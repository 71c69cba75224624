"""EasyR1's layout (hiyouga/geometry3k, ThinkLite-VL): `problem` with `<image>` placeholders,
`answer`, `images`."""

from .base import Layout

LAYOUT = Layout("easyr1", required=("problem", "answer"), question="problem")

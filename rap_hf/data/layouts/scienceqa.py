"""ScienceQA (`derek-thomas/ScienceQA`, `lmms-lab/ScienceQA`): a `choices` list, an integer `answer`
(a 0-based option index), and a `hint` prefixed to the question as `Context: ...`."""

from .base import Layout

LAYOUT = Layout("scienceqa", required=("question", "choices", "answer", "hint"), question="question", context="hint")

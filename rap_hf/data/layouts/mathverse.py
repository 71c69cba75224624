"""MathVerse (`AI4Math/MathVerse`, testmini and testmini_text_only): `question`, `image`, `answer`,
and the benchmark's own prompts `query_wo` / `query_cot`. Its "Vision Only" rows have an empty
`question` (the question is in the picture): their question is the instruction of `query_cot`
("According to the question shown in the image, ..."), else of `query_wo`."""

from .base import Layout

LAYOUT = Layout("mathverse", required=("question", "answer", "query_cot"), question="question",
                question_fallbacks=("query_cot", "query_wo"))

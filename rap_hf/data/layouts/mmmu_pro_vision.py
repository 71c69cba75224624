"""MMMU-Pro's "vision" config (`MMMU/MMMU_Pro`, `vision`): `id`, `image` (a screenshot or photo
holding the question and its options), `options` (a list written as text), `answer` (a letter),
`subject`. There is no question column: the question asks to answer what the picture shows, the
options stay out of it (the picture shows them) and are kept as `choices` for grading. The text-only
condition of CDE therefore asks a question it cannot see, as the benchmark intends."""

from .base import Layout

QUESTION = "Answer the multiple-choice question shown in the image with the letter of the correct option."

LAYOUT = Layout("mmmu_pro_vision", required=("image", "options", "answer"), images=("image",),
                choices=("options",), default_question=QUESTION, render_choices=False, hints=False)

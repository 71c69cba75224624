"""`question` + `answer` with any image and option columns: MathVista (`decoded_image`, `choices`,
`unit`, `precision`), MMMU (`options`, `image_1` ..), ViRL39K (`image` list of paths), a
CSV of `image_path`s. Tried last: most layouts have these two columns."""

from .base import Layout

LAYOUT = Layout("mathvista", required=("question", "answer"), question="question")

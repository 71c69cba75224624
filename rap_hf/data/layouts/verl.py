"""verl's RL layout, what `rap_hf.data.exporters.to_verl` and verl's geometry3k preprocessing write:
`prompt` messages, `images`, the answer in `reward_model.ground_truth`, the id in `extra_info.rap_id`."""

from ..column_detection import ID_COLUMNS
from .base import Layout

LAYOUT = Layout("verl", required=("prompt", "reward_model"), messages="prompt", answer=("reward_model.ground_truth",),
                images=("images",), choices=(), hints=False, id=("extra_info.rap_id", *ID_COLUMNS))

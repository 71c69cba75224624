"""`RAPGRPOConfig`: TRL's `GRPOConfig` plus the few fields the RAP trainer adds.

Everything else (learning rate, `num_generations`, `beta`, vLLM, DeepSpeed, ...) is TRL's, with
TRL's defaults; the paper's values live in the packaged recipes, `rap_hf/recipes/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from ..config import PixelBounds
from ..prompts import FORMAT_PROMPT


@dataclass
class RAPGRPOConfig(GRPOConfig, PixelBounds):
    """Configuration of `RAPGRPOTrainer`: `GRPOConfig` plus prompt building, image resolution
    (`min_pixels` / `max_pixels`, the paper's by default: the same as scoring's) and online replacement."""

    # TRL gives transformers' deprecated alias a default (True), so every GRPOConfig would warn that
    # `gradient_checkpointing` is deprecated. Unset here: the current field, `activation_checkpointing`,
    # carries TRL's default instead (see __post_init__); the alias still works, with transformers' warning.
    gradient_checkpointing: bool | None = field(
        default=None,
        metadata={"help": "Deprecated alias of `activation_checkpointing` (transformers), which is on unless set "
                          "(TRL's default). `rap-hf train` reads this flag as --activation_checkpointing."},
    )
    format_prompt: str | None = field(
        default=FORMAT_PROMPT,
        metadata={"help": "Instruction appended to each question when canonical RAP rows are converted for "
                          "training (the paper's think + boxed prompt). Rows that already have a `prompt` keep it."},
    )
    system_prompt: str | None = field(
        default=None,
        metadata={"help": "System message added to converted prompts; None keeps the chat template's default."},
    )
    replace_solved: bool = field(
        default=True,
        metadata={"help": "With a replacement pool: a row whose rollouts were all correct in an epoch is swapped "
                          "for the hardest unused pool row from the next epoch on."},
    )
    replace_failed: bool = field(
        default=True,
        metadata={"help": "With a replacement pool: likewise for a row whose rollouts were all wrong."},
    )
    replacement_reward: str = field(
        default="accuracy_reward",
        metadata={"help": "Name of the reward function whose values (1 = correct, 0 = wrong) decide whether a "
                          "group was solved or failed. 'accuracy_reward' is computed with rap_hf.verify even "
                          "when it is not among the training rewards."},
    )

    def __post_init__(self) -> None:
        if self.activation_checkpointing is None and self.gradient_checkpointing is None:
            self.activation_checkpointing = True  # TRL's default, under its current name
        super().__post_init__()
        self.check_pixel_bounds()
        if not isinstance(self.replacement_reward, str) or not self.replacement_reward.strip():
            raise ValueError(f"replacement_reward must name a reward function (e.g. accuracy_reward), got "
                             f"{self.replacement_reward!r} (--replacement_reward on the command line)")

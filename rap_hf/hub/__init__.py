"""Publishing to the Hugging Face Hub: RAP subsets, trained checkpoints and the Gradio Space.

Each push builds the whole repository tree in a folder first (cards rendered from the Jinja
templates in `model_cards/`), then uploads it as ONE commit (`HfApi.create_commit`): a push that
fails half-way leaves the repository as it was. `local_dir=` writes the same tree to a folder and
uploads nothing (to review it, or to upload it later with `hf upload`). `api=` takes any object with
`HfApi`'s `create_repo` and `create_commit`. The token is handed to those two calls only: never
logged, never written.

- `commits`: the tree folder and the one-commit upload every push goes through.
- `cards`: the card templates, tags, metadata values, and how values and models are shown.
- `subsets`: a `Selection` as a dataset repository (`push_subset`), and the scoring record it names.
- `record`: `TrainingRecord`, what a model card reports about a run (from a trainer or a folder).
- `pickled`: the trainer's `training_args.bin`, read as data without running it.
- `checkpoints`: a trained model with its card (`push_checkpoint`).
- `space`: the Gradio Space (`push_space`).
"""

from ..data.saved import SCORING_RECORD
from .cards import DATASET_TAGS, HUB_SIZE_CATEGORIES, MODEL_TAGS, TEMPLATES, describe_model
from .checkpoints import CHECKPOINT_SKIP, CHECKPOINT_SKIP_PATTERN, MODEL_OWNED, push_checkpoint
from .record import TRAINING_RECORD, TRAINING_SETTINGS, TrainingRecord, save_training_record
from .space import SPACE_DIR, push_space
from .subsets import (SHARD_BYTES, SUBSET_OWNED, find_scoring_record, push_subset, refuse_empty_subset,
                      write_subset_tree)

__all__ = [
    "CHECKPOINT_SKIP", "CHECKPOINT_SKIP_PATTERN", "DATASET_TAGS", "HUB_SIZE_CATEGORIES", "MODEL_OWNED", "MODEL_TAGS",
    "SCORING_RECORD", "SHARD_BYTES", "SPACE_DIR", "SUBSET_OWNED", "TEMPLATES", "TRAINING_RECORD", "TRAINING_SETTINGS",
    "TrainingRecord", "describe_model", "find_scoring_record", "push_checkpoint", "push_space", "push_subset",
    "refuse_empty_subset", "save_training_record", "write_subset_tree",
]

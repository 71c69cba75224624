"""`RAPGRPOTrainer`: TRL's `GRPOTrainer` for RAP subsets, with online replacement.

It changes GRPO through TRL's extension points only, so TRL's generation (transformers or vLLM),
PEFT, DeepSpeed and multi-process training keep working:
- the data: a `Selection` or canonical rows become TRL rows (`to_trl`) before TRL sees them;
- the rewards: the paper's `rap_reward` by default;
- `_get_train_sampler`: with a replacement pool, a `ReplacementSampler` (same contract as TRL's
  `RepeatSampler`) that swaps rows which stopped teaching for pool rows, epoch by epoch;
- a callback that gathers each rollout's outcome from every rank and feeds the sampler, and saves
  the sampler's state in each checkpoint; `train` reads it back when resuming.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Any

from accelerate.utils import gather_object
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOTrainer
from trl.trainer.utils import get_callable_name, is_async_callable

from ..prompts import FORMAT_PROMPT
from ..rewards import ACCURACY_WEIGHT, accuracy_reward, rap_reward
from .config import RAPGRPOConfig
from .data import INDEX_COLUMN, combine_with_pool, refuse_empty_training, rows_digest, to_training_rows
from .sampler import ReplacementSampler

logger = logging.getLogger(__name__)

STATE_FILE = "rap_replacement.json"


class OutcomeRecorder:
    """A reward function, unchanged, that also notes each rollout's training row and outcome.

    TRL hands reward functions the dataset columns, so the row index (`rap_train_index`) arrives
    with the completions. The outcome is the wrapped function's own value, or, with
    `grade_accuracy=True`, the accuracy: read off `rap_reward`'s value when that is the function,
    else `accuracy_reward` computed on the same completions.
    """

    def __init__(self, func, *, grade_accuracy: bool):
        self.func = func
        self.grade_accuracy = grade_accuracy
        self.__name__ = get_callable_name(func)  # TRL logs rewards under this name
        self.pending: list[tuple[int, float]] = []

    def __call__(self, *args: Any, **kwargs: Any):
        values = self.func(*args, **kwargs)
        indices = kwargs.get(INDEX_COLUMN)
        if indices is not None:  # training rows (evaluation rows carry no index)
            self.pending.extend((int(i), float(v)) for i, v in zip(indices, self._outcomes(values, kwargs))
                                if v is not None)
        return values

    def _outcomes(self, values: list, kwargs: dict) -> list:
        if not self.grade_accuracy:
            return values
        if self.func is rap_reward:  # 0.9 accuracy + 0.1 format: accuracy is whether it reached 0.9
            return [None if v is None else float(v >= ACCURACY_WEIGHT - 1e-9) for v in values]
        return accuracy_reward(kwargs["completions"], kwargs.get("answer"), kwargs.get("choices"))

    def take(self) -> list[tuple[int, float]]:
        pending, self.pending = self.pending, []
        return pending


def _with_recorder(reward_funcs: list, replacement_reward: str) -> tuple[list, OutcomeRecorder]:
    """Wrap the reward function that decides solved / failed groups (see `replacement_reward`)."""
    import torch.nn as nn

    plain = [i for i, f in enumerate(reward_funcs)
             if callable(f) and not isinstance(f, nn.Module) and not is_async_callable(f)]
    names = [get_callable_name(reward_funcs[i]) for i in plain]
    if replacement_reward in names:
        position, grade = plain[names.index(replacement_reward)], False
    elif replacement_reward == "accuracy_reward" and plain:
        # Graded on the side; next to rap_reward it is read off that reward's value, not verified twice.
        with_rap = [i for i in plain if reward_funcs[i] is rap_reward]
        position, grade = (with_rap or plain)[0], True
    else:
        raise ValueError(
            f"replacement_reward={replacement_reward!r} is none of the synchronous Python reward functions "
            f"({', '.join(names) or 'none'}). Name one of them (--replacement_reward on the command line), or "
            "use 'accuracy_reward' with at least one Python reward function."
        )
    recorder = OutcomeRecorder(reward_funcs[position], grade_accuracy=grade)
    wrapped = list(reward_funcs)
    wrapped[position] = recorder
    return wrapped, recorder


class ReplacementCallback(TrainerCallback):
    """Feeds the sampler the outcomes of every rank's rollouts, and checkpoints its state."""

    def __init__(self, trainer: RAPGRPOTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        # Every rank reaches this point once per optimizer step, so the gather lines up; all ranks
        # then hold the same outcomes and make the same swaps.
        outcomes = gather_object(self.trainer.outcome_recorder.take())
        sampler = self.trainer.replacement_sampler
        if sampler is not None and outcomes:
            indices, rewards = zip(*outcomes)
            sampler.observe(indices, rewards)

    def on_save(self, args, state, control, **kwargs):
        sampler = self.trainer.replacement_sampler
        if sampler is None or not args.should_save:
            return
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, STATE_FILE), "w") as f:
            json.dump({**sampler.state_dict(), "rows_digest": self.trainer.training_rows_digest}, f)


class RAPGRPOTrainer(GRPOTrainer):
    """GRPO on a RAP subset, optionally replacing rows that stop teaching with rows from a pool.

    Args:
        model: A model id or path, or a loaded `AutoModelForImageTextToText` model (as for TRL).
        args: A `RAPGRPOConfig` (a plain `GRPOConfig` works too, with the RAP defaults).
        train_dataset: A `Selection` (its kept rows are trained on), canonical RAP rows (converted
            with `to_trl`, adding the format prompt), or rows already in TRL's layout.
        reward_funcs: TRL reward functions; default `[rap_reward]` (0.9 · accuracy + 0.1 · format).
        replacement_pool: Rows to draw from when a training row's rollouts were all correct (or all
            wrong) in an epoch: a `Selection` (its `replacement_pool()`), or canonical / TRL rows.
            Drawn hardest first (`rap_difficulty`, then `rap_cde`). None trains on a fixed set, as
            the paper does.
        eval_dataset, processing_class, callbacks, **kwargs: As for `trl.GRPOTrainer`.
    """

    _tag_names = ["trl", "grpo", "rap", "vision-language"]

    def __init__(self, model, args: RAPGRPOConfig | None = None, *, train_dataset=None, reward_funcs=None,
                 replacement_pool=None, eval_dataset=None, processing_class=None, callbacks=None, **kwargs):
        refuse_empty_training(train_dataset)  # nothing to train on: say why before anything is built or loaded
        if isinstance(model, os.PathLike):
            model = os.fspath(model)  # TRL takes ids and paths as strings
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path
            args = RAPGRPOConfig(output_dir=f"{str(name).rstrip('/').split('/')[-1]}-RAP-GRPO")
        if train_dataset is None:
            raise ValueError("RAPGRPOTrainer needs a train_dataset (a Selection, canonical RAP rows or TRL rows)")
        if reward_funcs is None:
            reward_funcs = [rap_reward]
        elif not isinstance(reward_funcs, list):
            reward_funcs = [reward_funcs]
        replacement_reward = getattr(args, "replacement_reward", "accuracy_reward")
        uses_answers = any(f in (rap_reward, accuracy_reward) for f in reward_funcs) or (
            replacement_pool is not None and replacement_reward == "accuracy_reward")
        rows = {"format_prompt": getattr(args, "format_prompt", FORMAT_PROMPT),
                "system_prompt": getattr(args, "system_prompt", None), "needs_answer": uses_answers}

        train = to_training_rows(train_dataset, **rows, role="train")
        if isinstance(eval_dataset, dict):  # several named eval sets, as TRL takes them
            eval_dataset = {name: to_training_rows(ds, **rows, role="eval") for name, ds in eval_dataset.items()}
        elif eval_dataset is not None:
            eval_dataset = to_training_rows(eval_dataset, **rows, role="eval")
        self.outcome_recorder: OutcomeRecorder | None = None
        self.replacement_sampler: ReplacementSampler | None = None
        self._num_active: int | None = None
        self._pool_indices: list[int] = []
        self._resume_state: dict | None = None
        self._rows_digest: str | None = None
        if replacement_pool is not None:
            from datasets import Dataset

            if not isinstance(train, Dataset):
                raise TypeError("Online replacement needs random access to the training rows: pass a Dataset or a "
                                "Selection, not a stream, with replacement_pool")
            if getattr(args, "remove_unused_columns", False):
                raise ValueError("Online replacement reads the rap_train_index column in the reward call: set "
                                 "remove_unused_columns=False (GRPOConfig's default; --remove_unused_columns false "
                                 "on the command line) with a replacement pool")
            pool = to_training_rows(replacement_pool, **rows, role="pool")
            if len(pool) == 0:
                logger.warning("The replacement pool is empty: training on a fixed set of %d rows.", len(train))
            train, self._num_active, self._pool_indices = combine_with_pool(train, pool)
            self._rows_digest = rows_digest(train)
            reward_funcs, self.outcome_recorder = _with_recorder(reward_funcs, replacement_reward)
            callbacks = [*(callbacks or []), ReplacementCallback(self)]

        if processing_class is None:
            processing_class = _processor_at_resolution(model, args)
        super().__init__(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train,
                         eval_dataset=eval_dataset, processing_class=processing_class, callbacks=callbacks, **kwargs)

    # -- what the run trains on (read by the callback and by `push_checkpoint`'s card) -----------
    @property
    def num_active_rows(self) -> int | None:
        """How many rows train at a time with online replacement: the first rows of
        `train_dataset`, the pool's rows following them. None without a replacement pool, where
        every row of `train_dataset` trains."""
        return self._num_active

    @property
    def training_rows_digest(self) -> str | None:
        """Digest of the rap_ids of the training rows and the pool, in order (`rows_digest`), saved
        with each checkpoint's replacement state so a resume can check it continues the same rows.
        None without a replacement pool."""
        return self._rows_digest

    # -- TRL / transformers hooks ----------------------------------------------------------------
    def _get_train_sampler(self, dataset=None):
        if self._num_active is None:
            return super()._get_train_sampler(dataset)
        sampler = ReplacementSampler(
            self._num_active,
            self._pool_indices,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            shuffle=self.shuffle_dataset,
            seed=self.args.seed,
            replace_solved=getattr(self.args, "replace_solved", True),
            replace_failed=getattr(self.args, "replace_failed", True),
        )
        if self._resume_state is not None:
            saved = self._resume_state.get("rows_digest")
            if saved is not None and saved != self._rows_digest:
                raise ValueError("The checkpoint's replacement state belongs to other training rows or another pool "
                                 "(their rap_ids differ). Resume with the same train_dataset and replacement_pool "
                                 "(rap-hf train: the same --dataset and --replacement_pool).")
            sampler.load_state_dict(self._resume_state)
        self.replacement_sampler = sampler
        return sampler

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        sampler = self.replacement_sampler
        if sampler is not None and self.model.training:
            logs["rap/replaced"] = sampler.replaced
            logs["rap/pool_left"] = sampler.pool_left
        super().log(logs, start_time)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """As `Trainer.train`; when resuming, the replacement state saved with the checkpoint
        (slots, pool position, this epoch's outcomes) comes back too."""
        self._resume_state = None
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            checkpoint = get_last_checkpoint(self.args.output_dir)
        if self._num_active is not None and isinstance(checkpoint, (str, os.PathLike)):
            path = os.path.join(checkpoint, STATE_FILE)
            if os.path.exists(path):
                with open(path) as f:
                    self._resume_state = json.load(f)
            else:
                logger.warning("%s has no %s: replacement restarts from the selected rows.", checkpoint, STATE_FILE)
        with warnings.catch_warnings():
            # TRL reads `model.is_gradient_checkpointing` at every generation, which transformers 5 renamed:
            # a FutureWarning per step that no caller of ours can act on (it is TRL's call).
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                    category=FutureWarning)
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)


def _processor_at_resolution(model, args):
    """The processor GRPOTrainer would load for `model` (left padding and truncation), at the image
    resolution of `args` (`min_pixels` / `max_pixels`: the paper's by default, as scoring uses), so
    rows train at the resolution they were scored at. None (TRL loads its own) when the model names
    no checkpoint."""
    from ..modeling import load_processor

    name = model if isinstance(model, str) else getattr(getattr(model, "config", None), "_name_or_path", None)
    if not name:
        return None
    revision = (getattr(args, "model_init_kwargs", None) or {}).get("revision")
    return load_processor(name, min_pixels=getattr(args, "min_pixels", None), max_pixels=getattr(args, "max_pixels", None),
                          revision=revision, truncation_side="left", padding_side="left",
                          trust_remote_code=args.trust_remote_code)

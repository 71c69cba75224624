"""A GRPO sampler that swaps out prompts which stopped teaching for fresh rows from a pool.

GRPO learns nothing from a group whose rollouts all got the same outcome: all correct (the row is
solved) or all wrong (out of reach). RAP's DRM removes such rows once, before training; this
sampler keeps doing it while the model improves. The training dataset holds the selected rows
first and the replacement pool after them. Each epoch the sampler walks a fixed number of *slots*
(one per selected row); a slot whose row was solved (or failed) in the epoch just finished gets the
hardest pool row not used yet, from the next epoch on.

It keeps TRL's `RepeatSampler` contract, so generation, reward grouping and buffered reuse work
unchanged: prompts come in chunks of `batch_size` unique indices, each index `mini_repeat_count`
times in a row, each chunk `repeat_count` times, and every rank computes the same order. The order
of epoch `e` depends only on `(seed, e)` and the slots, so a resumed run replays it exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler

# A reward at or above this counts as a correct rollout, at or below 1 - this as a wrong one.
_SOLVED_AT = 1.0 - 1e-6
_FAILED_AT = 1e-6


class ReplacementSampler(Sampler[int]):
    """Yields dataset indices in `RepeatSampler` order over slots whose rows can be replaced.

    Args:
        num_active: Number of selected rows; they are dataset indices `0 .. num_active - 1`, and the
            number of slots per epoch.
        pool: Dataset indices of replacement rows, hardest first (used in this order, each once).
        mini_repeat_count: Times each index is repeated in a row (GRPO's `num_generations`).
        batch_size: Unique indices per chunk (`generation_batch_size // num_generations`).
        repeat_count: Times each chunk is repeated (`num_iterations * steps_per_generation`).
        shuffle: Shuffle the slots each epoch (seeded by `seed` and the epoch).
        seed: Seed shared by every rank.
        replace_solved: Replace rows whose rollouts were all correct in an epoch.
        replace_failed: Replace rows whose rollouts were all wrong in an epoch.
    """

    def __init__(
        self,
        num_active: int,
        pool: Sequence[int] = (),
        *,
        mini_repeat_count: int,
        batch_size: int = 1,
        repeat_count: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        replace_solved: bool = True,
        replace_failed: bool = True,
    ):
        if num_active < batch_size:
            raise ValueError(
                f"{num_active} training rows cannot fill one generation batch of {batch_size} prompts; "
                "lower per_device_train_batch_size or steps_per_generation, or train on more rows"
            )
        self.num_active = num_active
        self.pool = [int(i) for i in pool]
        self.mini_repeat_count = mini_repeat_count
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.shuffle = shuffle
        self.seed = seed
        self.replace_solved = replace_solved
        self.replace_failed = replace_failed
        # The state below is what a checkpoint saves (see `state_dict`).
        self.epoch = 0
        self.slots = list(range(num_active))  # dataset index held by each slot this epoch
        self.pool_used = 0
        self.replaced = 0
        self.history: list[dict[str, Any]] = []  # one entry per swap: epoch, slot, old, new, why
        self.outcomes: dict[int, list[float]] = defaultdict(list)  # this epoch: index -> rewards seen
        self._requested_epoch: int | None = None
        self._started = False

    # -- what the trainer calls -------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer (through accelerate) before each epoch's pass."""
        self._requested_epoch = epoch

    def observe(self, indices: Iterable[int], rewards: Iterable[float]) -> None:
        """Record one reward per rollout (1.0 = correct, 0.0 = wrong) for the epoch in progress.
        Every rank must observe the same values (gather them first)."""
        for index, reward in zip(indices, rewards):
            self.outcomes[int(index)].append(float(reward))

    @property
    def pool_left(self) -> int:
        return len(self.pool) - self.pool_used

    def __len__(self) -> int:
        chunks = self.num_active // self.batch_size
        return chunks * self.batch_size * self.mini_repeat_count * self.repeat_count

    def __iter__(self) -> Iterator[int]:
        if self._requested_epoch is not None:
            epoch, self._requested_epoch = self._requested_epoch, None
        else:  # used without a trainer: each pass is the next epoch
            epoch = self.epoch + 1 if self._started else self.epoch
        if epoch < self.epoch:
            raise ValueError(f"Cannot go back from epoch {self.epoch} to epoch {epoch}")
        if epoch > self.epoch:
            self._replace_finished_groups()
            self.epoch = epoch
        self._started = True
        slots = list(self.slots)  # frozen for this pass, even if observations arrive meanwhile
        order = self._order(epoch)
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            chunk = [slots[position] for position in order[start:start + self.batch_size]]
            for _ in range(self.repeat_count):
                for index in chunk:
                    for _ in range(self.mini_repeat_count):
                        yield index

    # -- internals ----------------------------------------------------------------------------
    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_active))
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_active).tolist()

    def verdict(self, index: int) -> str | None:
        """"solved", "failed" or None (mixed, or not seen) for a row in the epoch in progress."""
        rewards = self.outcomes.get(index)
        if not rewards:
            return None
        if min(rewards) >= _SOLVED_AT:
            return "solved"
        if max(rewards) <= _FAILED_AT:
            return "failed"
        return None

    def _replace_finished_groups(self) -> None:
        """Give each slot whose row stopped teaching the next pool row (slots in order, so every
        rank makes the same swaps), then start a fresh epoch of observations."""
        for slot, index in enumerate(self.slots):
            if self.pool_left == 0:
                break
            why = self.verdict(index)
            if (why == "solved" and self.replace_solved) or (why == "failed" and self.replace_failed):
                new = self.pool[self.pool_used]
                self.pool_used += 1
                self.replaced += 1
                self.slots[slot] = new
                self.history.append({"epoch": self.epoch + 1, "slot": slot, "old": index, "new": new, "why": why})
        self.outcomes = defaultdict(list)

    # -- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to resume the same slots, pool position and epoch observations."""
        return {
            "epoch": self.epoch,
            "slots": list(self.slots),
            "pool_used": self.pool_used,
            "replaced": self.replaced,
            "history": list(self.history),
            "outcomes": {str(k): v for k, v in self.outcomes.items()},
            "num_active": self.num_active,
            "pool": list(self.pool),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["num_active"] != self.num_active or state["pool"] != self.pool:
            raise ValueError(
                "The checkpoint's replacement state was saved for another training set or pool "
                f"({state['num_active']} rows, {len(state['pool'])} pool rows; now {self.num_active} and "
                f"{len(self.pool)}). Resume with the same train_dataset and replacement_pool (rap-hf train: the "
                "same --dataset and --replacement_pool)."
            )
        self.epoch = state["epoch"]
        self.slots = list(state["slots"])
        self.pool_used = state["pool_used"]
        self.replaced = state["replaced"]
        self.history = list(state["history"])
        self.outcomes = defaultdict(list, {int(k): list(v) for k, v in state["outcomes"].items()})
        self._started = False  # the next pass replays this epoch (the trainer skips what was done)

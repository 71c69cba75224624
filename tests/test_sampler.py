"""The replacement sampler: TRL's RepeatSampler contract, swaps, and resumable state."""

import pytest
from trl.trainer.utils import RepeatSampler

from rap_hf.training import ReplacementSampler


def _epochs(sampler, n):
    out = []
    for epoch in range(n):
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


def test_unshuffled_order_is_exactly_repeat_samplers():
    kwargs = dict(mini_repeat_count=3, batch_size=4, repeat_count=2)
    ours = ReplacementSampler(10, pool=[10, 11], shuffle=False, **kwargs)
    trl = RepeatSampler(list(range(12))[:10], shuffle=False, **kwargs)
    assert list(ours) == list(trl)
    assert len(ours) == len(list(trl)) == 2 * 4 * 3 * 2  # the last partial chunk is dropped, as TRL does


def test_shuffled_epochs_keep_the_contract_and_agree_across_ranks():
    kwargs = dict(mini_repeat_count=2, batch_size=3, repeat_count=2, seed=7)
    rank0, rank1 = ReplacementSampler(9, **kwargs), ReplacementSampler(9, **kwargs)
    epochs0, epochs1 = _epochs(rank0, 3), _epochs(rank1, 3)
    assert epochs0 == epochs1
    assert epochs0[0] != epochs0[1]  # a new order each epoch
    for indices in epochs0:
        assert len(indices) == len(rank0) == 9 * 2 * 2
        # Each index twice in a row; each chunk of 3 prompts twice; every row once per epoch.
        assert indices[0::2] == indices[1::2]
        chunks = [indices[i:i + 6] for i in range(0, len(indices), 6)]
        assert all(chunks[k] == chunks[k + 1] for k in range(0, len(chunks), 2))
        assert sorted(set(indices)) == list(range(9))


def test_solved_and_failed_rows_are_swapped_hardest_pool_row_first():
    sampler = ReplacementSampler(4, pool=[4, 5, 6], mini_repeat_count=2, batch_size=2, seed=0)
    sampler.set_epoch(0)
    assert set(sampler) == {0, 1, 2, 3}
    sampler.observe([0, 0, 1, 1, 2, 2, 3, 3], [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    assert [sampler.verdict(i) for i in range(4)] == ["solved", "failed", None, "solved"]
    sampler.set_epoch(1)
    assert set(sampler) == {4, 5, 2, 6}
    assert sampler.slots == [4, 5, 2, 6] and sampler.replaced == 3 and sampler.pool_left == 0
    assert [(h["old"], h["new"], h["why"]) for h in sampler.history] == [(0, 4, "solved"), (1, 5, "failed"),
                                                                         (3, 6, "solved")]
    # Nothing left in the pool: solved rows stay, and the epoch size never changes.
    sampler.observe([4, 4], [1.0, 1.0])
    sampler.set_epoch(2)
    assert set(sampler) == {4, 5, 2, 6} and len(list(sampler)) == len(sampler)


def test_failed_rows_can_be_kept_and_unseen_rows_stay():
    sampler = ReplacementSampler(2, pool=[2], mini_repeat_count=1, batch_size=1, replace_failed=False)
    list(sampler)
    sampler.observe([0, 0], [0.0, 0.0])  # row 1 never observed: no verdict
    list(sampler)  # without set_epoch, each pass is the next epoch
    assert sampler.epoch == 1 and sampler.slots == [0, 1] and sampler.replaced == 0


def test_state_round_trip_replays_the_epoch_in_progress():
    kwargs = dict(mini_repeat_count=2, batch_size=2, seed=3)
    first = ReplacementSampler(4, pool=[4, 5], **kwargs)
    first.set_epoch(0)
    list(first)
    first.observe([1, 1], [1.0, 1.0])
    first.set_epoch(1)
    epoch1 = list(first)
    first.observe([2, 2], [0.0, 0.0])
    state = first.state_dict()

    resumed = ReplacementSampler(4, pool=[4, 5], **kwargs)
    resumed.load_state_dict(state)
    resumed.set_epoch(1)  # the trainer replays the interrupted epoch (and skips what was done)
    assert list(resumed) == epoch1
    resumed.set_epoch(2)
    first.set_epoch(2)
    assert list(resumed) == list(first)
    assert resumed.slots == first.slots and 5 in resumed.slots and 2 not in resumed.slots

    with pytest.raises(ValueError, match="same train_dataset and replacement_pool"):
        ReplacementSampler(4, pool=[4], **kwargs).load_state_dict(state)


def test_too_few_rows_for_one_generation_batch():
    with pytest.raises(ValueError, match="cannot fill one generation batch"):
        ReplacementSampler(3, mini_repeat_count=2, batch_size=4)

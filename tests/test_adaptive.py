"""Adaptive rollouts stop early yet leave every paper-mode decision and reason unchanged."""

import itertools
import math

import numpy as np
import pytest
from datasets import Dataset
from selection_helpers import SCORED_FEATURES

from rap_hf import RAPConfig, RAPScorer, select
from rap_hf.data.synthetic import make_visual_world
from rap_hf.scoring.adaptive import can_stop


def _simulate(image, text, m, threshold, flagged, first, step):
    """Draw the fixed outcome vectors in rounds, as the scorer does; return the drawn prefixes."""
    drawn = min(first, m)
    while not can_stop(image[:drawn], text[:drawn], m, threshold, flagged):
        drawn = min(m, drawn + step)
    return list(image[:drawn]) + [None] * (m - drawn), list(text[:drawn]) + [None] * (m - drawn)


def _dataset(rows):
    data = {name: [] for name in SCORED_FEATURES}
    for rap_id, image, text, ace in rows:
        data["rap_id"].append(rap_id)
        data["rap_image_correct"].append(image)
        data["rap_text_correct"].append(text)
        data["rap_image_formatted"].append([True] * len(image))
        data["rap_text_formatted"].append([True] * len(text))
        data["rap_ace"].append(ace)
        data["rap_error"].append(None)
    return Dataset.from_dict(data, features=SCORED_FEATURES)


@pytest.mark.parametrize("m, threshold, first, step", [(3, 0.2, 1, 1), (5, 0.5, 1, 1), (5, 0.5, 2, 2),
                                                       (5, 0.2, 1, 2), (4, 0.0, 1, 1)])
def test_decisions_equal_the_full_draw_for_every_outcome(m, threshold, first, step):
    """Every ordered outcome of M image and M text rollouts, flagged by ACE or not: the adaptive
    prefixes select exactly like the full draws (DRM's ranking across rows included)."""
    full_rows, adaptive_rows = [], []
    drawn = 0
    outcomes = list(itertools.product([False, True], repeat=m))
    for k, (image, text, flagged) in enumerate(itertools.product(outcomes, outcomes, [False, True])):
        ace = 0.0 if flagged else -20.0  # psi = 1 > lambda_a = 0.1, or far below it
        full_rows.append((f"r{k:05d}", list(image), list(text), ace))
        partial_image, partial_text = _simulate(image, text, m, threshold, flagged, first, step)
        adaptive_rows.append((f"r{k:05d}", partial_image, partial_text, ace))
        drawn += sum(x is not None for x in partial_image + partial_text)
    full = select(_dataset(full_rows), cde_threshold=threshold)
    adaptive = select(_dataset(adaptive_rows), cde_threshold=threshold)
    assert list(adaptive.decisions["rap_reason"]) == list(full.decisions["rap_reason"])
    assert list(adaptive.decisions["rap_keep"]) == list(full.decisions["rap_keep"])
    assert drawn < 2 * m * len(full_rows)  # and it did save rollouts
    with pytest.raises(ValueError, match="adaptive"):
        select(_dataset(adaptive_rows), mode="reference")


def test_stop_rule_cases():
    # Certainly kept (D >= (3 - 0 - 2) / 5 = 0.2 > 0.1 even if both text rollouts left were right),
    # and one image rollout is wrong.
    assert can_stop([True, True, True, False], [False, False, False], 5, 0.1, flagged=False)
    assert not can_stop([True, True, True, False], [False, False, False], 5, 0.2, flagged=False)  # D >= 0.2 only
    # Could still end trivial (no image rollout wrong yet): keep drawing.
    assert not can_stop([True, True, True], [False, False, False], 5, 0.2, flagged=False)
    # Surely outside the subset but a DRM candidate: DRM ranks by exact difficulty, keep drawing.
    assert not can_stop([True, False, False, False], [True, True, True, True], 5, 0.5, flagged=False)
    # Flagged and surely failing CDE with one image rollout right: language_prior whatever comes.
    assert can_stop([True, False], [True, True], 5, 0.5, flagged=True)
    # Flagged, failing, none right yet: unsolvable or language_prior is still open.
    assert not can_stop([False, False], [False, False], 5, 0.5, flagged=True)
    assert can_stop([False] * 5, [False] * 5, 5, 0.5, flagged=False)


def test_adaptive_scoring_draws_a_prefix_of_the_full_draw(tiny_vlm_paths):
    """Same seeds, same samples: the adaptive rollouts are exactly the first ones of the full draw,
    and selection decides the same. lambda_c = -1 lets rows stop after their first round here."""
    rows = make_visual_world(20, seed=8)["train"].select(range(6))
    base = dict(num_rollouts=4, max_new_tokens=10, batch_size=3, ace_min_rows=2, min_pixels=None, max_pixels=None)
    full = RAPScorer(tiny_vlm_paths["qwen2_5_vl"], RAPConfig(**base)).map(rows)
    adaptive = RAPScorer(tiny_vlm_paths["qwen2_5_vl"],
                         RAPConfig(**base, adaptive=True, adaptive_cde_threshold=-1.0)).map(rows)
    drawn = 0
    for a, f in zip(adaptive, full):
        for column in ("rap_responses_image", "rap_responses_text", "rap_image_correct", "rap_text_correct"):
            prefix = [x for x in a[column] if x is not None]
            assert prefix == f[column][: len(prefix)]
        drawn += sum(x is not None for x in a["rap_responses_image"] + a["rap_responses_text"])
        assert a["rap_ace"] == pytest.approx(f["rap_ace"])
    assert drawn < 2 * 4 * len(rows)
    for threshold in (-1.0,):
        assert list(select(adaptive, cde_threshold=threshold).decisions["rap_reason"]) == list(
            select(full, cde_threshold=threshold).decisions["rap_reason"])


def test_scores_do_not_depend_on_the_batch(tiny_vlm_paths):
    rows = make_visual_world(20, seed=9)["train"].select(range(5))
    config = dict(num_rollouts=2, max_new_tokens=8, compute_ace=False, compute_logit_cde=False)
    one = RAPScorer(tiny_vlm_paths["llava"], RAPConfig(**config, batch_size=1)).map(rows, batch_size=1)
    five = RAPScorer(tiny_vlm_paths["llava"], RAPConfig(**config, batch_size=5)).map(rows, batch_size=5)
    assert list(one["rap_responses_image"]) == list(five["rap_responses_image"])
    assert list(one["rap_responses_text"]) == list(five["rap_responses_text"])
    assert not math.isnan(np.mean(list(one["rap_cde"])))

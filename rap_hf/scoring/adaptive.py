"""Adaptive rollouts: the stop rule that keeps paper-mode decisions exact.

Rollouts are drawn in rounds. After each round a row stops when no outcome of its remaining
rollouts could change its decision *and* its reason under paper-mode selection (docs/method.md, CDE ->
ACE -> DRM) with the configured lambda_c and lambda_a. With D counted as (correct with image -
correct without) / M and the undrawn rollouts unknown:

- a row ACE does not flag stops once it is certainly kept and certainly not trivial: even if every
  remaining text rollout were right, D > lambda_c; and one image rollout is already wrong. Rows that
  may end trivial, or outside the subset (DRM ranks those by their exact difficulty and D), are drawn
  in full;
- a flagged row is never kept nor a DRM replacement; it stops once its CDE verdict is certain (which
  decides between attention_biased and language_prior) and, when CDE fails, once an image rollout is
  right (language_prior) rather than possibly none (unsolvable).

Undrawn rollouts are stored as None in the `rap_*_correct` / `rap_*_formatted` lists, so
`rap_hf.select` (paper mode) counts them as wrong, which the rule above makes harmless.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..rules import discrepancy


def can_stop(image_correct: Sequence[bool], text_correct: Sequence[bool], num_rollouts: int,
             cde_threshold: float, flagged: bool) -> bool:
    """Whether a row's paper-mode decision and reason are settled by the rollouts drawn so far."""
    m = num_rollouts
    drawn_image, drawn_text = len(image_correct), len(text_correct)
    if drawn_image >= m and drawn_text >= m:
        return True
    right_image, right_text = sum(map(bool, image_correct)), sum(map(bool, text_correct))
    left_image, left_text = m - drawn_image, m - drawn_text
    # D in the worst and the best case for the row: every undrawn rollout going against it, or for it.
    surely_passes = discrepancy(right_image, right_text + left_text, m) > cde_threshold
    surely_fails = discrepancy(right_image + left_image, right_text, m) <= cde_threshold
    if flagged:
        return surely_passes or (surely_fails and right_image >= 1)
    return surely_passes and drawn_image - right_image >= 1

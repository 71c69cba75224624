"""The benchmark scripts still run, in their smallest settings. Their figures are never asserted
(timings belong in benchmarks/README.md, measured as ratios in one run), only that the JSON they
write has its keys and positive numbers."""

from __future__ import annotations

import json
import math

import pytest


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_scoring_speed_runs_and_writes_its_json(tmp_path):
    from benchmarks import scoring_speed

    out = tmp_path / "scoring_speed.json"
    returned = scoring_speed.main(["--rows", "2", "--num-rollouts", "2", "--max-new-tokens", "4",
                                   "--batch-size", "2", "--repeats", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["settings"]["rows"] == 2 and saved["goals"]["min_speedup_vs_naive"] == 5.0
    assert {"machine", "versions", "settings", "goals", "by_length"} <= set(saved)
    (entry,) = saved["by_length"]
    assert entry["max_new_tokens"] == 4
    for name in scoring_speed.VARIANTS:
        assert _positive(entry["seconds"][name]["median"]) and _positive(entry["rows_per_second"][name])
        # Every variant generated the same, fixed number of tokens: 2 rows x 2 conditions x M = 2 x 4.
        assert entry["generated_tokens"][name] == 2 * 2 * 2 * 4
    for ratio in ("speedup_vs_naive", "ratio_to_floor", "floor_speedup_vs_naive", "seeded_sampler_ratio",
                  "paired_speedup_vs_naive", "paired_ratio_to_floor"):
        assert _positive(entry[ratio]), ratio
    assert set(entry["goals_met"]) == {"speedup_vs_naive", "ratio_to_floor"}
    assert {"generate", "forward", "prepare", "verify", "rest"} == set(entry["breakdown_seconds"]["ours"])
    # ours: one generate call per chunk and condition; naive: one per row and condition.
    assert entry["calls"]["ours"]["generate"] == 2 and entry["calls"]["naive"]["generate"] == 4
    assert returned["by_length"][0]["generated_tokens"] == entry["generated_tokens"]


@pytest.mark.slow
def test_ace_memory_runs_and_writes_its_json(tmp_path):
    from benchmarks import ace_memory

    out = tmp_path / "ace_memory.json"
    # In this process: a fresh process per variant spends seconds importing torch (the real run does that).
    ace_memory.main(["--layers", "2", "--tokens", "160", "--in-process", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert {"machine", "versions", "settings", "variants", "same_last_layer_weights"} <= set(saved)
    assert saved["settings"]["layers"] == 2 and saved["same_last_layer_weights"] is True
    assert set(saved["variants"]) == set(ace_memory.VARIANTS)
    for variant in ace_memory.VARIANTS:
        measured = saved["variants"][variant]
        assert _positive(measured["seconds"]) and measured["tokens"] == saved["settings"]["tokens"]
    if "cpu" in saved:  # Linux: the peak-RSS mark can be reset
        # In one process a small pass may reuse memory freed by the previous one: >= 0, not > 0.
        assert all(math.isfinite(v) and v >= 0 for v in saved["cpu"]["peak_rise_mib"].values())
        assert saved["cpu"]["ratio_all_layers_to_hook"] is None or _positive(saved["cpu"]["ratio_all_layers_to_hook"])
    assert saved["variants"]["hook"]["weights_shape"] == saved["variants"]["all_layers"]["weights_shape"]


def test_sampler_speed_runs_and_writes_its_json(tmp_path):
    from benchmarks import sampler_speed

    out = tmp_path / "sampler_speed.json"
    sampler_speed.main(["--shapes", "4x64", "2x1000", "--repeats", "3", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert {"machine", "versions", "repeats", "by_shape"} <= set(saved)
    cpu = [e for e in saved["by_shape"] if e["device"] == "cpu"]
    assert [(e["sequences"], e["vocabulary"]) for e in cpu] == [(4, 64), (2, 1000)]
    for entry in saved["by_shape"]:
        assert all(_positive(entry["ms_per_step"][way]) for way in ("generate", "seeded", "gumbel"))
        assert _positive(entry["seeded_over_generate"]) and _positive(entry["gumbel_over_seeded"])


def test_gumbel_baseline_draws_one_token_per_sequence_from_its_seed():
    """The baseline is a sampler, not a stand-in: one finite score per row, the same draw for the
    same seed and step, another at the next step."""
    import torch

    from benchmarks.sampler_speed import gumbel_baseline

    seeds = torch.tensor([11, 12, 13], dtype=torch.int64)
    logits = torch.zeros(3, 500)
    first = gumbel_baseline(seeds, 0, logits)
    assert torch.isfinite(first).sum(-1).tolist() == [1, 1, 1]
    assert torch.equal(first, gumbel_baseline(seeds, 0, logits))
    assert not torch.equal(first.argmax(-1), gumbel_baseline(seeds, 1, logits).argmax(-1))


def test_grading_agreement_runs_and_writes_its_json(tmp_path):
    from benchmarks import grading_agreement

    out = tmp_path / "grading_agreement.json"
    grading_agreement.main(["--limit", "40", "--repeats", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert {"machine", "versions", "settings", "goals", "table", "checkers", "goals_met"} <= set(saved)
    assert saved["settings"]["cases"] == 40 and set(saved["checkers"]) == {"rap_hf", "released"}
    for checker in saved["checkers"].values():
        assert checker["cases"] == 40 and 0 <= checker["agreement_percent"] <= 100
        assert checker["false_positives"] + checker["false_negatives"] == 40 - checker["agree"]
        assert checker["other_option_cases"] > 0  # the first rows hold "another option's value" cases
        assert _positive(checker["first_pass_ms_per_call"]) and _positive(checker["repeat_ms_per_call"])
    assert set(saved["goals_met"]) == {"agreement", "no_false_positive_on_other_option"}

"""Selection: reference-mode parity with the released script, paper-mode rules, reports, baselines."""

import itertools
import json
import math
import random

import numpy as np
import pytest
from selection_helpers import rollout_logs, scored_dataset

from benchmarks.released_selection import released_selection

from rap_hf import SelectionConfig, select
from rap_hf.baselines import pass_rate_band, random_subset
from rap_hf.selection import REASONS, Selection, limr_band


def _outcome_table(filler_correct: int, filler_rows: int, repeats: int, seed: int) -> list[dict]:
    """Every (image strict, image answer-only extra, text strict) combination, plus filler rows that
    move the dataset mean, shuffled into a dataset order."""
    rows = []
    for img, extra, txt in itertools.product(range(6), range(6), range(6)):
        if img + extra > 5:
            continue
        for r in range(repeats):
            rows.append({"rap_id": f"r{img}{extra}{txt}-{r}", "img": img, "img_extra": extra, "txt": txt})
    for f in range(filler_rows):
        rows.append({"rap_id": f"filler-{f}", "img": filler_correct, "txt": 0})
    random.Random(seed).shuffle(rows)
    return rows


@pytest.mark.parametrize(
    "filler_correct, filler_rows, repeats, seed",
    [(0, 0, 1, 0), (5, 400, 2, 1), (0, 600, 2, 2), (3, 150, 3, 3), (1, 1000, 1, 4), (5, 60, 4, 5)],
)
def test_reference_mode_picks_exactly_the_released_rows(filler_correct, filler_rows, repeats, seed):
    rows = _outcome_table(filler_correct, filler_rows, repeats, seed)
    ds = scored_dataset(rows)
    image_log, text_log = rollout_logs(rows)
    expected = released_selection(image_log, text_log, [r["rap_id"] for r in rows])
    selection = select(ds, mode="reference")
    kept = np.flatnonzero(np.asarray(selection.decisions["rap_keep"])).tolist()
    assert kept == expected
    assert selection.report.means["sampled"] == int(selection.report.means["pool"] * 0.1)
    assert selection.report.kept == len(expected)
    assert sum(selection.report.counts.values()) == len(rows)


def test_reference_mode_floating_point_gap():
    """(4 correct with image, 3 without) passes D > 0.2 because 0.8 - 0.6 > 0.2 in binary floating point."""
    assert 4 / 5 - 3 / 5 > 0.2
    rows = [{"rap_id": "a", "img": 4, "txt": 3}, {"rap_id": "b", "img": 3, "txt": 2},
            {"rap_id": "c", "img": 4, "txt": 4}, {"rap_id": "d", "img": 2, "txt": 0}]
    selection = select(scored_dataset(rows), mode="reference")
    reasons = dict(zip(selection.decisions["rap_id"], selection.decisions["rap_reason"]))
    band = limr_band(np.array([0.8, 0.6]), np.mean([0.8, 0.6, 0.8, 0.4]))
    assert (band >= 0.6).all()
    assert reasons["a"] == "kept"  # 0.8 - 0.6 = 0.20000000000000007 > 0.2
    assert reasons["b"] == "language_prior"  # 0.6 - 0.4 = 0.19999999999999996, not > 0.2
    expected = released_selection(*rollout_logs(rows), [r["rap_id"] for r in rows])
    assert np.flatnonzero(np.asarray(selection.decisions["rap_keep"])).tolist() == expected


def test_reference_mode_uses_strict_and_answer_only_correctness_where_the_script_does():
    rows = [
        # 5 of 5 answers right but only 2 well formatted: strict acc 0.4 for CDE, yet "easy" for DRM.
        {"rap_id": "unformatted-easy", "img": 2, "img_extra": 3, "txt": 0},
        {"rap_id": "fine", "img": 2, "txt": 0},
        {"rap_id": "x", "img": 1, "txt": 0},
        {"rap_id": "y", "img": 3, "txt": 1},
    ]
    selection = select(scored_dataset(rows), mode="reference")
    reasons = dict(zip(selection.decisions["rap_id"], selection.decisions["rap_reason"]))
    assert reasons["unformatted-easy"] == "trivial" and reasons["fine"] == "kept"
    expected = released_selection(*rollout_logs(rows), [r["rap_id"] for r in rows])
    assert np.flatnonzero(np.asarray(selection.decisions["rap_keep"])).tolist() == expected


def _reasons(selection):
    return dict(zip(selection.decisions["rap_id"], selection.decisions["rap_reason"]))


def test_paper_mode_rules():
    rows = [
        {"rap_id": "visual", "img": 4, "txt": 1},  # D = 0.6 > 0.5: kept
        {"rap_id": "half", "img": 3, "txt": 1},  # D = 0.4: not above lambda_c
        {"rap_id": "all-right", "img": 5, "txt": 2},  # D = 0.6, but 5 of 5 right: trivial
        {"rap_id": "prior", "img": 4, "txt": 4},  # D = 0: language prior
        {"rap_id": "biased", "img": 4, "txt": 0, "ace": math.log(0.5)},  # psi = 0.5 > 0.1
        {"rap_id": "unsolvable", "img": 0, "txt": 0},
        {"rap_id": "broken", "error": "Image 0 of row 'broken' could not be decoded"},
    ]
    selection = select(scored_dataset(rows), drm_k=0)
    reasons = _reasons(selection)
    assert reasons["visual"] == "kept" and reasons["half"] == "language_prior"
    assert reasons["all-right"] == "trivial"
    assert reasons["prior"] == "language_prior"
    assert reasons["biased"] == "attention_biased"
    assert reasons["unsolvable"] == "unsolvable"
    assert reasons["broken"] == "error"
    # D must be strictly above lambda_c, free of floating-point noise: with lambda_c = 0.6, neither
    # 3 - 0 nor 4 - 1 correct of 5 passes (0.8 - 0.2 is 0.6000000000000001 in binary).
    at = select(scored_dataset([{"rap_id": "h", "img": 3, "txt": 0}, {"rap_id": "g", "img": 4, "txt": 1},
                                {"rap_id": "k", "img": 4, "txt": 0}]), cde_threshold=0.6)
    assert _reasons(at) == {"h": "language_prior", "g": "language_prior", "k": "kept"}
    # Without ACE, the biased row is kept.
    assert _reasons(select(scored_dataset(rows), drm_k=0, use_ace=False))["biased"] == "kept"


def test_paper_mode_drm_replaces_trivial_rows_hardest_first_with_deterministic_ties():
    rows = [
        {"rap_id": "easy-1", "img": 5, "txt": 0},
        {"rap_id": "easy-2", "img": 5, "txt": 1},
        {"rap_id": "kept", "img": 4, "txt": 0},
        # Outside the subset (D <= 0.5), difficulty in [1/5, 1): candidates.
        {"rap_id": "c-hard-b", "img": 1, "txt": 0},  # difficulty 0.8, D 0.2
        {"rap_id": "c-hard-a", "img": 1, "txt": 0},  # same: tie broken by rap_id -> a before b
        {"rap_id": "c-hard-bigger-d", "img": 1, "txt": 1, "img_extra": 0},  # difficulty 0.8, D 0.0 -> after
        {"rap_id": "c-medium", "img": 3, "txt": 2},  # difficulty 0.4
        {"rap_id": "c-flagged", "img": 1, "txt": 0, "ace": 0.0},  # psi = 1 > 0.1: never added
        {"rap_id": "none-right", "img": 0, "txt": 0},  # difficulty 1: no signal, never added
    ]
    ds = scored_dataset(rows)
    default = _reasons(select(ds))
    assert default["easy-1"] == default["easy-2"] == "trivial"
    assert default["c-hard-a"] == default["c-hard-b"] == "kept_replacement"  # k = 2 trivial rows
    assert default["c-hard-bigger-d"] == "language_prior" and default["c-medium"] == "language_prior"
    assert default["c-flagged"] == "language_prior" and default["none-right"] == "unsolvable"
    one = _reasons(select(ds, drm_k=1))
    assert one["c-hard-a"] == "kept_replacement" and one["c-hard-b"] == "language_prior"
    four = _reasons(select(ds, drm_k=4))
    assert [k for k, v in four.items() if v == "kept_replacement"] == ["c-hard-b", "c-hard-a", "c-hard-bigger-d",
                                                                       "c-medium"]
    many = select(ds, drm_k=100)
    assert many.report.counts["kept_replacement"] == 4  # only signal-bearing, unflagged rows qualify
    # Shuffling the rows does not change who is added.
    shuffled = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    assert _reasons(select(scored_dataset(shuffled), drm_k=1)) == one


def test_every_row_has_exactly_one_reason_and_the_report_adds_up(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"rap_id": f"r{i}", "img": int(a), "txt": int(min(b, 5)), "ace": float(c)}
            for i, (a, b, c) in enumerate(zip(rng.integers(0, 6, 300), rng.integers(0, 6, 300),
                                              rng.normal(-3, 2, 300)))]
    rows += [{"rap_id": "bad", "error": "empty answer"}]
    ds = scored_dataset(rows)
    for mode in ("paper", "reference"):
        selection = select(ds, mode=mode)
        decisions = selection.decisions
        assert len(decisions) == len(ds) and list(decisions["rap_id"]) == list(ds["rap_id"])
        assert set(decisions["rap_reason"]) <= set(REASONS)
        report = selection.report
        assert sum(report.counts.values()) == report.total == len(ds)
        assert report.kept == report.counts["kept"] + report.counts["kept_replacement"] == len(selection.dataset)
        assert all(selection.dataset["rap_keep"]) and report.counts["error"] == 1
        assert report.fraction == pytest.approx(report.kept / report.total)
        data = json.loads(json.dumps(report.to_dict()))
        assert data["counts"] == report.counts and "rap_cde" in data["histograms"]
        markdown = report.to_markdown()
        assert f"kept {report.kept:,} of {report.total:,}" in markdown and "| language_prior |" in markdown
        (plot,) = report.save_plots(tmp_path / mode)
        assert plot.exists() and plot.stat().st_size > 10_000
    hist = select(ds).report.histograms["rap_cde"]
    assert sum(hist["counts"]) == 300


def test_a_selection_that_keeps_nothing_saves_and_loads(tmp_path):
    ds = scored_dataset([{"rap_id": "prior", "img": 5, "txt": 5, "ace": -9.0},
                         {"rap_id": "hopeless", "img": 0, "txt": 0, "ace": -9.0}])
    selection = select(ds)
    assert selection.report.kept == 0
    loaded = Selection.load_from_disk(selection.save_to_disk(tmp_path / "none"))
    assert len(loaded.dataset) == 0 and loaded.dataset.column_names == selection.decisions.column_names
    assert list(loaded.decisions["rap_reason"]) == ["language_prior", "unsolvable"]


def test_reselecting_a_selection_replaces_its_decisions():
    ds = scored_dataset([{"rap_id": "a", "img": 4, "txt": 0}, {"rap_id": "b", "img": 2, "txt": 2}])
    first = select(ds)
    again = select(first.decisions, cde_threshold=-1.0)
    assert list(again.decisions["rap_keep"]) == [True, True]
    assert again.decisions.column_names.count("rap_keep") == 1


def test_configuration_errors_are_clear():
    ds = scored_dataset([{"rap_id": "a", "img": 4, "txt": 0}]).remove_columns("rap_ace")
    with pytest.raises(ValueError, match="use_ace=False"):
        select(ds, use_ace=True)  # asked for, ACE needs its column
    assert select(ds, use_ace=False).report.kept == 1
    with pytest.raises(ValueError, match="no ACE"):
        SelectionConfig(mode="reference", use_ace=True)
    with pytest.raises(ValueError, match="RAPScorer"):
        select(ds.remove_columns("rap_text_correct"), use_ace=False)
    assert set(SelectionConfig.help()) >= {"mode", "cde_threshold", "drm_k", "drm_seed"}


def test_rows_scored_without_ace_are_selected_and_the_report_says_so():
    """Rows scored through inference servers without local weights carry no rap_ace: paper mode left to
    its default selects them on CDE and DRM, and the report says plainly that ACE was not applied."""
    with_ace = scored_dataset([{"rap_id": "a", "img": 4, "txt": 0}, {"rap_id": "b", "img": 2, "txt": 2}])
    ds = with_ace.remove_columns("rap_ace")
    for selection in (select(ds), select(ds, SelectionConfig(), cde_threshold=0.5)):
        assert selection.report.kept == 1 and selection.report.thresholds["use_ace"] is False
        assert "ACE was not applied" in selection.report.to_markdown()
    assert "not applied" not in select(with_ace).report.to_markdown()


def test_baselines():
    rows = [{"rap_id": f"r{i}", "img": i % 6, "txt": 0} for i in range(60)] + [{"rap_id": "bad", "error": "x"}]
    ds = scored_dataset(rows)
    random_a, random_b = random_subset(ds, 10, seed=3), random_subset(ds, 10, seed=3)
    assert random_a.report.kept == 10 and list(random_a.dataset["rap_id"]) == list(random_b.dataset["rap_id"])
    assert random_subset(ds, fraction=0.5, seed=1).report.counts == {"kept": 30, "not_selected": 31}
    assert list(random_subset(ds, 10, seed=4).dataset["rap_id"]) != list(random_a.dataset["rap_id"])
    band = pass_rate_band(ds, low=0.2, high=0.8)
    reasons = _reasons(band)
    assert reasons["r1"] == "kept" and reasons["r4"] == "kept"  # acc 0.2 and 0.8 are inside the band
    assert reasons["r0"] == "unsolvable" and reasons["r5"] == "trivial" and reasons["bad"] == "error"
    assert band.report.counts["kept"] == 40 and sum(band.report.counts.values()) == 61
    with pytest.raises(ValueError):
        random_subset(ds)


def test_overriding_the_mode_of_a_config_rederives_use_ace():
    ds = scored_dataset([{"rap_id": "a", "img": 4, "txt": 0}, {"rap_id": "b", "img": 1, "txt": 0}])
    assert select(ds, SelectionConfig(), mode="reference").config.use_ace is False
    assert select(ds, SelectionConfig(mode="reference"), mode="paper").config.use_ace is True


def test_mismatched_rollout_counts_are_explained():
    from datasets import Dataset

    from selection_helpers import SCORED_FEATURES

    ds = Dataset.from_dict({"rap_id": ["a"], "rap_image_correct": [[True] * 5], "rap_text_correct": [[True] * 4],
                            "rap_image_formatted": [[True] * 5], "rap_text_formatted": [[True] * 4],
                            "rap_ace": [0.0], "rap_error": [None]}, features=SCORED_FEATURES)
    with pytest.raises(ValueError, match="different numbers of rollouts"):
        select(ds)


def test_a_rule_of_ones_own_goes_through_the_public_hook(tmp_path):
    """A rule the library does not know (keep the rows exactly one image rollout solves) labels the
    rows and calls `selection_from_reasons`; what comes back behaves like `select`'s result."""
    from rap_hf.data.io import load_rows
    from rap_hf.selection import REASON_CODES, is_selection_folder, read_outcomes, selection_from_reasons

    def solved_once(scored):
        outcomes = read_outcomes(scored)
        reasons = np.where(outcomes.image_correct == 1, "kept", "not_selected").astype(object)
        reasons[~outcomes.valid] = "error"
        return selection_from_reasons(scored, reasons, mode="solved_once", thresholds={"image_correct": 1},
                                      outcomes=outcomes)

    rows = [{"rap_id": "once", "img": 1, "txt": 0}, {"rap_id": "twice", "img": 2, "txt": 0},
            {"rap_id": "never", "img": 0, "txt": 0}, {"rap_id": "bad", "error": "empty answer"}]
    ds = scored_dataset(rows)
    selection = solved_once(ds)
    assert _reasons(selection) == {"once": "kept", "twice": "not_selected", "never": "not_selected", "bad": "error"}
    assert list(selection.dataset["rap_id"]) == ["once"] and list(selection.decisions["rap_id"]) == list(ds["rap_id"])
    report = selection.report
    assert report.mode == "solved_once" and report.kept == 1 and report.total == len(ds)
    assert list(report.counts) == [*REASONS, "not_selected"] and sum(report.counts.values()) == len(ds)
    assert report.counts["not_selected"] == 2 and report.counts["error"] == 1
    assert report.thresholds == {"image_correct": 1} and report.num_rollouts == 5
    assert sum(report.histograms["rap_cde"]["counts"]) == 3  # the scored rows
    assert selection.config is None and "| not_selected | 2 |" in report.to_markdown()

    # Codes instead of labels: the same decisions, and the same cache fingerprint.
    codes = np.asarray([REASON_CODES[r] for r in selection.decisions["rap_reason"]], dtype=np.int8)
    again = selection_from_reasons(ds, codes, mode="solved_once", thresholds={"image_correct": 1})
    assert list(again.decisions["rap_reason"]) == list(selection.decisions["rap_reason"])
    assert again.decisions._fingerprint == selection.decisions._fingerprint
    assert again.report.histograms == {} and again.report.num_rollouts == 0  # no outcomes given
    # It saves in the selection layout, and loads back.
    folder = selection.save_to_disk(tmp_path / "solved_once")
    assert is_selection_folder(folder) and not is_selection_folder(folder / "decisions")
    loaded = Selection.load_from_disk(folder)
    assert loaded.report.counts == report.counts and list(loaded.dataset["rap_id"]) == ["once"]
    with pytest.raises(ValueError, match="selection folder"):  # two datasets inside: say which
        load_rows(str(folder))

    with pytest.raises(ValueError, match="unknown reasons"):
        selection_from_reasons(ds, ["kept", "maybe", "kept", "kept"], mode="broken")
    with pytest.raises(ValueError, match="one reason per row"):
        selection_from_reasons(ds, ["kept"], mode="broken")
    with pytest.raises(ValueError, match="does not count"):
        selection_from_reasons(ds, ["kept", "not_selected", "kept", "kept"], mode="broken", counted=REASONS)
    with pytest.raises(ValueError, match="REASON_CODES"):
        selection_from_reasons(ds, [0, 1, 2, 99], mode="broken")


# ------------------------------------------------------------------ a selection that keeps nothing says why
def test_a_selection_of_nothing_says_why_from_the_counts(tmp_path):
    # A scorer that solves nothing (a random model): every row unsolvable.
    hopeless = select(scored_dataset([{"rap_id": f"r{i}"} for i in range(48)]))
    why = hopeless.report.why_none_kept
    assert hopeless.report.kept == 0 and "\n" not in why
    assert "0 of 48 rows: 48 unsolvable" in why and "no row right with the image (mean acc_image 0.00" in why
    assert "stronger model" in why and "rap-hf score" in why and "format prompt" in why
    markdown = hopeless.report.to_markdown()
    assert f"**{why}**" in markdown
    data = json.loads(json.dumps(hopeless.report.to_dict()))
    assert data["why_none_kept"] == why
    folder = hopeless.save_to_disk(tmp_path / "hopeless")
    assert json.loads((folder / "report.json").read_text())["why_none_kept"] == why
    assert why in (folder / "report.md").read_text()
    assert Selection.load_from_disk(folder).report.why_none_kept == why  # derived again, not a field

    # A scorer that answers as well without the image: every row a language prior.
    prior = select(scored_dataset([{"rap_id": f"p{i}", "img": 4, "txt": 4} for i in range(10)]))
    why = prior.report.why_none_kept
    assert "10 language_prior" in why and "lambda_c = 0.5" in why and "--cde-threshold" in why
    assert "mean acc_image 0.80, without the image 0.80" in why
    assert "--ref-core-gap" in select(prior.decisions, mode="reference").report.why_none_kept

    # Rows that could not be scored at all.
    broken = select(scored_dataset([{"rap_id": f"e{i}", "error": "empty answer"} for i in range(3)]))
    assert "3 error" in broken.report.why_none_kept and "rap_error" in broken.report.why_none_kept

    # Too easy, flagged by ACE, a baseline asked for nothing, a band nothing falls into.
    easy = scored_dataset([{"rap_id": f"t{i}", "img": 5} for i in range(3)])
    assert "3 trivial" in select(easy).report.why_none_kept
    flagged = scored_dataset([{"rap_id": f"a{i}", "img": 4, "ace": 0.0} for i in range(3)])
    assert "--ace-threshold" in select(flagged).report.why_none_kept
    assert "3 not_selected" in random_subset(flagged, 0).report.why_none_kept
    assert "[0.1, 0.2]" in pass_rate_band(flagged, 0.1, 0.2).report.why_none_kept

    # A selection that keeps rows says nothing of the sort.
    kept = select(scored_dataset([{"rap_id": "v", "img": 4, "txt": 0}]))
    assert kept.report.kept == 1 and kept.report.why_none_kept is None
    assert "Nothing was kept" not in kept.report.to_markdown() and kept.report.to_dict()["why_none_kept"] is None


def test_every_threshold_is_checked_with_its_range_and_flag():
    cases = [("cde_threshold", 5.0, "in [-1, 1]"), ("cde_threshold", -1.5, "in [-1, 1]"),
             ("ace_threshold", 0.0, "> 0"), ("drm_ratio", 2.0, "in [0, 1]"), ("drm_k", -1, ">= 0"),
             ("ref_core_band", 1.5, "in [0, 1]"), ("ref_pool_band", -0.1, "in [0, 1]"),
             ("ref_core_gap", 2.0, "in [-1, 1]"), ("ref_pool_gap", -3.0, "in [-1, 1]"),
             ("ref_pool_strong_gap", 1.2, "in [-1, 1]"), ("cde_threshold", math.nan, "in [-1, 1]")]
    for name, value, span in cases:
        with pytest.raises(ValueError) as error:
            SelectionConfig(**{name: value})
        message = str(error.value)
        flag = "--" + name.replace("_", "-")
        assert f"{name} must be {span}" in message and f"got {value}" in message and flag in message, message
        assert "\n" not in message
    for name, value in (("cde_threshold", -1.0), ("cde_threshold", 1.0), ("drm_ratio", 0.0), ("ref_core_band", 1.0)):
        SelectionConfig(**{name: value})  # the ends of the ranges are allowed
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\].*got 1.5"):
        random_subset(scored_dataset([{"rap_id": "a"}]), fraction=1.5)
    with pytest.raises(ValueError, match=r"n must be in \[0, 1\] \(the dataset has 1 rows\), got 3"):
        random_subset(scored_dataset([{"rap_id": "a"}]), 3)
    with pytest.raises(ValueError, match="whole number"):
        random_subset(scored_dataset([{"rap_id": "a"}]), 0.5)
    with pytest.raises(ValueError, match=r"high must be in \[0, 1\].*got 1.2"):
        pass_rate_band(scored_dataset([{"rap_id": "a"}]), 0.2, 1.2)
    with pytest.raises(ValueError, match=r"low \(0.9\) must not exceed high \(0.2\)"):
        pass_rate_band(scored_dataset([{"rap_id": "a"}]), 0.9, 0.2)

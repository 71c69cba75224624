"""`rap-hf quickstart --fast`: every stage runs for real and the report says what happened."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard, ModelCard
from transformers import AutoModelForImageTextToText

from rap_hf.data.synthetic import make_visual_world
from rap_hf.embedded import embedded_world
from rap_hf.quickstart import FAST_RECIPE, QuickstartConfig, run_quickstart
from rap_hf.quickstart.pipeline import RUN_FILE, STAGES, StageClock, auroc, prepare_scorer, training_steps
from rap_hf.selection import Selection

ARMS = ("rap", "random", "full")


# The --fast scorer answers at about chance after its short warm-up, so at the paper's lambda_c = 0.5
# RAP keeps a row only when a lucky draw gives it D > 0.5 (one sampler kept a few rows of 96, the next
# none). lambda_c = 0 keeps every row where the picture helped at all and that still gives GRPO a
# signal: dozens of rows, so the RAP and random arms train and every check below has work to check.
FAST_CDE_THRESHOLD = 0.0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One `rap-hf quickstart --fast` from an empty cache, as a new user runs it."""
    root = tmp_path_factory.mktemp("quickstart")
    env = {**os.environ, "RAP_HF_CACHE": str(root / "cache"), "HF_HUB_OFFLINE": "1"}
    out = root / "out"
    command = [sys.executable, "-m", "rap_hf", "quickstart", "--fast", "--cde-threshold", str(FAST_CDE_THRESHOLD),
               "--out", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    return {"out": out, "stdout": result.stdout, "stderr": result.stderr, "report": report, "cache": root / "cache"}


def test_it_prints_no_deprecation_warning(run):
    """Nothing deprecated is called on the way: no FutureWarning or DeprecationWarning reaches the user
    (pixel bounds go through the processor's `size`, the world is ordered without `Dataset.sort`)."""
    for category in ("FutureWarning", "DeprecationWarning"):
        assert category not in run["stderr"] and category not in run["stdout"], run["stderr"][-3000:]


def test_a_line_per_stage(run):
    for number, stage in enumerate(STAGES, start=1):
        assert f"[{number}/{len(STAGES)}]" in run["stdout"]
    assert set(run["report"]["timings"]) == {*STAGES, "total"}
    timings = run["report"]["timings"]
    assert timings["total"] >= sum(timings[s] for s in STAGES) - 1e-6


def test_every_pool_row_is_accounted_for(run):
    report, out = run["report"], run["out"]
    pool = report["world"]["rows"]["pool"]
    assert pool == FAST_RECIPE.score_rows == 96 and report["world"]["rows"]["heldout"] == 60
    assert sum(report["world"]["planted"]["pool"].values()) == pool
    selection = report["selection"]
    assert selection["thresholds"]["cde_threshold"] == FAST_CDE_THRESHOLD and selection["kept"] > 0
    assert sum(selection["counts"].values()) == pool
    assert selection["fraction"] == pytest.approx(selection["kept"] / pool, abs=1e-4)
    saved = Selection.load_from_disk(out / "selection")
    assert len(saved.dataset) == selection["kept"] and len(saved.decisions) == pool
    assert sum(selection["pass_rate_band"]["counts"].values()) == pool


def test_detection_aurocs_match_the_scores(run):
    decisions = Selection.load_from_disk(run["out"] / "selection").decisions
    detection = run["report"]["detection"]
    for key, column in (("cde_auroc_language_prior", "rap_cde"), ("logit_cde_auroc_language_prior", "rap_logit_cde")):
        visual = [v for v, p in zip(decisions[column], decisions["rap_planted"]) if p == "visual" and v is not None]
        prior = [v for v, p in zip(decisions[column], decisions["rap_planted"]) if p == "language_prior" and v is not None]
        pairs = [(a > b) + 0.5 * (a == b) for a in visual for b in prior]
        assert detection[key] == pytest.approx(sum(pairs) / len(pairs), abs=1e-4)
    assert detection["rows"]["visual"] == run["report"]["world"]["planted"]["pool"]["visual"]


def test_auroc():
    assert auroc([3, 2], [1, 2]) == pytest.approx(0.875)
    assert auroc([1.0], [float("nan")]) is None
    assert auroc([0, 0], [1, 1]) == 0.0


def test_arms_train_as_promised(run):
    training = run["report"]["training"]
    pool, kept = run["report"]["world"]["rows"]["pool"], run["report"]["selection"]["kept"]
    config = QuickstartConfig(fast=True)
    assert training["rap"]["rows"] == training["random"]["rows"] == kept
    assert training["rap"]["steps"] == training["random"]["steps"] == training_steps(kept, config)
    assert training["full"]["rows"] == pool and training["full"]["steps"] == training_steps(pool, config)
    assert training_steps(0, config) == 0  # an arm without rows is not trained (see the --model test)
    # One pass by default, so an arm's compute is what its rows cost; min_steps is a floor.
    assert training_steps(10, QuickstartConfig()) == 2 and training_steps(400, QuickstartConfig()) == 50
    assert training_steps(10, QuickstartConfig(min_steps=24)) == 24
    # Compute: completions generated per run, steps x prompts per step x generations.
    for arm in ARMS:
        assert training[arm]["completions"] == training[arm]["steps"] * min(8, training[arm]["rows"]) * 4
        assert training[arm]["runs"][0]["completions"] == training[arm]["completions"]
    for arm in ARMS:
        assert len(training[arm]["runs"]) == 1 and training[arm]["runs"][0]["steps"] == training[arm]["steps"]
        assert training[arm]["seconds"][0] > 0
        # The training signal: one share of groups with reward variance per GRPO step, and its mean.
        run_facts = training[arm]["runs"][0]
        shares = run_facts["signal_share_per_step"]
        assert len(shares) == training[arm]["steps"] and all(0.0 <= v <= 1.0 for v in shares)
        assert run_facts["signal_share"] == pytest.approx(sum(shares) / len(shares), abs=1e-3)
        completions = config.num_generations * min(config.prompts_per_step, training[arm]["rows"])
        assert run_facts["informative_completions_per_step"] == pytest.approx(
            run_facts["signal_share"] * completions, abs=0.02)
        assert training[arm]["signal_share"] == [run_facts["signal_share"]]
        assert training[arm]["signal_share_mean"] == pytest.approx(run_facts["signal_share"], abs=1e-4)


def test_training_signal_reads_trls_zero_std_fraction():
    from rap_hf.quickstart.pipeline import training_signal

    history = [{"loss": 0.1, "frac_reward_zero_std": 0.75, "step": 1}, {"frac_reward_zero_std": 0.25, "step": 2},
               {"train_runtime": 3.0}]
    assert training_signal(history, completions_per_step=32) == {
        "signal_share_per_step": [0.25, 0.75], "signal_share": 0.5, "informative_completions_per_step": 16.0}
    assert training_signal([], 32)["signal_share"] is None


def test_resolution_is_twice_the_paired_standard_error():
    from rap_hf.quickstart.pipeline import resolution

    def runs(*per_seed):
        return [{"seed": seed, "correct": [bool(v) for v in row]} for seed, row in enumerate(per_seed)]

    evaluations = {"rap": runs([1, 1, 0, 0], [1, 0, 0, 0]), "random": runs([1, 0, 0, 0], [1, 0, 1, 0])}
    # Per-seed differences +0.25, -0.25 (variance 0.125, over 2 seeds); per-row mean differences
    # 0, 0.5, -0.5, 0 (variance 1/6, over 4 rows): 2 * sqrt(0.0625 + 1/24).
    assert resolution(evaluations) == pytest.approx(2 * math.sqrt(0.0625 + 1 / 24), abs=1e-4)
    # Identical arms: no difference to resolve, nothing noisy either.
    assert resolution({"rap": runs([1, 0], [0, 1]), "random": runs([1, 0], [0, 1])}) == 0.0
    assert resolution({"rap": runs([1, 0]), "random": runs([0, 1])}) is None  # one seed: spread unknown


def test_the_effect_says_what_the_study_found():
    from rap_hf.quickstart.pipeline import rap_effect

    accuracy = {"base": 0.6, "rap": 0.9, "random": 0.8, "full": 0.92, "resolution": 0.05,
                "per_type": {"base": {"learnable": 0.2, "visual": 1.0}, "rap": {"learnable": 0.9, "visual": 1.0},
                             "random": {"learnable": 0.5, "visual": 0.98}, "full": {"learnable": 0.95, "visual": 1.0}}}
    training = {"rap": {"completions": 192}, "random": {"completions": 192}, "full": {"completions": 960}}
    effect = rap_effect(accuracy, training)
    assert effect["rap_minus_random"] == 0.1 and effect["rap_beats_random"] is True
    assert effect["rap_minus_full"] == -0.02 and effect["rap_matches_full"] is True  # within the resolution
    assert effect["full_to_rap_completions"] == 5.0
    assert effect["per_type"]["learnable"] == {"rap_gain_over_base": 0.7, "rap_minus_random": 0.4}
    # Not beyond the resolution, and short of the full pool by more than it.
    effect = rap_effect({**accuracy, "random": 0.87, "full": 0.96}, training)
    assert effect["rap_beats_random"] is False and effect["rap_matches_full"] is False
    # One seed: no resolution, so no verdict either way; no RAP arm: nothing to compare.
    assert rap_effect({**accuracy, "resolution": None}, training)["rap_beats_random"] is None
    empty = rap_effect({"base": 0.6, "rap": None, "random": None, "full": 0.7, "resolution": None, "per_type": {}},
                       {"rap": {"completions": 0}, "random": {"completions": 0}, "full": {"completions": 96}})
    assert empty["rap_minus_random"] is None and empty["full_to_rap_completions"] is None


def test_checkpoints_moved_away_from_the_scorer(run):
    scorer = AutoModelForImageTextToText.from_pretrained(run["report"]["scorer"]["model"])
    base = dict(scorer.named_parameters())
    for arm in ARMS:
        trained = AutoModelForImageTextToText.from_pretrained(run["out"] / "checkpoints" / f"{arm}-seed0")
        moved = max((p - base[n]).abs().max().item() for n, p in trained.named_parameters())
        assert moved > 0, arm


def test_heldout_accuracy_is_what_the_evaluations_say(run):
    report, out = run["report"], run["out"]
    accuracy = report["heldout_accuracy"]
    heldout = embedded_world(FAST_RECIPE)["test"]
    planted = dict(zip(heldout["rap_id"], heldout["rap_planted"]))
    for arm in ("base", *ARMS):
        name = "base" if arm == "base" else f"{arm}-seed0"
        summary = json.loads((out / "eval" / name / "summary.json").read_text())
        rows = [json.loads(line) for line in (out / "eval" / name / "rows.jsonl").read_text().splitlines()]
        assert len(rows) == report["world"]["rows"]["heldout"] == summary["total"] == len(heldout)
        assert accuracy[arm] == pytest.approx(summary["accuracy"], abs=1e-4)
        assert accuracy["per_seed"][arm] == [accuracy[arm]]
        assert 0.0 <= accuracy[arm] <= 1.0
        for kind, value in accuracy["per_type"][arm].items():
            picked = [r["correct"] for r in rows if planted[r["rap_id"]] == kind]
            assert value == pytest.approx(sum(picked) / len(picked), abs=1e-4)
        assert set(accuracy["per_type"][arm]) == {"language_prior", "learnable", "unsolvable", "visual"}


def test_hub_trees_load_back(run):
    out, report = run["out"], run["report"]
    subset = load_dataset("parquet", data_files=str(out / "hub" / "subset" / "data" / "*.parquet"), split="train")
    assert len(subset) == report["selection"]["kept"]
    assert DatasetCard.load(out / "hub" / "subset" / "README.md").data.size_categories
    card = ModelCard.load(out / "hub" / "model" / "README.md")
    results = card.data.eval_results
    assert results and math.isclose(results[0].metric_value, report["heldout_accuracy"]["per_seed"]["rap"][0],
                                    abs_tol=1e-4)
    assert (out / "hub" / "model" / "config.json").exists()


def test_report_files(run):
    out, report = run["out"], run["report"]
    for name in ("score_distributions.png", "heldout_accuracy.png", "timings.png", "training_signal.png",
                 "accuracy_vs_completions.png"):
        assert (out / "plots" / name).read_bytes()[:4] == b"\x89PNG"
    markdown = (out / "report.md").read_text()
    # It opens with the arms: rows, planted mix, signal, compute and accuracy overall and per type.
    table = markdown.split("\n\n")[2 if report["fast"] else 1].splitlines()
    assert table[0].startswith("| arm | rows | planted mix of the rows | groups with signal | completions | seconds |")
    assert table[0].endswith("| language_prior | learnable | unsolvable | visual |") and len(table) == 6
    rap_row = next(line for line in table if line.startswith("| RAP subset |"))
    kept = report["selection"]["planted_kept"]
    assert ", ".join(f"{k} {v}" for k, v in kept.items()) in rap_row
    assert f"| {report['training']['rap']['completions']:,} |" in rap_row
    assert f"{100 * report['heldout_accuracy']['per_type']['rap']['learnable']:.1f} %" in rap_row
    rap_signal = report["training"]["rap"]
    assert f"{100 * rap_signal['signal_share_mean']:.0f} %" in markdown and "groups with signal" in markdown
    assert "![training signal](plots/training_signal.png)" in markdown
    # The scorer's skills per task, at the top of the report (and in report.json).
    skills = report["scorer"]["skills"]
    assert set(skills) == set(report["world"]["tasks"]["pool"])
    scorer_line = markdown.split("**Scorer.** ")[1].split("\n")[0]
    assert "warmed up here" in scorer_line
    for task, acc in skills.items():
        assert f"{task} {100 * acc['image']:.1f} % / {100 * acc['text']:.1f} %" in scorer_line
    assert markdown.index("| arm |") < markdown.index("**Verdict.**") < markdown.index("**Scorer.**")
    assert "--fast` smoke run" in markdown and "**Verdict.**" in markdown
    rap, rand = report["heldout_accuracy"]["rap"], report["heldout_accuracy"]["random"]
    assert f"{100 * rap:.1f} %" in markdown and f"{100 * rand:.1f} %" in markdown
    ace = report["selection"]["ace"]
    assert f"ACE scored {ace['scored']} of {report['world']['rows']['pool']} rows" in markdown
    assert 0 <= ace["flagged"] <= ace["scored"] <= report["world"]["rows"]["pool"]
    assert report["scorer"]["warm_up"]["cached"] is False and report["scorer"]["warm_up"]["seconds"] > 0
    assert report["scorer"]["parameters"] > 100_000


def test_a_second_run_reuses_the_warm_up(run, monkeypatch):
    monkeypatch.setenv("RAP_HF_CACHE", str(run["cache"]))
    import rap_hf.warmup

    def fail(*args, **kwargs):
        raise AssertionError("warmed up again")

    monkeypatch.setattr(rap_hf.warmup, "warm_up", fail)
    clock = StageClock(echo=lambda line: None)
    model, info = prepare_scorer(QuickstartConfig(fast=True), clock)
    assert info["warm_up"]["cached"] is True and Path(model) == Path(run["report"]["scorer"]["model"])
    assert "loaded from the cache" in clock.notes["warm-up"]


def test_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match="seeds"):
        QuickstartConfig(seeds=0)
    with pytest.raises(ValueError, match="epochs"):
        QuickstartConfig(epochs=0)
    with pytest.raises(ValueError, match="cde_threshold"):
        QuickstartConfig(cde_threshold=1.5)
    with pytest.raises(ValueError, match="min_steps"):
        QuickstartConfig(min_steps=0)
    for embedded_only in ({"warm_up": True}, {"scorer_seed": 1}):
        with pytest.raises(ValueError, match="with --model the study uses that model"):
            QuickstartConfig(model="some/model", **embedded_only)


def test_the_default_study_scores_with_the_shipped_scorer(monkeypatch, tmp_path):
    """No warm-up by default: the scorer shipped with the package, and its held-out skills, in the report."""
    from rap_hf.embedded import SHIPPED_SCORER, shipped_scorer

    monkeypatch.setenv("RAP_HF_CACHE", str(tmp_path / "cache"))
    import rap_hf.warmup

    monkeypatch.setattr(rap_hf.warmup, "warm_up", lambda *a, **k: pytest.fail("warmed up a scorer that ships"))
    clock = StageClock(echo=lambda line: None)
    model, info = prepare_scorer(QuickstartConfig(), clock)
    assert Path(model) == SHIPPED_SCORER and info["source"] == "shipped with the package"
    assert info["warm_up"]["cached"] is True and info["skills_heldout"]["colour"]["image"] >= 0.9
    assert "--warm-up builds it here" in clock.notes["warm-up"]
    assert not (tmp_path / "cache").exists()  # nothing was built
    # --scorer-seed names another scorer: it is warmed up here, not taken from the package.
    assert shipped_scorer(QuickstartConfig(scorer_seed=1).recipe()) is None
    assert QuickstartConfig(scorer_seed=0).recipe() == QuickstartConfig().recipe()


def test_cli_help_lists_the_flags():
    result = subprocess.run([sys.executable, "-m", "rap_hf", "quickstart", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--out", "--fast", "--warm-up", "--scorer-seed", "--min-steps", "--model", "--dataset", "--seeds",
                 "--cde-threshold"):
        assert flag in result.stdout


def test_a_model_and_dataset_of_your_own(tmp_path, tiny_vlm_paths):
    """--model and --dataset: a dataset without a held-out split gets one carved from it; a model
    that solves nothing keeps no rows, and the report says so instead of failing."""
    make_visual_world(60, seed=3)["train"].save_to_disk(str(tmp_path / "rows"))
    out = tmp_path / "out"
    config = QuickstartConfig(output_dir=str(out), model=str(tiny_vlm_paths["qwen2_5_vl"]), dataset=str(tmp_path / "rows"),
                              pool_rows=12, heldout_rows=6, seeds=1, max_new_tokens=6, min_steps=2, device="cpu")
    lines = []
    report = run_quickstart(config, echo=lines.append)
    assert report["world"]["rows"] == {"pool": 12, "heldout": 6}
    assert report["scorer"]["warm_up"] is None and "skipped" in " ".join(lines)
    pool_ids = set(Selection.load_from_disk(out / "selection").decisions["rap_id"])
    heldout_ids = {json.loads(line)["rap_id"] for line in (out / "eval" / "base" / "rows.jsonl").read_text().splitlines()}
    assert len(pool_ids) == 12 and len(heldout_ids) == 6 and not pool_ids & heldout_ids
    assert report["selection"]["kept"] == 0 and sum(report["selection"]["counts"].values()) == 12
    assert report["training"]["rap"]["steps"] == 0 and report["training"]["rap"]["runs"] == []
    assert report["training"]["full"]["rows"] == 12 and len(report["training"]["full"]["runs"]) == 1
    assert report["heldout_accuracy"]["rap"] is None and report["heldout_accuracy"]["full"] is not None
    assert "RAP kept no rows" in (out / "report.md").read_text()
    # An empty subset is neither trained nor published.
    assert not (out / "hub" / "model").exists() and not (out / "hub" / "subset").exists()
    assert report["hub"]["subset"] is None


def test_a_rerun_reuses_finished_training(run, tmp_path, monkeypatch):
    """A quickstart interrupted while training the full pool: the rerun trains only that run again."""
    out = tmp_path / "out"
    shutil.copytree(run["out"], out)
    (out / "checkpoints" / "full-seed0" / RUN_FILE).unlink()
    monkeypatch.setenv("RAP_HF_CACHE", str(run["cache"]))
    lines = []
    config = QuickstartConfig(output_dir=str(out), fast=True, cde_threshold=FAST_CDE_THRESHOLD)
    report = run_quickstart(config, echo=lines.append)
    runs = {arm: report["training"][arm]["runs"][0] for arm in ARMS}
    assert runs["rap"]["reused"] and runs["random"]["reused"] and not runs["full"]["reused"]
    assert "2 finished run(s)" in "\n".join(lines) and "loaded from the cache" in "\n".join(lines)
    assert report["scorer"]["scoring"]["cached"] is True
    assert report["heldout_accuracy"]["rap"] == run["report"]["heldout_accuracy"]["rap"]
    assert report["training"]["full"]["steps"] == run["report"]["training"]["full"]["steps"]


def test_the_spread_benchmark_reads_a_report_and_holds_it_to_the_tolerance(run):
    """benchmarks/quickstart_spread.py on this run's report: its key figures, their spread over two
    conditions, and a figure moved beyond the tolerance is named."""
    import copy

    from benchmarks.quickstart_spread import TOLERANCE, goals, key_figures, spread

    figures = key_figures(run["report"])
    assert figures["kept"] == run["report"]["selection"]["kept"]
    assert figures["skills"]["colour"]["image"] == run["report"]["scorer"]["skills"]["colour"]["image"]
    moved = copy.deepcopy(figures)
    moved["kept"] += TOLERANCE["kept"] + 1
    moved["cde_auroc"] += TOLERANCE["auroc"] / 2
    result = spread({"two_threads": figures, "one_thread": moved})
    assert not result["kept"]["within"] and result["kept"]["range"] == TOLERANCE["kept"] + 1
    assert result["cde_auroc"]["within"] and result["accuracy.base"]["range"] == 0
    met = goals(figures, wall_seconds=100.0)
    assert met["fresh_seconds"] is True and set(met) >= {"sees_colour_and_count", "cde_auroc", "logit_cde_auroc"}

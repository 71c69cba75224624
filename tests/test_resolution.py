"""Image resolution: the paper's pixel bounds by default, the same for scoring, evaluation and training,
in every cache key, the shard manifest and pickles."""

import pickle

import pytest
from PIL import Image

from rap_hf import EvalConfig, RAPConfig, RAPScorer
from rap_hf.cli import main
from rap_hf.config import PAPER_MAX_PIXELS, PAPER_MIN_PIXELS
from rap_hf.data.synthetic import make_visual_world
from rap_hf.modeling import load_processor, takes_pixel_bounds


def image_tokens(processor, width: int, height: int) -> int:
    """Image tokens a Qwen-VL processor gives one picture (its grid over the merge size squared)."""
    image_processor = processor.image_processor
    grid = image_processor(images=[Image.new("RGB", (width, height))], return_tensors="pt")["image_grid_thw"][0]
    return int(grid.prod()) // image_processor.merge_size ** 2


def test_paper_bounds_give_the_papers_token_counts(tiny_vlm_paths):
    qwen = tiny_vlm_paths["qwen2_5_vl"]
    own = load_processor(qwen)
    paper = load_processor(qwen, min_pixels=PAPER_MIN_PIXELS, max_pixels=PAPER_MAX_PIXELS)
    assert takes_pixel_bounds(paper.image_processor)
    # The paper's EasyR1 runs: at least 352 tokens for a small picture, at most 5,292 for a 4000x3000 one.
    assert image_tokens(paper, 200, 150) == 352 and image_tokens(paper, 4000, 3000) == 5292
    assert image_tokens(own, 200, 150) < 10  # the tiny model's own fixed 56 x 56 pixels
    # An explicit resolution in processor_kwargs wins over the bounds.
    sized = load_processor(qwen, min_pixels=PAPER_MIN_PIXELS, max_pixels=PAPER_MAX_PIXELS,
                           processor_kwargs={"size": {"shortest_edge": 3136, "longest_edge": 3136}})
    assert image_tokens(sized, 200, 150) == image_tokens(own, 200, 150)
    # LLaVA's CLIP processor resizes to its fixed size: the bounds do not apply to it.
    llava = load_processor(tiny_vlm_paths["llava"], min_pixels=PAPER_MIN_PIXELS, max_pixels=PAPER_MAX_PIXELS)
    assert not takes_pixel_bounds(llava.image_processor)
    assert llava.image_processor.size == load_processor(tiny_vlm_paths["llava"]).image_processor.size


def test_configs_default_to_the_paper_and_check_the_bounds():
    for config in (RAPConfig(), EvalConfig()):
        assert (config.min_pixels, config.max_pixels) == (262_144, 4_194_304)
    assert RAPConfig(processor_kwargs='{"size": {"longest_edge": 10}}').processor_kwargs == {"size": {"longest_edge": 10}}
    with pytest.raises(ValueError, match="must not exceed"):
        RAPConfig(min_pixels=10, max_pixels=5)
    with pytest.raises(ValueError, match="min_pixels must be >= 1"):
        EvalConfig(min_pixels=0)
    with pytest.raises(ValueError, match="JSON object"):
        RAPConfig(processor_kwargs="{not json")


def test_scorer_scores_at_its_bounds_and_keys_its_cache_on_them(tiny_vlm_paths):
    qwen = tiny_vlm_paths["qwen2_5_vl"]
    rows = make_visual_world(12, seed=1)["train"].select(range(2))
    scorer = RAPScorer(qwen, RAPConfig(num_rollouts=1, max_new_tokens=4, compute_ace=False,
                                       compute_logit_cde=False, max_pixels=PAPER_MIN_PIXELS))
    scored = scorer.map(rows)
    assert scored["rap_error"] == [None, None]
    assert image_tokens(scorer.scoring_model.processor, 200, 150) == 352  # the bounds reached the processor
    fingerprints = {RAPScorer(qwen, RAPConfig(min_pixels=lo, max_pixels=hi)).fingerprint(rows)
                    for lo, hi in ((None, None), (PAPER_MIN_PIXELS, None), (PAPER_MIN_PIXELS, PAPER_MAX_PIXELS))}
    assert len(fingerprints) == 3


def test_a_users_processor_survives_pickling_and_enters_the_fingerprint(tiny_vlm_paths):
    qwen = tiny_vlm_paths["qwen2_5_vl"]
    rows = make_visual_world(12, seed=1)["train"].select(range(2))
    small = load_processor(qwen, processor_kwargs={"size": {"shortest_edge": 3136, "longest_edge": 3136}})
    large = load_processor(qwen, min_pixels=PAPER_MIN_PIXELS, max_pixels=PAPER_MAX_PIXELS)
    scorer = RAPScorer(qwen, RAPConfig(), processor=large)
    assert scorer.fingerprint(rows) != RAPScorer(qwen, RAPConfig(), processor=small).fingerprint(rows)
    assert scorer.fingerprint(rows) == RAPScorer(qwen, RAPConfig(), processor=large).fingerprint(rows)
    clone = pickle.loads(pickle.dumps(scorer))
    assert clone.scoring_model.model is None  # the model travels as its folder ...
    assert image_tokens(clone.scoring_model.processor, 200, 150) == 352  # ... the user's processor as it is
    assert clone.fingerprint(rows) == scorer.fingerprint(rows)


def test_sharded_scoring_records_the_bounds_and_refuses_to_mix_them(tiny_vlm_paths, tmp_path, capsys):
    rows = tmp_path / "rows"
    make_visual_world(10, seed=2)["train"].select(range(4)).save_to_disk(str(rows))
    out = tmp_path / "scored"
    base = ["score", "--model", str(tiny_vlm_paths["qwen2_5_vl"]), "--dataset", str(rows), "--output", str(out),
            "--num-rollouts", "1", "--max-new-tokens", "4", "--no-compute-ace", "--no-compute-logit-cde",
            "--shard-rows", "2", "--keep-shards", "--min-pixels", "none"]
    assert main([*base, "--max-pixels", "none"]) == 0
    manifest = (out.with_name("scored.shards") / "manifest.json").read_text()
    assert '"max_pixels": null' in manifest and '"min_pixels": null' in manifest
    capsys.readouterr()
    assert main([*base, "--max-pixels", str(PAPER_MAX_PIXELS)]) == 1
    assert "max_pixels" in capsys.readouterr().err


def test_evaluation_and_training_load_the_processor_at_the_same_bounds(tiny_vlm_paths, tmp_path):
    from rap_hf import RAPGRPOConfig, RAPGRPOTrainer, evaluate_model

    qwen = tiny_vlm_paths["qwen2_5_vl"]
    rows = make_visual_world(12, seed=1)["test"].select(range(1))
    result = evaluate_model(qwen, rows, max_new_tokens=2, max_pixels=PAPER_MIN_PIXELS, show_progress=False)
    assert result.summary["generation"]["min_pixels"] == PAPER_MIN_PIXELS
    assert result.summary["generation"]["max_pixels"] == PAPER_MIN_PIXELS
    args = RAPGRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, per_device_train_batch_size=2,
                         num_generations=2, max_completion_length=4, max_steps=1, report_to=[],
                         max_pixels=PAPER_MIN_PIXELS)
    trainer = RAPGRPOTrainer(str(qwen), args, train_dataset=make_visual_world(12, seed=1)["train"].select(range(2)))
    assert image_tokens(trainer.processing_class, 200, 150) == 352
    assert trainer.processing_class.tokenizer.padding_side == "left"

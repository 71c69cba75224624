"""RAPGRPOTrainer and the RAP rewards with real TRL GRPO steps on tiny VLMs (CPU)."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from selection_helpers import hand_scored
from transformers import AutoModelForImageTextToText, AutoProcessor

from rap_hf import FORMAT_PROMPT, RAPGRPOConfig, RAPGRPOTrainer, select, to_trl
from rap_hf.rewards import rap_reward
from rap_hf.training.trainer import STATE_FILE

pytestmark = pytest.mark.slow
SCRIPTS = Path(__file__).parent / "scripts"


def _args(tmp_path, **overrides):
    values = dict(
        output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, activation_checkpointing=False, seed=0,
        per_device_train_batch_size=4, num_generations=2, max_completion_length=8, learning_rate=0.05,
        logging_steps=1, report_to=[], save_strategy="no", max_steps=2,
        min_pixels=None, max_pixels=None,  # the tiny models' own small resolution
    )
    values.update(overrides)
    return RAPGRPOConfig(**values)


def _load(path):
    return AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)


def dense_overlap(completions, answer, **kwargs):
    """A shaping reward: a random tiny model never boxes the right answer, so `rap_reward` alone is
    0 for every rollout and GRPO has no signal. This one varies, so the weights move."""
    texts = [c[0]["content"] for c in completions]
    return [len(set(t) & set(a)) / (1 + len(t)) for t, a in zip(texts, answer)]


@pytest.fixture(scope="module")
def selection(world):
    # Per 6 rows: trivial (5/5 with image), kept (4/5, text 0/5), language prior (3 vs 3), a DRM
    # replacement (1/5), unsolvable (0/5), language prior (2 vs 2).
    return select(hand_scored(world["train"], [5, 4, 3, 1, 0, 2], [0, 0, 3, 0, 0, 2]))


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "llava"])
def test_trains_from_canonical_rows_and_the_checkpoint_reloads(tiny_vlm_paths, world, tmp_path, kind, caplog):
    model, processor = _load(tiny_vlm_paths[kind])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = _args(tmp_path, save_strategy="steps", save_steps=2)
    with caplog.at_level(logging.WARNING, logger="rap_hf.training.data"):
        trainer = RAPGRPOTrainer(model, args, train_dataset=world["train"].select(range(8)),
                                 reward_funcs=[rap_reward, dense_overlap], processing_class=processor)
    assert "carries no RAP decisions" in caplog.text
    assert trainer.train_dataset[0]["prompt"][0]["content"].endswith(FORMAT_PROMPT)
    trainer.train()

    assert trainer.state.global_step == 2
    assert {"rewards/rap_reward/mean", "rewards/dense_overlap/mean"} <= set(trainer.state.log_history[0])
    checkpoint = tmp_path / "out" / "checkpoint-2"
    reloaded = AutoModelForImageTextToText.from_pretrained(checkpoint)
    AutoProcessor.from_pretrained(checkpoint)
    trained = dict(reloaded.named_parameters())
    assert any(not torch.equal(before[name], trained[name]) for name in before)
    assert any("vision" in name or "visual" in name for name in before
               if not torch.equal(before[name], trained[name])), "the vision tower must get gradients"


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "llava"])
def test_trains_from_a_selection_on_its_kept_rows_only(tiny_vlm_paths, selection, tmp_path, kind):
    # The model given by path: TRL loads it, as a user would from the Hub. Default reward: the paper's.
    default = RAPGRPOTrainer(tiny_vlm_paths[kind], _args(tmp_path), train_dataset=selection)
    assert default.reward_funcs == [rap_reward] and len(default.train_dataset) == selection.report.kept

    seen_ids = []

    def spy(completions, rap_id, rap_reason, **kwargs):
        seen_ids.extend(rap_id)
        assert set(rap_reason) <= {"kept", "kept_replacement"}
        return [0.0] * len(completions)

    trainer = RAPGRPOTrainer(tiny_vlm_paths[kind], _args(tmp_path), train_dataset=selection,
                             reward_funcs=[rap_reward, spy])
    trainer.train()
    assert trainer.state.global_step == 2 and len(seen_ids) == 2 * 4
    assert set(seen_ids) <= set(selection.dataset["rap_id"])
    assert "rewards/rap_reward/mean" in trainer.state.log_history[0]


def test_stock_grpo_trainer_trains_with_rap_reward(tiny_vlm_paths, world, tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    model, processor = _load(tiny_vlm_paths["qwen2_5_vl"])
    args = GRPOConfig(**{k: v for k, v in _args(tmp_path).to_dict().items()
                         if k in ("output_dir", "use_cpu", "bf16", "activation_checkpointing", "seed", "num_generations",
                                  "per_device_train_batch_size", "max_completion_length", "learning_rate",
                                  "logging_steps", "report_to", "save_strategy", "max_steps")})
    trainer = GRPOTrainer(model=model, reward_funcs=rap_reward, args=args, processing_class=processor,
                          train_dataset=to_trl(world["train"].select(range(8))))
    trainer.train()
    logged = trainer.state.log_history[0]
    assert trainer.state.global_step == 2 and 0.0 <= logged["rewards/rap_reward/mean"] <= 1.0


def test_trl_rows_are_trained_as_given(tiny_vlm_paths, world, tmp_path):
    rows = to_trl(world["train"].select(range(4)), format_prompt="Answer in \\boxed{}.")
    trainer = RAPGRPOTrainer(tiny_vlm_paths["llava"], _args(tmp_path), train_dataset=rows)
    assert trainer.train_dataset["prompt"] == rows["prompt"]  # no second format prompt
    with pytest.raises(ValueError, match="no `answer` column"):
        RAPGRPOTrainer(tiny_vlm_paths["llava"], _args(tmp_path), train_dataset=rows.remove_columns("answer"))


def test_a_stream_of_trl_rows_trains(tiny_vlm_paths, world, tmp_path, caplog):
    stream = to_trl(world["train"].select(range(8))).to_iterable_dataset()
    with caplog.at_level(logging.WARNING, logger="rap_hf.training.data"):
        trainer = RAPGRPOTrainer(tiny_vlm_paths["qwen2_5_vl"], _args(tmp_path), train_dataset=stream)
    assert "is streamed" in caplog.text
    trainer.train()
    assert trainer.state.global_step == 2
    with pytest.raises(TypeError, match="random access"):
        RAPGRPOTrainer(tiny_vlm_paths["qwen2_5_vl"], _args(tmp_path), train_dataset=stream,
                       replacement_pool=world["train"].select(range(8, 12)))


def test_bad_training_data_is_refused_with_the_rows_named(tiny_vlm_paths, world, selection, tmp_path):
    model = tiny_vlm_paths["qwen2_5_vl"]  # never loaded: the checks come first
    rows = world["train"].select(range(4)).to_dict()
    rows["answer"][2] = " "
    no_answer = type(world["train"]).from_dict(rows, features=world["train"].features)
    with pytest.raises(ValueError, match=f"no ground-truth answer \\({rows['rap_id'][2]}\\)"):
        RAPGRPOTrainer(model, _args(tmp_path), train_dataset=no_answer)
    with pytest.raises(ValueError, match="selection.decisions"):
        RAPGRPOTrainer(model, _args(tmp_path), train_dataset=selection.decisions)
    with pytest.raises(ValueError, match="replacement_reward='oracle'"):
        RAPGRPOTrainer(model, _args(tmp_path, replacement_reward="oracle"), train_dataset=selection,
                       replacement_pool=selection)


# ------------------------------------------------------------------ online replacement
def _replacement_run(tiny_vlm_paths, world, out, *, epochs=3, resume=None):
    """4 training rows, pool rows with known difficulty, and an oracle reward: row `solved` is
    always right, the others half right. Returns (trainer, rap_ids seen per generation)."""
    train = world["train"].select(range(4))
    pool = world["train"].select(range(4, 8))
    pool = pool.add_column("rap_difficulty", [0.2, 0.8, 0.4, 0.6])
    solved = train[1]["rap_id"]
    calls = []

    def oracle(completions, rap_id, **kwargs):
        calls.append(list(rap_id))
        return [1.0 if rid == solved else float(i % 2) for i, rid in enumerate(rap_id)]

    model, processor = _load(tiny_vlm_paths["qwen2_5_vl"])
    args = _args(out, max_steps=-1, num_train_epochs=epochs, save_strategy="epoch", replacement_reward="oracle")
    trainer = RAPGRPOTrainer(model, args, train_dataset=train, reward_funcs=oracle, replacement_pool=pool,
                             processing_class=processor)
    trainer.train(resume_from_checkpoint=resume)
    return trainer, calls, solved, pool


def test_a_solved_group_is_replaced_by_the_hardest_pool_row_next_epoch(tiny_vlm_paths, world, tmp_path):
    trainer, calls, solved, pool = _replacement_run(tiny_vlm_paths, world, tmp_path)
    # 4 rows, 2 prompts per generation: 2 generations per epoch.
    epochs = [sorted(set(calls[i] + calls[i + 1])) for i in range(0, 6, 2)]
    hardest = pool[1]["rap_id"]  # difficulty 0.8
    assert solved in epochs[0] and hardest not in epochs[0]
    assert solved not in epochs[1] and hardest in epochs[1] and solved not in epochs[2]
    assert len(epochs[1]) == 4  # the epoch keeps its size

    sampler = trainer.replacement_sampler
    assert [(h["epoch"], h["why"]) for h in sampler.history] == [(1, "solved")]
    logs = trainer.state.log_history
    # TRL's own count of groups without signal sees the solved group (second prompt pair of epoch 0).
    assert [log["frac_reward_zero_std"] for log in logs[:2]] == [0.0, 0.5]
    assert [log["rap/replaced"] for log in logs[:6]] == [0, 0, 1, 1, 1, 1]
    assert [log["rap/pool_left"] for log in logs[:6]] == [4, 4, 3, 3, 3, 3]
    state = json.loads((tmp_path / "out" / "checkpoint-4" / STATE_FILE).read_text())
    assert state["replaced"] == 1 and state["epoch"] == 1


def test_resuming_restores_the_replacement_state(tiny_vlm_paths, world, tmp_path):
    full, full_calls, _, _ = _replacement_run(tiny_vlm_paths, world, tmp_path / "full")
    # Resume from the end of epoch 0: the outcomes saved with the checkpoint still trigger the swap.
    first, _, _, _ = _replacement_run(tiny_vlm_paths, world, tmp_path / "cut", epochs=1)
    checkpoint = str(tmp_path / "cut" / "out" / "checkpoint-2")
    assert json.loads(Path(checkpoint, STATE_FILE).read_text())["replaced"] == 0
    resumed, resumed_calls, _, _ = _replacement_run(tiny_vlm_paths, world, tmp_path / "cut", resume=checkpoint)
    assert resumed.replacement_sampler.history == full.replacement_sampler.history
    assert resumed_calls == full_calls[2:]
    # Other rows of the same size: the saved slots would point at the wrong rows, so it refuses.
    other = world["train"].select(range(10, 14))
    trainer = RAPGRPOTrainer(tiny_vlm_paths["qwen2_5_vl"], _args(tmp_path / "cut", max_steps=-1, num_train_epochs=3),
                             train_dataset=other, replacement_pool=world["train"].select(range(4, 8)))
    with pytest.raises(ValueError, match="other training rows"):
        trainer.train(resume_from_checkpoint=checkpoint)


def test_two_processes_gather_outcomes_and_swap_alike(tiny_vlm_paths, tmp_path):
    """torchrun, 2 CPU processes, each group split across both ranks: rank 0 sees only right
    answers for the `mixed` row, rank 1 only wrong ones. Only the gathered outcomes say the truth."""
    out = tmp_path / "ranks"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(SCRIPTS / "replacement_two_ranks.py"), tiny_vlm_paths["qwen2_5_vl"], str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == 2
    assert ranks[0]["history"] == ranks[1]["history"] and ranks[0]["slots"] == ranks[1]["slots"]
    assert [(h["old"], h["why"]) for h in ranks[0]["history"]] == [(ranks[0]["solved_index"], "solved")]
    new = ranks[0]["history"][0]["new"]
    for rank in ranks:
        assert rank["seen"][1].count(new) > 0 and ranks[0]["solved_index"] not in rank["seen"][1]


def test_trains_a_lora_adapter_through_trl_peft_support(tiny_vlm_paths, selection, tmp_path):
    """PEFT goes through TRL untouched: only the LoRA weights train, and the saved adapter loads."""
    from peft import LoraConfig, PeftModel

    model, processor = _load(tiny_vlm_paths["qwen2_5_vl"])
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = RAPGRPOTrainer(model, _args(tmp_path), train_dataset=selection, replacement_pool=selection,
                             reward_funcs=[rap_reward, dense_overlap], processing_class=processor, peft_config=lora)
    assert isinstance(trainer.model, PeftModel)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters() if "lora_B" in n)
    trainer.save_model(str(tmp_path / "adapter"))
    reloaded = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(tiny_vlm_paths["qwen2_5_vl"]),
                                         str(tmp_path / "adapter"))
    assert any("lora_A" in n for n, _ in reloaded.named_parameters())


def test_replacement_pool_is_the_left_out_rows_with_signal(selection):
    pool = selection.replacement_pool()
    assert set(pool["rap_reason"]) == {"language_prior"} and not any(pool["rap_keep"])
    assert all(0 < d < 1 for d in pool["rap_difficulty"]) and len(pool) == 16
    # Scores without rap_difficulty (hand-made, or older): derived from the image rollouts.
    bare = selection.decisions.remove_columns("rap_difficulty")
    from rap_hf.selection import replacement_pool_rows

    derived = replacement_pool_rows(bare)
    assert derived["rap_id"] == pool["rap_id"] and derived["rap_difficulty"] == pytest.approx(pool["rap_difficulty"])


def test_replacement_pool_leaves_out_rows_that_ace_flags(world):
    scored = hand_scored(world["train"], [5, 4, 3, 1, 0, 2], [0, 0, 3, 0, 0, 2])
    # psi = 0.5 > lambda_a = 0.1 on the 3-vs-3 language-prior rows: pool material
    # if ACE is off, but DRM never adds flagged rows, so neither may the pool.
    scored = scored.remove_columns("rap_ace").add_column(
        "rap_ace", [float(np.log(0.5)) if i % 6 == 2 else -50.0 for i in range(len(scored))])
    selection = select(scored)
    flagged = {rid for i, rid in enumerate(scored["rap_id"]) if i % 6 == 2}
    pool = selection.replacement_pool()
    assert len(pool) > 0 and not flagged & set(pool["rap_id"])
    assert flagged & set(select(scored, use_ace=False).replacement_pool()["rap_id"])  # ACE off: they may come


def test_outcome_recorder_reads_accuracy_from_rap_reward_or_grades_it():
    from rap_hf.rewards import accuracy_reward
    from rap_hf.training.trainer import OutcomeRecorder, _with_recorder

    completions = [[{"role": "assistant", "content": text}] for text in
                   ("<think>x</think> \\boxed{red}", "\\boxed{red}", "<think>x</think> \\boxed{blue}", "nothing")]
    call = dict(prompts=[[]] * 4, completions=completions, completion_ids=[[1]] * 4, answer=["red"] * 4,
                rap_train_index=[0, 0, 1, 1])
    expected = [(0, 1.0), (0, 1.0), (1, 0.0), (1, 0.0)]
    wrapped, recorder = _with_recorder([rap_reward], "accuracy_reward")
    assert wrapped[0].__name__ == "rap_reward" and wrapped[0](**call) == pytest.approx([1.0, 0.9, 0.1, 0.0])
    assert recorder.take() == expected and recorder.take() == []

    def custom(completions, **kwargs):
        return [0.5] * len(completions)

    _, graded = _with_recorder([custom], "accuracy_reward")  # no accuracy reward: graded on the side
    graded(**call)
    assert graded.take() == expected
    _, named = _with_recorder([custom, accuracy_reward], "custom")  # a named reward is read as it is
    named(**call)
    assert named.take() == [(0, 0.5), (0, 0.5), (1, 0.5), (1, 0.5)]
    assert isinstance(named, OutcomeRecorder)
    named(**{**call, "rap_train_index": None})  # evaluation rows: nothing recorded
    assert named.take() == []

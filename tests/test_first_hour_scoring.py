"""A new user's mistakes with `rap-hf score`, met as they meet them: one line each, no dead ends."""

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from rap_hf import RAPConfig, RAPScorer
from rap_hf.cli import main
from rap_hf.data.synthetic import make_visual_world

# The tiny model's own small resolution: the paper's pixel bounds would only make these runs slower.
FLAGS = ["--num-rollouts", "2", "--max-new-tokens", "6", "--no-compute-ace", "--no-compute-logit-cde",
         "--min-pixels", "none", "--max-pixels", "none", "--device", "cpu"]


@pytest.fixture(scope="module")
def rows_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rows") / "rows"
    make_visual_world(20, seed=7)["train"].select(range(8)).save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="module")
def text_only_model(tmp_path_factory):
    """A text-only checkpoint (a tiny Llama), the model a user may pick by mistake."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("text-only")
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def _score(model, rows_dir, out, *extra):
    return main(["score", "--model", str(model), "--dataset", str(rows_dir), "--output", str(out), *FLAGS, *extra])


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and "Traceback" not in err, err
    return lines[-1]


def test_a_text_only_model_is_named_as_such_and_the_corrected_run_is_not_refused(text_only_model, tiny_vlm_paths,
                                                                                 rows_dir, tmp_path, capsys):
    out = tmp_path / "scored"
    assert _score(text_only_model, rows_dir, out) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"rap-hf score: error: {text_only_model} is a llama model, not a vision-language model")
    assert "Qwen2.5-VL" in line and "Unrecognized configuration class" not in line
    # Nothing was written, so the corrected command runs without --overwrite.
    assert not out.exists() and not out.with_name("scored.shards").exists()
    assert _score(tiny_vlm_paths["qwen2_5_vl"], rows_dir, out) == 0
    with pytest.raises(ValueError, match="not a vision-language model"):
        RAPScorer(str(text_only_model), RAPConfig(**{"num_rollouts": 1}))(make_visual_world(4, seed=1)["train"][:1])


def test_a_gpu_that_is_not_there_is_one_line_and_leaves_nothing(tiny_vlm_paths, rows_dir, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "scored"
    assert _score(tiny_vlm_paths["qwen2_5_vl"], rows_dir, out, "--device", "cuda") == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line == ("rap-hf score: error: device 'cuda': torch sees no CUDA GPU on this machine; use --device cpu "
                    "(device='cpu'), or leave the device out to use a GPU only when there is one")
    assert not out.with_name("scored.shards").exists()
    assert _score(tiny_vlm_paths["qwen2_5_vl"], rows_dir, out) == 0


def test_ctrl_c_keeps_the_finished_shards_says_so_in_one_line_and_the_same_command_resumes(tiny_vlm_paths, rows_dir,
                                                                                           tmp_path):
    out = tmp_path / "scored"
    command = [sys.executable, "-m", "rap_hf", "score", "--model", str(tiny_vlm_paths["qwen2_5_vl"]),
               "--dataset", str(rows_dir), "--output", str(out), *FLAGS, "--shard-rows", "1", "--map-batch-size", "1",
               # 16 rollouts: the random model often stops at once; at 4 the 8 rows took 1.5 s, which a busy
               # machine can finish between the first shard and the interrupt.
               "--num-rollouts", "16", "--max-new-tokens", "24"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shards = out.with_name("scored.shards")
    deadline = time.monotonic() + 240
    while not list(shards.glob("shard-*.arrow")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    last = _one_error_line(err)
    safe = len(list(shards.glob("shard-*.json")))  # finished: a shard with its record
    # One process scores its 1-row shards in order: the first `safe` are finished, the rest still to score.
    assert sorted(p.name for p in shards.glob("shard-*.json")) == [f"shard-{i:05d}-of-00008.json" for i in range(safe)]
    left = "shard 7 (1 row)" if safe == 7 else f"shards {safe}-7 ({8 - safe} rows)"
    assert last == (f"rap-hf score: interrupted; {safe} of 8 rows are scored and safe in {shards} ({left} still to "
                    "score): run the same command to resume")
    assert 1 <= safe < 8
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"{8 - safe} scored in this run, {safe} from earlier shards" in finished.stdout


def test_the_papers_settings_on_a_cpu_say_once_how_to_try_things_quickly(tiny_vlm_paths, caplog, monkeypatch):
    import rap_hf.scoring.scorer as scorer_module

    monkeypatch.setattr(scorer_module, "_WARNED_CPU", False)
    rows = make_visual_world(6, seed=3)["train"]
    row = {**rows[0], "rap_responses_image": ["<think>x</think> \\boxed{red}"]}
    with caplog.at_level(logging.WARNING, logger="rap_hf.scoring.scorer"):
        RAPScorer(tiny_vlm_paths["qwen2_5_vl"], RAPConfig(min_pixels=None, max_pixels=None)).explain_attention(row)
        RAPScorer(tiny_vlm_paths["qwen2_vl"], RAPConfig(min_pixels=None, max_pixels=None)).explain_attention(row)
    hints = [r.getMessage() for r in caplog.records if "--num-rollouts 2 --max-new-tokens 64" in r.getMessage()]
    assert len(hints) == 1 and "5 rollouts per condition of up to 2048 new tokens" in hints[0]

"""Sharded, resumable scoring (`rap-hf score`): one process, two under `accelerate launch`, resume."""

import json
import shutil
import signal
import subprocess
import sys
import time

from datasets import load_from_disk
from distributed_helpers import (  # noqa: F401  (fixtures)
    model,
    one_thread,
    rows_dir,
    single,
)
from distributed_helpers import assert_same_rows as _assert_same_rows
from distributed_helpers import score_args as _score_args
from distributed_helpers import shard_files as _shard_files
from distributed_helpers import subprocess_env as _subprocess_env

from rap_hf import RAPConfig, RAPScorer
from rap_hf.cli import main
from rap_hf.rollouts.sampling import SAMPLER_NAME


def _score_on_two_ranks(model, rows_dir, out) -> subprocess.CompletedProcess:
    """`rap-hf score` on two CPU ranks under `accelerate launch --multi_gpu`; asserts it succeeded."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(port), "-m", "rap_hf", *_score_args(model, rows_dir, out, "--keep-shards")]
    result = subprocess.run(command, env=_subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_one_process_writes_shards_and_merges_like_a_plain_map(single, model, rows_dir, capsys):
    assert sorted(_shard_files(single)) == [f"shard-{i:05d}-of-00004.arrow" for i in range(4)]
    merged = load_from_disk(str(single))
    rows = load_from_disk(str(rows_dir))
    config = RAPConfig(num_rollouts=2, max_new_tokens=6, compute_ace=False, device="cpu", min_pixels=3136,
                       max_pixels=3136)
    _assert_same_rows(merged, RAPScorer(model, config).map(rows, batch_size=2))
    # A re-run of the finished command has nothing to do, and says so in its final line.
    assert main(_score_args(model, rows_dir, single)) == 0
    assert "Scored 8 rows (0 with rap_error)" in capsys.readouterr().out


def test_two_processes_under_accelerate_launch(single, model, rows_dir, tmp_path):
    """On a CPU-only machine `accelerate launch --cpu --num_processes 2` starts one process; the
    multi-process launcher (`--multi_gpu`, torchrun underneath) starts two, and the scorer's
    `PartialState(cpu=True)` joins them into one gloo group."""
    out = tmp_path / "scored"
    result = _score_on_two_ranks(model, rows_dir, out)
    # Both ranks scored their half of the shards, with their own progress bar.
    assert "rank 0/2: scored 4 rows" in result.stderr and "rank 1/2: scored 4 rows" in result.stderr
    assert result.stdout.count("Scored 8 rows (0 with rap_error)") == 1  # one final line, from rank 0
    assert len(_shard_files(out)) == 4
    _assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))
    # Both ranks scored at the bounds the command gave, and the manifest records them for a resume.
    config = json.loads((out.with_name("scored.shards") / "manifest.json").read_text())["config"]
    assert (config["min_pixels"], config["max_pixels"]) == (3136, 3136)


def test_killed_run_resumes_without_rewriting_finished_shards(single, model, rows_dir, tmp_path):
    out = tmp_path / "scored"
    shards = out.with_name("scored.shards")
    log = (tmp_path / "log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "rap_hf", *_score_args(model, rows_dir, out, "--keep-shards")],
                               env=_subprocess_env(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not list(shards.glob("shard-*.json")):
        assert process.poll() is None, (tmp_path / "log").read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _shard_files(out)
    assert 1 <= len(before) < 4 and not out.exists()

    assert main(_score_args(model, rows_dir, out, "--keep-shards")) == 0
    after = _shard_files(out)
    assert len(after) == 4
    assert all(after[name] == kept for name, kept in before.items())  # same bytes, same mtime
    # No leftovers: the manifest, the lock, and each shard with its record.
    records = [name.replace(".arrow", ".json") for name in after]
    assert sorted(p.name for p in shards.iterdir()) == sorted(["manifest.json", "run.lock", *after, *records])
    _assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))


def test_lost_shards_are_redone_by_local_workers_and_the_others_are_untouched(single, model, rows_dir, tmp_path,
                                                                            capsys):
    out = tmp_path / "scored"
    assert main(_score_args(model, rows_dir, out, "--keep-shards")) == 0
    # Lost before the merge: the output is gone and two shards with it.
    shutil.rmtree(out)
    shards = out.with_name("scored.shards")
    lost = [shards / f"shard-0000{i}-of-00004.arrow" for i in (1, 2)]
    for path in lost:
        path.unlink()
    before = _shard_files(out)
    capsys.readouterr()
    # --num-proc 2: two spawned workers, one lost shard each.
    assert main(_score_args(model, rows_dir, out, "--keep-shards", "--num-proc", "2")) == 0
    assert "4 scored in this run, 4 from earlier shards" in capsys.readouterr().out
    after = _shard_files(out)
    assert all(p.exists() for p in lost) and {n: v for n, v in after.items() if n in before} == before
    _assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))


def test_fewer_missing_shards_than_ranks(single, model, rows_dir, tmp_path):
    """A resumed run usually has fewer missing shards than ranks: with one shard left and two ranks, the
    idle rank waits and exits cleanly, and the output has every row once, in input order."""
    from rap_hf.distributed import split_by_node as _split_by_node

    for count in range(7):
        for world_size in (1, 2, 3, 5):
            blocks = [_split_by_node(list(range(count)), rank, world_size) for rank in range(world_size)]
            assert sum(blocks, []) == list(range(count))  # contiguous, in order, each shard once
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    out = tmp_path / "scored"
    assert main(_score_args(model, rows_dir, out, "--keep-shards")) == 0
    shutil.rmtree(out)
    (out.with_name("scored.shards") / "shard-00003-of-00004.arrow").unlink()
    result = _score_on_two_ranks(model, rows_dir, out)
    assert "rank 0/2: 1 of 1 missing shards (2 rows)" in result.stderr
    assert "rank 1/2: 0 of 1 missing shards (0 rows)" in result.stderr
    assert "2 scored in this run, 6 from earlier shards" in result.stdout
    _assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))


def test_resuming_with_other_settings_is_refused(single, model, tiny_vlm_paths, rows_dir, tmp_path, capsys):
    # A finished output.
    assert main([*_score_args(model, rows_dir, single), "--num-rollouts", "3"]) == 1
    err = capsys.readouterr().err
    assert "num_rollouts: 2 then, 3 now" in err and "--overwrite" in err
    # Unfinished shards: another model, another shard size.
    out = tmp_path / "scored"
    shards = out.with_name("scored.shards")
    shards.mkdir()
    (shards / "manifest.json").write_bytes((single.with_name("scored.shards") / "manifest.json").read_bytes())
    assert main(_score_args(str(tiny_vlm_paths["llava"]), rows_dir, out)) == 1
    assert f"model: {model} then, {tiny_vlm_paths['llava']} now" in capsys.readouterr().err
    assert main([*_score_args(model, rows_dir, out), "--shard-rows", "3"]) == 1
    assert "--shard-rows: 2 then, 3 now" in capsys.readouterr().err
    # Shards drawn by another rollout sampler (an older rap-hf) are not mixed with this one's.
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["sampler"] == SAMPLER_NAME
    (shards / "manifest.json").write_text(json.dumps({**manifest, "sampler": "gumbel-splitmix64"}))
    assert main(_score_args(model, rows_dir, out)) == 1
    assert f"sampler: gumbel-splitmix64 then, {SAMPLER_NAME} now" in capsys.readouterr().err
    (shards / "manifest.json").write_text(json.dumps(manifest))
    # Other input rows.
    other = tmp_path / "other_rows"
    load_from_disk(str(rows_dir)).select(range(6)).save_to_disk(str(other))
    assert main(_score_args(model, other, out)) == 1
    assert "input rows: 8 then, 6 now" in capsys.readouterr().err
    # A folder that is not a scoring output is never overwritten unasked.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(_score_args(model, rows_dir, foreign)) == 1
    assert "was not written by sharded scoring" in capsys.readouterr().err
    # --overwrite starts afresh with the new settings.
    assert main([*_score_args(model, rows_dir, out), "--num-rollouts", "3", "--overwrite"]) == 0
    assert all(len(flags) == 3 for flags in load_from_disk(str(out))["rap_image_correct"])
    assert not shards.exists()  # merged, so removed (no --keep-shards)


def test_errors_are_reported_by_reason_and_a_run_where_every_row_failed_exits_1(model, tmp_path, capsys):
    from datasets import load_from_disk

    from rap_hf.data.schema import images_feature
    from rap_hf.data.synthetic import make_visual_world

    rows = make_visual_world(12, seed=5)["train"].select(range(6)).cast_column("images", images_feature())
    corrupt = {0: {"images": [{"bytes": b"not a picture", "path": None}]}, 1: {"answer": ""}, 2: {"answer": ""}}
    mixed = rows.map(lambda row, i: corrupt.get(i, {}), with_indices=True)
    mixed.save_to_disk(str(tmp_path / "mixed"))
    assert main(_score_args(model, tmp_path / "mixed", tmp_path / "mixed-out")) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-3].startswith("Scored 6 rows (3 with rap_error)")
    assert printed[-2].startswith("  2 row(s): empty answer: the row has no ground truth to grade against (e.g. row ")
    assert printed[-2].endswith("; map the answer column with --answer (or fill in the answers)")
    assert printed[-1].startswith("  1 row(s): Image N of row '…' could not be decoded: UnidentifiedImageError")

    rows.map(lambda row: {"answer": ""}).save_to_disk(str(tmp_path / "no-answers"))
    out = tmp_path / "no-answers-out"
    assert main(_score_args(model, tmp_path / "no-answers", out)) == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == ("Every row failed, so nothing was scored: map the answer column with --answer (or fill in "
                           "the answers); then run the same command with --overwrite.")
    assert len(load_from_disk(str(out))) == 6  # every row is still accounted for, with its rap_error

"""Sharded scoring under the faults a long GPU job meets, each one injected: more ranks than rows, a
rank or worker killed mid-run, damaged shards, two runs on one output, a merge that was killed, and a
Ray worker killed mid-task. After each, the same command ends with the output a clean run gives
(tests/test_distributed.py holds the clean runs), and every exit status means what docs/scoring-at-scale.md says."""

import os
import shutil
import socket
import subprocess
import sys

import pytest
from datasets import load_from_disk
from distributed_helpers import (  # noqa: F401  (fixtures)
    model,
    one_thread,
    rows_dir,
    single,
)
from distributed_helpers import (
    assert_same_rows,
    has_env,
    processes_of,
    record_exists,
    score_args,
    shard_dir,
    shard_files,
    subprocess_env,
    torchrun,
    wait_for,
)

from rap_hf import RAPConfig, RAPScorer
from rap_hf.cli import EXIT_BUSY, EXIT_INCOMPLETE, main
from rap_hf.distributed import IncompleteRun, OutputBusy, ShardedScoring
from rap_hf.distributed.lock import OutputLock

# The scoring settings of distributed_helpers.FLAGS, as a config.
CONFIG = dict(num_rollouts=2, max_new_tokens=6, compute_ace=False, device="cpu", min_pixels=3136, max_pixels=3136)


def _described(indices: list[int], rows_per_shard: int = 2) -> str:
    """How the command names shards: `shards 1, 3-5 (8 rows)`."""
    spans: list[list[int]] = []
    for i in sorted(indices):
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    numbers = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    rows = rows_per_shard * len(indices)
    return f"shard{'s' if len(indices) > 1 else ''} {numbers} ({rows} row{'s' if rows > 1 else ''})"


def _finished(out, count: int = 4) -> list[int]:
    return [i for i in range(count) if record_exists(out, i, count)()]


def _popen(args, log):
    return subprocess.Popen(args, env=subprocess_env(), stdout=log.open("w"), stderr=subprocess.STDOUT)


# ------------------------------------------------------------------ ranks
def test_more_ranks_than_rows_leaves_the_extra_ranks_idle(model, world, tmp_path):
    rows = tmp_path / "two-rows"
    world["train"].select(range(2)).save_to_disk(str(rows))
    out, reference = tmp_path / "scored", tmp_path / "reference"
    assert main([*score_args(model, rows, reference), "--shard-rows", "1"]) == 0
    result = subprocess.run(torchrun(3, [*score_args(model, rows, out), "--shard-rows", "1"]), env=subprocess_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 2/3: 0 of 2 missing shards (0 rows)" in result.stderr
    assert "Scored 2 rows (0 with rap_error)" in result.stdout
    assert_same_rows(load_from_disk(str(out)), load_from_disk(str(reference)))


def test_a_merge_that_was_killed_is_done_by_the_next_run_with_no_shard_missing(single, model, rows_dir, tmp_path):
    """Zero missing shards, two ranks: what a kill during the merge leaves (every shard finished, a
    half-written merge folder beside OUT, no OUT) is merged by the next run, which loads no model."""
    out = tmp_path / "scored"
    shutil.copytree(shard_dir(single), shard_dir(out))
    half = tmp_path / ".scored.merging-4242"
    half.mkdir()
    (half / "data-00000-of-00001.arrow").write_bytes(b"\0" * 100)
    result = subprocess.run(torchrun(2, score_args(model, rows_dir, out)), env=subprocess_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 scored in this run, 8 from earlier shards" in result.stdout
    assert not half.exists() and not shard_dir(out).exists()
    assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))


def test_a_rank_killed_mid_run_exits_non_zero_naming_the_missing_shards_and_the_same_command_resumes(
        single, model, rows_dir, tmp_path, capsys):
    out, log = tmp_path / "scored", tmp_path / "log"
    args = score_args(model, rows_dir, out, "--keep-shards")
    process = _popen(torchrun(2, args), log)
    # Rank 1 takes shards 2 and 3: it is killed once shard 2 is finished, while it scores shard 3.
    rank_1 = wait_for(lambda: processes_of(process.pid, has_env("RANK", "1")), process, log)
    wait_for(record_exists(out, 2), process, log)
    for p in rank_1:
        p.kill()
    assert process.wait(timeout=120) != 0
    missing = [i for i in range(4) if i not in _finished(out)]
    assert 3 in missing
    # torchrun stops the other rank (SIGTERM); rank 0 says what is safe and what is left.
    assert (f"rap-hf score: stopped by SIGTERM; {8 - 2 * len(missing)} of 8 rows are scored and safe in "
            f"{shard_dir(out)} ({_described(missing)} still to score): run the same command to resume") in log.read_text()
    before = shard_files(out)

    capsys.readouterr()
    assert main(args) == 0
    assert f"{2 * len(missing)} scored in this run, {8 - 2 * len(missing)} from earlier shards" in capsys.readouterr().out
    after = shard_files(out)
    assert all(after[name] == kept for name, kept in before.items())  # finished shards: same bytes, same mtime
    assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))


def test_a_local_worker_killed_mid_run_lets_the_others_finish_then_exits_3(single, model, rows_dir, tmp_path, capsys):
    out, log = tmp_path / "scored", tmp_path / "log"
    args = score_args(model, rows_dir, out, "--keep-shards", "--num-proc", "2")
    process = _popen([sys.executable, "-m", "rap_hf", *args], log)
    workers = wait_for(lambda: len(found := processes_of(
        process.pid, lambda p: "spawn_main" in " ".join(p.cmdline()))) == 2 and found, process, log)
    worker_1 = max(workers, key=lambda p: p.pid)  # started second: rank 1, shards 2 and 3
    wait_for(record_exists(out, 2), process, log)
    worker_1.kill()
    assert process.wait(timeout=180) == EXIT_INCOMPLETE, log.read_text()[-3000:]
    assert _finished(out) == [0, 1, 2]  # worker 0 finished both of its shards
    assert (f"rap-hf score: shard 3 (2 rows) of 4 are missing: worker 1 was killed by SIGKILL; the other workers "
            f"finished theirs. Finished shards are kept in {shard_dir(out)}: run the same command to score only the "
            "missing ones.") in log.read_text()
    capsys.readouterr()
    assert main(args) == 0
    assert "2 scored in this run, 6 from earlier shards" in capsys.readouterr().out
    assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))


def test_local_workers_that_cannot_start_end_in_one_line_with_status_1(model, rows_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "scored"
    result = subprocess.run([sys.executable, "-m", "rap_hf", *score_args(model, rows_dir, out, "--num-proc", "2"),
                             "--device", "cuda"], env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        "rap-hf score: error: worker 0 failed: ValueError: device 'cuda': torch sees no CUDA GPU on this machine")
    assert not shard_dir(out).exists() and not out.exists()


# ------------------------------------------------------------------ damaged shards
def test_damaged_shards_are_found_before_merging_and_scored_again(single, model, rows_dir, tmp_path, capsys):
    other = tmp_path / "other-settings"
    assert main([*score_args(model, rows_dir, other, "--keep-shards"), "--max-new-tokens", "5"]) == 0
    out = tmp_path / "scored"
    shards = shard_dir(out)
    shutil.copytree(shard_dir(single), shards)

    def path(index: int, suffix: str):
        return shards / f"shard-{index:05d}-of-00004.{suffix}"

    size = path(0, "arrow").stat().st_size
    path(0, "arrow").write_bytes(path(0, "arrow").read_bytes()[: size // 2])  # truncated
    data = bytearray(path(1, "arrow").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped, same size
    path(1, "arrow").write_bytes(bytes(data))
    for suffix in ("arrow", "json"):  # a shard of a run with other settings, copied in with its record
        shutil.copyfile(shard_dir(other) / path(2, suffix).name, path(2, suffix))
    path(3, "json").unlink()  # renamed into place, but killed before its record was written
    (shards / ".tmp-shard-00003-of-00004-4242.arrow").write_bytes(b"what a killed rank leaves")
    capsys.readouterr()

    assert main(score_args(model, rows_dir, out, "--keep-shards")) == 0
    captured = capsys.readouterr()
    for index, why in [(0, f"truncated: {size // 2} bytes, {size} when written"), (1, "corrupted: its checksum differs"),
                       (2, "scored with other settings than this run's"), (3, "no record beside it")]:
        assert f"Shard {index} (rows {2 * index}-{2 * index + 1}) is damaged, {why}" in captured.err
    assert "8 scored in this run" in captured.out
    assert not list(shards.glob(".tmp-*"))
    assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))


def test_the_merge_checks_every_shard_and_merges_nothing_when_one_is_damaged(single, model, rows_dir, tmp_path):
    out = tmp_path / "scored"
    shutil.copytree(shard_dir(single), shard_dir(out))
    victim = shard_dir(out) / "shard-00002-of-00004.arrow"
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF
    victim.write_bytes(bytes(data))
    job = ShardedScoring(RAPScorer(model, RAPConfig(**CONFIG)), load_from_disk(str(rows_dir)), out, keep_shards=True)
    with pytest.raises(IncompleteRun, match=r"^shard 2 \(2 rows\) of 4 could not be merged: missing or damaged "
                                            r"\(corrupted") as raised:
        job.merge()
    assert [s.index for s in raised.value.missing] == [2]
    assert not out.exists() and not victim.exists() and _finished(out) == [0, 1, 3]


# ------------------------------------------------------------------ one run per output
def test_the_output_lock_names_its_holder_and_dies_with_it(tmp_path):
    path, out = tmp_path / "run.lock", tmp_path / "out"
    first = OutputLock(path, output=out)
    first.acquire()
    with pytest.raises(OutputBusy, match=rf"^another rap-hf score run \(process {os.getpid()} on "
                                         rf"{socket.gethostname()}, started .+\) is writing {out} now"):
        OutputLock(path, output=out).acquire()
    first.release()
    second = OutputLock(path, output=out)
    second.acquire()
    second.release()
    # A holder killed with SIGKILL leaves no stale lock: the kernel releases it.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from rap_hf.distributed.lock import OutputLock; "
        "OutputLock(Path(sys.argv[1]), output=Path('out')).acquire(); print('held', flush=True); time.sleep(600)"),
        str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(OutputBusy, match=f"process {holder.pid} on"):
        OutputLock(path, output=out).acquire()
    holder.kill()
    holder.wait()
    third = OutputLock(path, output=out)
    third.acquire()
    assert third.held
    third.release()


def test_a_run_on_an_output_another_run_holds_refuses_and_touches_nothing(model, rows_dir, tmp_path, capsys):
    out = tmp_path / "scored"
    shard_dir(out).mkdir()
    holder = OutputLock(shard_dir(out) / "run.lock", output=out)
    holder.acquire()
    capsys.readouterr()
    assert main(score_args(model, rows_dir, out)) == EXIT_BUSY
    assert capsys.readouterr().err.startswith(f"rap-hf score: another rap-hf score run (process {os.getpid()} on ")
    assert sorted(p.name for p in shard_dir(out).iterdir()) == ["run.lock"] and not out.exists()
    holder.release()
    assert main(score_args(model, rows_dir, out)) == 0


def test_two_runs_started_at_once_on_one_output_never_corrupt_it(single, model, rows_dir, tmp_path):
    """Whoever takes the lock first scores; the other refuses (status 4), or, if it comes after the
    first finished, finds nothing to do. Either way the output is whole."""
    out = tmp_path / "scored"
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    runs = [_popen([sys.executable, "-m", "rap_hf", *score_args(model, rows_dir, out)], log) for log in logs]
    codes = [run.wait(timeout=300) for run in runs]
    assert sorted(codes) in ([0, 0], [0, EXIT_BUSY]), [log.read_text()[-2000:] for log in logs]
    for code, log in zip(codes, logs):
        if code == EXIT_BUSY:
            assert "another rap-hf score run (process " in log.read_text()
    assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))


# ------------------------------------------------------------------ Ray
def _ray_tasks(process):
    return processes_of(process.pid, lambda p: p.cmdline()[:1] == ["ray::_score_shard"])


def test_ray_runs_a_killed_workers_task_again_and_merges_every_row_once(single, model, rows_dir, tmp_path):
    out, log = tmp_path / "scored", tmp_path / "log"
    process = _popen([sys.executable, "-m", "rap_hf",
                      *score_args(model, rows_dir, out, "--keep-shards", "--engine", "ray", "--num-proc", "2")], log)
    victim = wait_for(lambda: _ray_tasks(process), process, log, seconds=300, poll=0.05)[0]
    victim.kill()  # mid-task: its process carries the task's name only while it runs one
    assert process.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert "Ray: 4 shard tasks on 2 CPUs" in log.read_text()
    assert len(shard_files(out)) == 4 and not list(shard_dir(out).glob(".tmp-*"))
    assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))


def test_ray_without_retries_exits_3_naming_the_lost_shard_and_the_same_command_resumes(single, model, rows_dir,
                                                                                      tmp_path, capsys):
    out, log = tmp_path / "scored", tmp_path / "log"
    args = score_args(model, rows_dir, out, "--keep-shards", "--engine", "ray", "--num-proc", "2",
                      "--ray-max-retries", "0")
    process = _popen([sys.executable, "-m", "rap_hf", *args], log)
    wait_for(lambda: _finished(out), process, log, seconds=300, poll=0.05)  # the model is loaded and working
    victim = wait_for(lambda: _ray_tasks(process), process, log, poll=0.01)[0]
    victim.kill()
    assert process.wait(timeout=300) == EXIT_INCOMPLETE, log.read_text()[-3000:]
    missing = [i for i in range(4) if i not in _finished(out)]
    assert missing and f"rap-hf score: {_described(missing)} of 4 are missing: " in log.read_text()
    assert "run the same command to score only the missing ones" in log.read_text()
    before = shard_files(out)
    capsys.readouterr()
    assert main(args) == 0
    assert f"{2 * len(missing)} scored in this run" in capsys.readouterr().out
    assert all(shard_files(out)[name] == kept for name, kept in before.items())
    assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))


def test_ray_reports_a_run_that_cannot_start_in_one_line_and_leaves_nothing(model, rows_dir, tmp_path):
    """The start check runs on a cluster worker first, so a bad setting fails once, with its own error,
    not as one failed task per shard."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "scored"
    result = subprocess.run([sys.executable, "-m", "rap_hf", *score_args(model, rows_dir, out, "--engine", "ray",
                                                                         "--num-proc", "1"), "--device", "cuda"],
                            env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        "rap-hf score: error: device 'cuda': torch sees no CUDA GPU on this machine")
    assert not shard_dir(out).exists() and not out.exists()


# ------------------------------------------------------------------ scorer.map(num_proc=N)
def test_scorer_map_with_workers_resumes_from_checked_cache_files(single, model, rows_dir, tmp_path, caplog):
    """`scorer.map(ds, num_proc=2)`: a killed worker fails the map loudly; the next call reuses the
    blocks whose workers finished, after checking each holds exactly its rows, and scores the rest."""
    import logging
    import threading
    import time

    shutil.copytree(rows_dir, tmp_path / "rows")
    rows = load_from_disk(str(tmp_path / "rows"))  # memory-mapped: its map caches beside it
    scorer = RAPScorer(model, RAPConfig(**CONFIG))
    reference = load_from_disk(str(single))

    # A worker killed mid-map: datasets notices and raises; nothing is silently lost.
    def kill_a_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # Spawned by datasets: the pool's two workers first, then the manager of its result queue.
            spawned = processes_of(os.getpid(), lambda p: "spawn_main" in " ".join(p.cmdline()))
            if len(spawned) == 3:
                time.sleep(1.0)  # loading the model, or scoring
                min(spawned, key=lambda p: p.pid).kill()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    with pytest.raises(RuntimeError, match="abruptly died"):
        scorer.map(rows, batch_size=2, num_proc=2)
    killer.join()

    scored = scorer.map(rows, batch_size=2, num_proc=2)
    assert_same_rows(scored, reference)
    blocks = sorted((tmp_path / "rows").glob("rap-scores-*_of_00002.arrow"))
    assert [p.name[-21:] for p in blocks] == ["_00000_of_00002.arrow", "_00001_of_00002.arrow"]

    # Block 1 lost (its worker died before finishing), block 0 kept: only block 1 is scored again.
    kept = (blocks[0].read_bytes(), blocks[0].stat().st_mtime_ns)
    blocks[1].unlink()
    assert_same_rows(scorer.map(rows, batch_size=2, num_proc=2), reference)
    assert (blocks[0].read_bytes(), blocks[0].stat().st_mtime_ns) == kept and blocks[1].exists()

    # Block 0 truncated: found before datasets loads it, deleted, scored again.
    blocks[0].write_bytes(blocks[0].read_bytes()[:1000])
    with caplog.at_level(logging.WARNING, logger="rap_hf.scoring.map_cache"):
        assert_same_rows(scorer.map(rows, batch_size=2, num_proc=2), reference)
    assert f"Scores cache file {blocks[0]} is damaged, unreadable" in caplog.text

"""What resuming saves, and what the shard checks cost: `rap-hf score` killed at half and resumed,
against one uninterrupted run, in one run of this script.

    python -m benchmarks.resume [--rows 192] [--shard-rows 8] [--num-rollouts 4] [--max-new-tokens 32]
                                [--check-mib 1024] [--out FILE.json]

Three `rap-hf score` commands, each a fresh process (model load included), on the same rows of the
embedded world with the same tiny random-weight Qwen2.5-VL:

- uninterrupted: one run, start to merge;
- interrupted: a run killed with SIGKILL once half the rows are in finished shards, then the same
  command again, which scores only the missing shards and merges. Reported: the two runs' total
  against the uninterrupted run, the rows scored twice (the shards in progress at the kill), and what
  starting over would have cost instead (killed run + a whole new run).

The checks (records.py): every shard file is read back once for its checksum when written and once
more before the merge (plus once at the start of a resumed run). Their cost is measured two ways:
`check_seconds` over the uninterrupted run's own shards (`ShardedScoring.damaged()`, the full check,
against that run's time), and the checksum throughput over `--check-mib` MiB of shard-like data,
which gives the cost on a large run: a 55k-row image set keeps about 10 GiB of shards
(images are carried with the rows), which the checks read three times at that speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _command(model: Path, rows: Path, out: Path, args) -> list[str]:
    return [sys.executable, "-m", "rap_hf", "score", "--model", str(model), "--dataset", str(rows), "--output",
            str(out), "--shard-rows", str(args.shard_rows), "--num-rollouts", str(args.num_rollouts),
            "--max-new-tokens", str(args.max_new_tokens), "--map-batch-size", "4", "--device", "cpu",
            "--min-pixels", "3136", "--max-pixels", "3136", "--keep-shards"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def _killed_at_half(command: list[str], shard_dir: Path, rows: int, shard_rows: int) -> tuple[float, int]:
    """Run `command`, SIGKILL it once half the rows are in finished shards; (seconds, rows finished)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished = 0
    while finished * shard_rows < rows // 2:
        if process.poll() is not None:
            raise RuntimeError("the run ended before half its rows were scored")
        finished = len(list(shard_dir.glob("shard-*.json"))) if shard_dir.exists() else 0
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return time.perf_counter() - start, len(list(shard_dir.glob("shard-*.json"))) * shard_rows


def _checksum_throughput(mib: int, folder: Path) -> float:
    """MiB/s of `file_checksum` over `mib` MiB of random bytes (read from the page cache, as a just
    written shard is)."""
    from rap_hf.distributed.records import file_checksum

    path = folder / "payload.bin"
    with path.open("wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    file_checksum(path)  # once to warm the page cache
    start = time.perf_counter()
    file_checksum(path)
    seconds = time.perf_counter() - start
    path.unlink()
    return mib / seconds


def main(argv=None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=192)
    parser.add_argument("--shard-rows", type=int, default=8)
    parser.add_argument("--num-rollouts", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--check-mib", type=int, default=1024, help="MiB hashed for the checksum throughput")
    parser.add_argument("--out", default="benchmarks/results/resume.json")
    args = parser.parse_args(argv)

    from datasets import load_from_disk

    from rap_hf import RAPConfig, RAPScorer
    from rap_hf.data.synthetic import make_visual_world
    from rap_hf.distributed import ShardedScoring
    from rap_hf.testing import build_tiny_vlm

    with tempfile.TemporaryDirectory(prefix="rap-resume-") as tmp:
        tmp = Path(tmp)
        model = build_tiny_vlm("qwen2_5_vl", tmp / "model")
        rows = tmp / "rows"
        make_visual_world(2 * args.rows, seed=0)["train"].select(range(args.rows)).save_to_disk(str(rows))

        whole = tmp / "whole"
        uninterrupted = _timed(_command(model, rows, whole, args))
        killed, kept = _killed_at_half(_command(model, rows, tmp / "resumed", args), tmp / "resumed.shards",
                                       args.rows, args.shard_rows)
        resumed = _timed(_command(model, rows, tmp / "resumed", args))
        same = load_from_disk(str(tmp / "resumed"))["rap_image_correct"] == load_from_disk(str(whole))[
            "rap_image_correct"]

        config = RAPConfig(num_rollouts=args.num_rollouts, max_new_tokens=args.max_new_tokens, device="cpu",
                           min_pixels=3136, max_pixels=3136)
        job = ShardedScoring(RAPScorer(str(model), config), load_from_disk(str(rows)), whole,
                             shard_rows=args.shard_rows, keep_shards=True)
        start = time.perf_counter()
        damaged = job.damaged()
        check_seconds = time.perf_counter() - start
        shard_bytes = sum(p.stat().st_size for p in (tmp / "whole.shards").glob("shard-*.arrow"))
        # Time inside the shards (from their records): the rest of a run is start-up (imports, model
        # load, the start check) and the merge, which every process pays once.
        scoring = sum(json.loads(p.read_text())["seconds"] for p in (tmp / "whole.shards").glob("shard-*.json"))
        throughput = _checksum_throughput(args.check_mib, tmp)

    total = killed + resumed
    large_run_gib = 10.0
    results = {
        "settings": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "uninterrupted_seconds": round(uninterrupted, 2),
        "killed_run_seconds": round(killed, 2),
        "rows_finished_at_kill": kept,
        "resumed_run_seconds": round(resumed, 2),
        "interrupted_total_over_uninterrupted": round(total / uninterrupted, 3),
        "starting_over_total_over_uninterrupted": round((killed + uninterrupted) / uninterrupted, 3),
        "saved_by_resuming_seconds": round(killed + uninterrupted - total, 2),
        "resumed_output_equals_uninterrupted": same,
        "uninterrupted_scoring_seconds": round(scoring, 2),
        "uninterrupted_fixed_seconds": round(uninterrupted - scoring, 2),
        "checks": {
            "shard_bytes": shard_bytes,
            "full_check_seconds": round(check_seconds, 4),
            "full_check_share_of_run": round(check_seconds / uninterrupted, 5),
            "damaged_found": len(damaged),
            "checksum_mib_per_second": round(throughput, 1),
            "large_run_gib": large_run_gib,
            "large_run_check_seconds": round(3 * large_run_gib * 1024 / throughput, 1),
        },
    }
    print(f"uninterrupted {uninterrupted:.1f}s; killed at {kept}/{args.rows} rows after {killed:.1f}s, resumed in "
          f"{resumed:.1f}s: total {total / uninterrupted:.2f}x the uninterrupted run (starting over: "
          f"{(killed + uninterrupted) / uninterrupted:.2f}x); same output: {same}; of the uninterrupted run, "
          f"{scoring:.1f}s scoring shards and {uninterrupted - scoring:.1f}s start-up and merge")
    print(f"checks: {check_seconds * 1000:.1f} ms over {shard_bytes / 1e6:.1f} MB of shards "
          f"({check_seconds / uninterrupted:.3%} of the run); checksum {throughput:.0f} MiB/s, so "
          f"{results['checks']['large_run_check_seconds']} s for three reads of {large_run_gib:g} GiB")
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()

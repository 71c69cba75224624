"""The server backend's client against a bare load generator, and what it sustains at scale.

    python -m benchmarks.server_throughput [--requests 96] [--concurrency 1 2 4 8 16]
                                           [--max-new-tokens 16] [--repeats 5]
                                           [--memory-rows 10000] [--out FILE.json]

1. Against a real `transformers serve` of the shipped scorer (`rap_hf/embedded_scorer`), at each
   concurrency C, the same requests (embedded-world rows, with the image and text-only, one rollout
   each, per-rollout seeds) sent two ways, `--repeats` times each in alternating order (the median of
   the paired ratios is the figure; the server's own speed drifts from run to run):
   - floor: a bare load generator (aiohttp, C in flight, the JSON bodies built before the clock
     starts, the answers read and not parsed): no client can send the same requests for less;
   - ours: `ServerEngine.generate`, what `rap-hf score --backend server` calls (messages built from
     the rows' prompts, pictures encoded, answers parsed, retries armed).
   Goal: ours / floor <= 1.10 at every concurrency.
2. Against an echo server (a real OpenAI-protocol server with no model: every answer is at once),
   the most requests per second the client itself sustains at concurrency 1, 64 and 256, beside the
   bare load generator's: the client's own cost per request, and what a vLLM fleet needs of it.
3. The client's memory while `RAPScorer.map` scores `--memory-rows` rows (M = 5, both conditions,
   `n = 5` per request) through the echo server: the resident set after the first hundred rows and
   at the peak.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import write_results
from benchmarks.served import Echo, Served

MODEL = "rap_hf/embedded_scorer"
ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.10


def prompts(count: int):
    """`count` prompts of the embedded world's train rows, image and text-only alternating."""
    from rap_hf.embedded import embedded_world
    from rap_hf.rows import prepare_rows

    rows = embedded_world()["train"].select(range((count + 1) // 2))
    prepared = prepare_rows(rows[:], None)
    return [p for row in prepared for p in (row.image_prompt, row.text_prompt)][:count]


def engine_for(url: str, concurrency: int):
    from rap_hf.rollouts.server import ServerEngine, ServerPool

    return ServerEngine(ServerPool([url], concurrency=concurrency), MODEL, server_n="off")


def bodies(engine, batch, seeds, max_new_tokens: int) -> list[dict]:
    """The JSON bodies `engine` sends for `batch`, for the load generator to send as they are."""
    from rap_hf.rollouts.server.engine import wire_seed

    return [{"model": MODEL, "messages": engine.messages(p), "seed": wire_seed(s[0]), "max_tokens": max_new_tokens,
             "temperature": 1.0, "top_p": 1.0} for p, s in zip(batch, seeds)]


async def load_generator(url: str, payloads: list[dict], concurrency: int) -> float:
    """Send `payloads` with `concurrency` in flight; the seconds it took."""
    import aiohttp

    slots = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(payload: dict) -> None:
            async with slots, session.post(url + "/v1/chat/completions", json=payload) as answer:
                answer.raise_for_status()
                await answer.read()

        start = time.perf_counter()
        await asyncio.gather(*(one(p) for p in payloads))
        return time.perf_counter() - start


def against_the_floor(url: str, levels: list[int], count: int, max_new_tokens: int, repeats: int) -> list[dict]:
    """Per concurrency: the floor and ours, `repeats` times each, in alternating order (the server's own
    speed drifts): the median of the paired ratios, and the best time of each."""
    import statistics

    from rap_hf.rollouts.sampling import sample_seed

    batch = prompts(count)
    seeds = [[sample_seed(0, f"row-{i}", "image", 0)] for i in range(len(batch))]
    results = []
    for concurrency in levels:
        engine = engine_for(url, concurrency)
        payloads = bodies(engine, batch, seeds, max_new_tokens)

        def floor() -> float:
            return asyncio.run(load_generator(url, payloads, concurrency))

        def ours() -> float:
            for p in batch:
                p.server_messages = None  # ours builds its messages (pictures encoded) inside the clock
            start = time.perf_counter()
            engine.generate(batch, 1, temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens, sample_seeds=seeds)
            return time.perf_counter() - start

        times: dict[str, list[float]] = {"floor": [], "ours": []}
        for repeat in range(repeats):
            for name, run in ((("floor", floor), ("ours", ours)) if repeat % 2 == 0 else
                              (("ours", ours), ("floor", floor))):
                times[name].append(run())
        engine.pool.close()
        ratios = [o / f for o, f in zip(times["ours"], times["floor"])]
        entry = {"concurrency": concurrency, "requests": len(batch),
                 "floor_seconds": round(min(times["floor"]), 3), "ours_seconds": round(min(times["ours"]), 3),
                 "floor_requests_per_second": round(len(batch) / min(times["floor"]), 2),
                 "ours_requests_per_second": round(len(batch) / min(times["ours"]), 2),
                 "ratio_to_floor": round(statistics.median(ratios), 3),
                 "paired_ratios": [round(r, 3) for r in ratios]}
        print(entry, flush=True)
        results.append(entry)
    return results


def client_ceiling(url: str, count: int, levels: tuple[int, ...] = (1, 64, 256)) -> list[dict]:
    """Against a server that answers at once: requests per second of ours and of the bare load
    generator on the same requests, so the difference is each client's own cost per request."""
    batch = prompts(64)
    many = [batch[i % len(batch)] for i in range(count)]
    seeds = [[i] for i in range(count)]
    out = []
    for concurrency in levels:
        requests = count if concurrency > 1 else count // 10  # one at a time: a tenth is plenty
        engine = engine_for(url, concurrency)
        engine.generate(many[:concurrency], 1, sample_seeds=seeds[:concurrency])  # connections opened
        payloads = bodies(engine, many[:requests], seeds[:requests], 16)
        floor = asyncio.run(load_generator(url, payloads, concurrency))
        start = time.perf_counter()
        engine.generate(many[:requests], 1, max_new_tokens=16, sample_seeds=seeds[:requests])
        seconds = time.perf_counter() - start
        engine.pool.close()
        out.append({"concurrency": concurrency, "requests": requests, "seconds": round(seconds, 3),
                    "requests_per_second": round(requests / seconds, 1),
                    "floor_requests_per_second": round(requests / floor, 1),
                    "ms_per_request_over_floor": round(1000 * (seconds - floor) / requests, 2)})
        print(out[-1], flush=True)
    return out


def memory_at_scale(url: str, rows: int) -> dict[str, Any]:
    """Peak resident memory of this process while `RAPScorer.map` scores `rows` rows through `url`."""
    import datasets
    import psutil

    from rap_hf.config import RAPConfig
    from rap_hf.embedded import embedded_world
    from rap_hf.scoring import RAPScorer

    world = embedded_world()["train"]
    repeats = -(-rows // len(world))
    table = datasets.concatenate_datasets([world] * repeats).select(range(rows))
    table = table.map(lambda row, i: {"rap_id": f"row-{i}"}, with_indices=True)
    process, samples, done = psutil.Process(), [], threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(process.memory_info().rss)
            time.sleep(0.05)

    config = RAPConfig(backend="server", server_urls=[url], num_rollouts=5, max_new_tokens=16, min_pixels=None,
                       max_pixels=None, server_concurrency=64, batch_size=32)
    with tempfile.TemporaryDirectory() as folder:
        table.save_to_disk(folder + "/rows")
        table = datasets.load_from_disk(folder + "/rows")
        scorer = RAPScorer(MODEL, config)
        scorer.map(table.select(range(min(100, rows))), batch_size=32)  # warm: clients open, first batches written
        start_rss = process.memory_info().rss
        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        start = time.perf_counter()
        scored = scorer.map(table, batch_size=32)
        seconds = time.perf_counter() - start
        done.set()
        watcher.join()
        assert len(scored) == rows and not any(scored["rap_error"])
    mib = 1 << 20
    # The echo server honours n: one request per row and condition carries its 5 rollouts.
    return {"rows": rows, "rollouts": rows * 2 * 5, "requests": rows * 2, "seconds": round(seconds, 1),
            "rows_per_second": round(rows / seconds, 1), "rss_after_100_rows_mib": round(start_rss / mib, 1),
            "rss_peak_mib": round(max(samples) / mib, 1), "rss_growth_mib": round((max(samples) - start_rss) / mib, 1)}


def main(argv=None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ceiling-requests", type=int, default=5000)
    parser.add_argument("--memory-rows", type=int, default=10_000)
    parser.add_argument("--out", default="benchmarks/results/server_throughput.json")
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # the server names the model by the folder as given
    # One thread for the server: the client and the load generator keep the other core, so neither
    # side's timing is the two fighting over the same one.
    with Served(MODEL, cwd=str(ROOT), threads=1) as served:
        floor = against_the_floor(served.url, args.concurrency, args.requests, args.max_new_tokens, args.repeats)
    echo = Echo(MODEL)
    try:
        ceiling = client_ceiling(echo.url, args.ceiling_requests)
        memory = memory_at_scale(echo.url, args.memory_rows) if args.memory_rows else None
    finally:
        echo.stop()
    import openai
    import transformers

    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": {"openai": openai.__version__, "transformers": transformers.__version__},
        "settings": vars(args), "goals": {"max_ratio_to_floor": GOAL_RATIO},
        "against_the_floor": floor,
        "goal_met": all(entry["ratio_to_floor"] <= GOAL_RATIO for entry in floor),
        "client_ceiling": ceiling, "memory": memory,
    }
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()

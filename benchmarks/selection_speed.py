"""Selection speed: `rap_hf.select` on 1,000,000 scored rows, and against the released script.

    python -m benchmarks.selection_speed [--rows 1000000] [--compare 1000 2000 4000] [--out FILE.json]

Prints a table and writes JSON. The released script's loop is quadratic, so it is compared at
smaller sizes, on the same rollout outcomes, as a ratio of times measured in one run; the 1M-row
figure shows that `select` stays linear. Medians of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np

from benchmarks import write_results


def synthetic_scored(n: int, m: int = 5, seed: int = 0):
    """A scored dataset of n rows with random outcomes, built column-wise (no per-row Python)."""
    import pyarrow as pa
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    p_image = rng.beta(2, 2, n)
    p_text = p_image * rng.uniform(0, 1, n)

    def flag_lists(probabilities):
        values = rng.random((n, m)) < probabilities[:, None]
        offsets = np.arange(0, n * m + 1, m, dtype=np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.reshape(-1)))

    table = pa.table(
        {
            "rap_id": pa.array([f"row-{i:07d}" for i in range(n)]),
            "rap_image_correct": flag_lists(p_image),
            "rap_text_correct": flag_lists(p_text),
            "rap_image_formatted": flag_lists(np.full(n, 0.9)),
            "rap_text_formatted": flag_lists(np.full(n, 0.9)),
            "rap_ace": pa.array(rng.normal(-4, 2, n)),
            "rap_error": pa.nulls(n, pa.string()),
        }
    )
    return Dataset(table)


def rollout_logs(scored):
    """The released script's two logs for the same outcomes (0.9 accuracy + 0.1 format per rollout)."""
    columns = scored.to_dict()
    image, text = [], []
    for i, rap_id in enumerate(columns["rap_id"]):
        for log, correct, formatted in ((image, columns["rap_image_correct"][i], columns["rap_image_formatted"][i]),
                                        (text, columns["rap_text_correct"][i], columns["rap_text_formatted"][i])):
            log.extend({"onlyid": rap_id, "reward": 0.9 * c + 0.1 * f} for c, f in zip(correct, formatted))
    return image, text, columns["rap_id"]


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> dict:
    import datasets

    from benchmarks.released_selection import released_selection
    from rap_hf import __version__, select

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--compare", type=int, nargs="*", default=[1000, 2000, 4000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/selection_speed.json")
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()

    results = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "versions": {"rap_hf": __version__, "datasets": datasets.__version__, "numpy": np.__version__},
        "large": {}, "compare": [],
    }
    big = synthetic_scored(args.rows)
    for mode in ("paper", "reference"):
        seconds = _median_time(lambda: select(big, mode=mode), args.repeats)
        results["large"][mode] = {"rows": args.rows, "seconds": seconds, "rows_per_second": args.rows / seconds}
        print(f"select({mode}) on {args.rows:,} rows: {seconds:.2f} s ({args.rows / seconds:,.0f} rows/s)")

    print(f"\n{'rows':>7} {'released script (s)':>20} {'rap_hf.select (s)':>18} {'speed-up':>9}")
    for n in args.compare:
        scored = synthetic_scored(n, seed=n)
        image_log, text_log, ids = rollout_logs(scored)
        expected = released_selection(image_log, text_log, ids)
        got = np.flatnonzero(np.asarray(select(scored, mode="reference").decisions["rap_keep"])).tolist()
        if got != expected:
            raise AssertionError(f"reference mode disagrees with the released script at n={n}")
        released = _median_time(lambda: released_selection(image_log, text_log, ids), args.repeats)
        ours = _median_time(lambda: select(scored, mode="reference"), args.repeats)
        results["compare"].append({"rows": n, "released_seconds": released, "rap_hf_seconds": ours,
                                   "speedup": released / ours, "same_rows": True})
        print(f"{n:>7,} {released:>20.3f} {ours:>18.3f} {released / ours:>8.1f}x")

    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()

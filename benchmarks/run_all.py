"""Run every CPU benchmark of benchmarks/ and print one summary table.

    python -m benchmarks.run_all [--quick] [--with-logit-cde] [--out-dir DIR]

Runs `selection_speed`, `scoring_speed`, `sampler_speed`, `ace_memory` and `resume` (about 8 minutes on 2 cores; `--quick`:
small settings, about 1 minute, written to a temporary folder unless `--out-dir` is given, so the
measured figures under benchmarks/results/ are not overwritten by a smoke run). The logit-CDE study
warms a model up first (its README run of 1,000 steps took 18 minutes), so it runs only with
`--with-logit-cde` (with `--quick`: 20 warm-up steps, 20 rows, under a minute).
Each benchmark writes its own JSON; the summary is written to `summary.json` beside them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# name: (arguments of the full run, arguments of --quick)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "selection_speed": ([], ["--rows", "100000", "--compare", "1000", "--repeats", "1"]),
    "scoring_speed": ([], ["--rows", "8", "--max-new-tokens", "16", "--repeats", "1"]),
    "sampler_speed": ([], ["--shapes", "40x648", "8x32000", "--repeats", "5"]),
    "ace_memory": ([], ["--layers", "4", "--tokens", "512"]),
    "resume": ([], ["--rows", "32", "--shard-rows", "4", "--max-new-tokens", "8", "--check-mib", "64"]),
    "logit_cde_study": ([], ["--rows", "20", "--steps", "20"]),
}


def _selection(r: dict) -> list[tuple[str, str]]:
    rows = [(f"select on {v['rows']:,} rows ({mode})", f"{v['seconds']:.2f} s ({v['rows_per_second']:,.0f} rows/s)")
            for mode, v in r["large"].items()]
    rows += [(f"speed-up over the released script, {c['rows']:,} rows", f"{c['speedup']:.1f}x") for c in r["compare"]]
    return rows


def _scoring(r: dict) -> list[tuple[str, str]]:
    rows = []
    for e in r["by_length"]:
        rate = e["rows_per_second"]
        rows.append((f"rows/s at {e['max_new_tokens']} new tokens: ours / naive / floor",
                     f"{rate['ours']:.2f} / {rate['naive']:.2f} / {rate['floor']:.2f}"))
        rows.append((f"  ours vs naive (goal >= {r['goals']['min_speedup_vs_naive']:g}x)",
                     f"{e['speedup_vs_naive']:.2f}x {'met' if e['goals_met']['speedup_vs_naive'] else 'MISSED'}"))
        rows.append((f"  ours / floor (goal <= {r['goals']['max_ratio_to_floor']:g}x)",
                     f"{e['ratio_to_floor']:.2f}x {'met' if e['goals_met']['ratio_to_floor'] else 'MISSED'}"))
        rows.append(("  floor vs naive (the most any batched scorer gains here)", f"{e['floor_speedup_vs_naive']:.2f}x"))
        rows.append(("  seeded sampler: floor_seeded / floor", f"{e['seeded_sampler_ratio']:.2f}x"))
    return rows


def _sampler(r: dict) -> list[tuple[str, str]]:
    rows = []
    for e in r["by_shape"]:
        ms = e["ms_per_step"]
        rows.append((f"{e['device']} ms per step, {e['sequences']} x {e['vocabulary']:,}: generate / seeded / gumbel",
                     f"{ms['generate']:.3f} / {ms['seeded']:.3f} / {ms['gumbel']:.3f}"))
        rows.append(("  seeded / generate's own sampling", f"{e['seeded_over_generate']:.2f}x"))
    return rows


def _ace(r: dict) -> list[tuple[str, str]]:
    s = r["settings"]
    rows = []
    if "cpu" in r:
        peak = r["cpu"]["peak_rise_mib"]
        rows.append((f"CPU peak rise, {s['layers']} layers x {s['tokens']} tokens: plain forward / hook / "
                     "hook + ACE scoring / all layers",
                     " / ".join(f"{peak[v]:.0f}" for v in ("forward", "hook", "hook_and_score", "all_layers")) + " MiB"))
        ratio = r["cpu"]["ratio_all_layers_to_hook"]
        rows.append(("  all layers / hook", f"{ratio:.1f}x" if ratio is not None else "n/a"))
    if "cuda" in r:
        rows.append(("  CUDA all layers / hook", f"{r['cuda']['ratio_all_layers_to_hook']:.1f}x"))
    rows.append(("  hook weights equal output_attentions'", str(r["same_last_layer_weights"])))
    return rows


def _logit(r: dict) -> list[tuple[str, str]]:
    a, c = r["agreement"], r["cost"]
    return [("logit-CDE cost vs rollout CDE", f"{c['logit_cde_speedup']:.1f}x cheaper"),
            ("Spearman(logit-CDE, rollout CDE)", f"{a['spearman_logit_vs_rollout_cde']:.2f}"),
            ("adaptive rollouts saved (same decisions)",
             f"{r['adaptive']['saved']:.1%} ({r['adaptive']['same_paper_mode_decisions']})")]


def _resume(r: dict) -> list[tuple[str, str]]:
    c = r["checks"]
    return [("killed at half + resumed vs uninterrupted", f"{r['interrupted_total_over_uninterrupted']:.2f}x "
             f"(starting over {r['starting_over_total_over_uninterrupted']:.2f}x)"),
            ("shard checks, share of the run", f"{c['full_check_share_of_run']:.3%} ({c['checksum_mib_per_second']:.0f} "
             "MiB/s)")]


SUMMARIES: dict[str, Callable[[dict], list[tuple[str, str]]]] = {
    "selection_speed": _selection, "scoring_speed": _scoring, "sampler_speed": _sampler, "ace_memory": _ace,
    "resume": _resume,
    "logit_cde_study": _logit,
}


def main(argv=None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small settings (about 2 minutes), a smoke run")
    parser.add_argument("--with-logit-cde", action="store_true", help="also run the logit-CDE study (long)")
    parser.add_argument("--out-dir", help="where the JSON files go (default: benchmarks/results, or a temporary "
                                          "folder with --quick)")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir or (tempfile.mkdtemp(prefix="rap-benchmarks-") if args.quick else "benchmarks/results"))
    names = [n for n in BENCHMARKS if n != "logit_cde_study" or args.with_logit_cde]

    summary: dict[str, Any] = {"quick": args.quick, "out_dir": str(out_dir), "benchmarks": {}}
    table: list[tuple[str, str, str]] = []
    for name in names:
        full, quick = BENCHMARKS[name]
        argv_of = [*(quick if args.quick else full), "--out", str(out_dir / f"{name}.json")]
        print(f"\n=== {name} {' '.join(argv_of)}", flush=True)
        start = time.perf_counter()
        try:
            result = importlib.import_module(f"benchmarks.{name}").main(argv_of)
            rows = SUMMARIES[name](result)
            status = "ok"
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            rows, status = [("failed", "see the traceback above")], "failed"
        seconds = time.perf_counter() - start
        summary["benchmarks"][name] = {"status": status, "seconds": seconds, "figures": dict(rows)}
        table += [(name if i == 0 else "", figure, value) for i, (figure, value) in enumerate(rows)]
        table.append(("", "wall time of this benchmark", f"{seconds:.0f} s"))

    widths = [max(len(row[k]) for row in table) for k in range(3)]
    print("\n" + "  ".join(h.ljust(w) for h, w in zip(("benchmark", "figure", "value"), widths)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nJSON in {out_dir}")
    if any(b["status"] != "ok" for b in summary["benchmarks"].values()):
        raise SystemExit(1)
    return summary


if __name__ == "__main__":
    main()

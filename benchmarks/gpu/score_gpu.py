"""GPU check of RAP scoring: the transformers engine on CUDA (the server backend: `real_size_gpu.py`).

    python -m benchmarks.gpu.score_gpu [--rows 64] [--out DIR]

Prepared for machines that have a GPU (CI never runs it). It builds a tiny Qwen2.5-VL and the embedded
world offline, scores the rows with `backend="transformers"` on `cuda` (bfloat16), then prints and
writes JSON: rows per second, errors, and whether two runs with the same per-sample seeds give the
same responses. Exit code 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _score(model_path, rows, backend: str, **config):
    from rap_hf import RAPConfig, RAPScorer

    scorer = RAPScorer(str(model_path), RAPConfig(backend=backend, **config))
    start = time.perf_counter()
    scored = scorer.map(rows, batch_size=16, load_from_cache_file=False)
    return scored, time.perf_counter() - start


def main(argv=None) -> int:
    import torch

    from rap_hf.data.synthetic import make_visual_world
    from rap_hf.testing import build_tiny_vlm

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results"))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: this check needs a GPU")
        return 1

    work = Path(tempfile.mkdtemp())
    model_path = build_tiny_vlm("qwen2_5_vl", work / "model", text_hidden=128, image_size=84)
    rows = make_visual_world(int(args.rows * 1.25) + 1, seed=0)["train"].select(range(args.rows))
    common = dict(num_rollouts=5, max_new_tokens=64, batch_size=16, min_pixels=None, max_pixels=None)  # tiny model: its own resolution
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": args.rows, "checks": {}}
    ok = True

    scored, seconds = _score(model_path, rows, "transformers", **common)
    errors = sum(1 for e in scored["rap_error"] if e)
    report["transformers"] = {"seconds": seconds, "rows_per_second": args.rows / seconds, "errors": errors}
    ok &= errors == 0
    again, _ = _score(model_path, rows, "transformers", **common)
    same = list(again["rap_responses_image"]) == list(scored["rap_responses_image"])
    report["checks"]["transformers_reproducible"] = same
    ok &= same

    report["ok"] = bool(ok)
    print(json.dumps(report, indent=2))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "score_gpu.json").write_text(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

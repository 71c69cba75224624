"""Speed and memory benchmarks of rap-hf, and the baselines they are measured against."""

import json
from pathlib import Path


def write_results(out: str | Path, results: dict) -> None:
    """Write a benchmark's figures as JSON to `out` (folders created) and say where."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")

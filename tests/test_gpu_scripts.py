"""The GPU scripts keep running where there is no GPU: their --dry-run takes the same code paths."""

import json

import pytest


@pytest.mark.slow
def test_real_size_script_dry_run(tmp_path):
    from benchmarks.gpu.real_size_gpu import main

    assert main(["--dry-run", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "real_size_gpu_dry_run.json").read_text())
    assert report["dry_run"] and report["ok"] and report["transformers"]["errors"] == 0
    assert report["transformers"]["rollouts"] == 2 * 5 * 4 and report["transformers"]["rollouts_per_second"] > 0
    assert report["ace_memory"]["sequence_tokens"] == 256  # measured on CUDA only; the pass itself ran

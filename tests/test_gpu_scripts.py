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
    # The server half: saved, freed, served by `transformers serve`, scored through it (ACE here) validly.
    served = report["through_server"]
    assert served["server"] == "transformers serve" and served["backend"] == "server" and served["valid"]
    assert served["rollouts"] == report["transformers"]["rollouts"] and served["errors"] == 0
    # The comparison with the floor ran first, at tiny settings, and wrote its own JSON.
    floor = json.loads((tmp_path / "scoring_speed_dry_run.json").read_text())
    assert report["floor"]["ratio_to_floor"] == round(floor["by_length"][0]["ratio_to_floor"], 3)
    assert set(report["floor"]["rows_per_second"]) == {"ours", "naive", "floor", "floor_seeded"}

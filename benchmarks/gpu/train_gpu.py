"""GPU check of `RAPGRPOTrainer`: TRL's GPU defaults, the paper's KL and clipping, online replacement.

    python -m benchmarks.gpu.train_gpu [--out DIR]

Prepared for machines that have a GPU (CI never runs it; the CPU tests cover the same logic). For a
tiny Qwen2.5-VL and a tiny LLaVA built offline it trains 3 epochs on CUDA with TRL's defaults
(bf16 autocast, gradient checkpointing), a reference model for the KL term (beta 0.01), clipping
0.2 / 0.3 as in the paper, and a replacement pool with an oracle reward that solves one row. It
checks that the model trained on the GPU, the solved row was swapped for the hardest pool row, and
the saved checkpoint reloads; it prints and writes JSON. Exit code 1 when a check fails.
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


def _check(kind: str, work: Path) -> dict:
    import torch
    from transformers import AutoModelForImageTextToText

    from rap_hf import RAPGRPOConfig, RAPGRPOTrainer, build_tiny_vlm, make_visual_world
    from rap_hf.rewards import rap_reward

    model_path = build_tiny_vlm(kind, work / kind, seed=0)
    world = make_visual_world(40, seed=0)["train"]
    train = world.select(range(8))
    pool = world.select(range(8, 12)).add_column("rap_difficulty", [0.2, 0.8, 0.4, 0.6])
    solved, hardest = train[1]["rap_id"], pool[1]["rap_id"]
    seen: list[list[str]] = []

    def oracle(completions, rap_id, **kwargs):
        seen.append(list(rap_id))
        return [1.0 if rid == solved else float(i % 2) for i, rid in enumerate(rap_id)]

    args = RAPGRPOConfig(
        output_dir=str(work / f"{kind}-out"), per_device_train_batch_size=8, num_generations=4,
        max_completion_length=32, learning_rate=1e-3, beta=0.01, epsilon=0.2, epsilon_high=0.3,
        num_train_epochs=3, save_strategy="epoch", logging_steps=1, report_to=[], seed=0,
        replacement_reward="oracle",
    )
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer = RAPGRPOTrainer(str(model_path), args, train_dataset=train, reward_funcs=[rap_reward, oracle],
                             replacement_pool=pool)
    trainer.train()
    seconds = time.perf_counter() - start
    per_epoch = len(seen) // 3
    epochs = [set(sum(seen[e * per_epoch:(e + 1) * per_epoch], [])) for e in range(3)]
    checkpoint = sorted((work / f"{kind}-out").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    reloaded = AutoModelForImageTextToText.from_pretrained(checkpoint)
    result = {
        "kind": kind,
        "device": str(next(trainer.model.parameters()).device),
        "bf16": args.bf16,
        "gradient_checkpointing": args.gradient_checkpointing,
        "steps": trainer.state.global_step,
        "seconds": round(seconds, 2),
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        "history": trainer.replacement_sampler.history,
        "kl_logged": any("kl" in log for log in trainer.state.log_history),
        "checkpoint": checkpoint.name,
        "reloaded_parameters": sum(p.numel() for p in reloaded.parameters()),
    }
    result["checks"] = {
        "trained_on_cuda": result["device"].startswith("cuda"),
        "solved_row_swapped": solved in epochs[0] and solved not in epochs[1] and hardest in epochs[1],
        "kl_term_ran": result["kl_logged"],
        "checkpoint_reloads": result["reloaded_parameters"] > 0,
    }
    return result


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results"))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: this check needs a GPU")
        return 1
    work = Path(tempfile.mkdtemp())
    results = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "runs": []}
    for kind in ("qwen2_5_vl", "llava"):
        try:
            results["runs"].append(_check(kind, work))
        except Exception as error:  # report every family, then fail
            results["runs"].append({"kind": kind, "error": repr(error), "checks": {"ran": False}})
    ok = all(all(run["checks"].values()) for run in results["runs"])
    results["ok"] = ok
    text = json.dumps(results, indent=2, default=str)
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "train_gpu.json").write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

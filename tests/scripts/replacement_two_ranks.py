"""Run by tests/test_training.py under `torchrun --nproc_per_node 2` on CPU.

Each group of 4 rollouts is split over the two ranks (2 each). The oracle reward makes row 1
solved everywhere, and row 2 right on rank 0 but wrong on rank 1: a rank that judged from its own
half would swap row 2 out (and the two ranks would disagree). Each rank writes what it saw.
Usage: replacement_two_ranks.py MODEL_DIR OUT_DIR
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: E402

from rap_hf import RAPGRPOConfig, RAPGRPOTrainer, make_visual_world  # noqa: E402


def main(model_dir: str, out_dir: str) -> None:
    rank = int(os.environ["RANK"])
    world = make_visual_world(40, seed=0)["train"]
    train, pool = world.select(range(4)), world.select(range(4, 6))
    solved, mixed = train[1]["rap_id"], train[2]["rap_id"]
    seen: dict[int, list[int]] = {}
    holder = {}

    def oracle(completions, rap_id, rap_train_index, **kwargs):
        seen.setdefault(holder["trainer"].replacement_sampler.epoch, []).extend(rap_train_index)
        values = []
        for i, rid in enumerate(rap_id):
            if rid == solved:
                values.append(1.0)
            elif rid == mixed:
                values.append(1.0 if rank == 0 else 0.0)
            else:
                values.append(float(i % 2))
        return values

    args = RAPGRPOConfig(
        output_dir=os.path.join(out_dir, "train"), use_cpu=True, bf16=False, activation_checkpointing=False, seed=0,
        per_device_train_batch_size=2, num_generations=4, max_completion_length=6, learning_rate=0.05,
        num_train_epochs=2, logging_steps=1, report_to=[], save_strategy="no", replacement_reward="oracle",
    )
    trainer = RAPGRPOTrainer(
        AutoModelForImageTextToText.from_pretrained(model_dir), args, train_dataset=train, reward_funcs=oracle,
        replacement_pool=pool, processing_class=AutoProcessor.from_pretrained(model_dir),
    )
    holder["trainer"] = trainer
    trainer.train()
    sampler = trainer.replacement_sampler
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"world_size": trainer.accelerator.num_processes, "history": sampler.history,
                   "slots": sampler.slots, "solved_index": 1, "seen": [seen.get(0, []), seen.get(1, [])]}, f)
    # Leave the process group before exiting: a rank still holding it at interpreter exit can abort
    # ("terminate called without an active exception"), which failed this test once in CI.
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.state.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:3])

"""Per-step cost of drawing tokens: the seeded sampler against `generate`'s own sampling.

    python -m benchmarks.sampler_speed [--shapes 40x648 80x152064] [--repeats 50] [--out FILE.json]

At every decoding step a sampler turns a [sequences, vocabulary] block of logits into one token per
sequence. Three ways are timed on the same logits (median per step, on the CPU with one thread, and
on CUDA where there is one):

- `generate`: what `model.generate(do_sample=True)` does at temperature 1 (softmax, multinomial), the
  floor's draw, which shares one random stream across the batch;
- `seeded`: `rap_hf.rollouts.sampling.SeededSampler` (softmax, cumulative sum, binary search on one
  hashed uniform per sequence), then `generate`'s softmax and multinomial over its one-hot scores:
  how the scorer's engine draws per-sample reproducible rollouts (`generate` keeps sampling so that
  it encodes each prompt's images once for its M samples);
- `gumbel` (the baseline this sampler replaced): Gumbel-max noise hashed per vocabulary entry with
  splitmix64 in int64 and two float64 logarithms, then the same softmax and multinomial, as the
  engine drew before.

`seeded / generate` is the sampler's price per step for reproducible, batch-independent rollouts.

Shapes: 40 x 648 is the scoring benchmark's step (8 rows x M = 5, the tiny tokenizer); 80 x 152,064
is 16 rows x M = 5 over Qwen2.5-VL's real vocabulary.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks import write_results


def gumbel_baseline(seeds, step: int, logits):
    """The Gumbel-max draw the seeded sampler used before (kept here as the baseline): noise per
    vocabulary entry from splitmix64 in int64, two float64 logarithms, argmax, one-hot scores."""
    import torch

    from rap_hf.rollouts.sampling import GOLDEN_GAMMA, STEP_GAMMA, mix64, to_unit_interval

    tokens = torch.arange(logits.shape[-1], device=logits.device, dtype=torch.int64)
    step_term = torch.full((1, 1), step, dtype=torch.int64, device=logits.device) * STEP_GAMMA
    uniform = to_unit_interval(mix64(seeds[:, None] * GOLDEN_GAMMA + step_term + mix64(tokens + 1)[None, :]))
    noise = -torch.log(-torch.log(uniform))
    choice = torch.argmax(logits.float() + noise.float(), dim=-1)
    return torch.full_like(logits, float("-inf")).scatter_(-1, choice[:, None], 0.0)


def _per_step_ms(draw: Callable[[int], Any], repeats: int, cuda: bool) -> float:
    """Median milliseconds of one step (steps numbered on, as in decoding)."""
    import torch

    draw(0)
    times = []
    for step in range(1, repeats + 1):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        draw(step)
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure(sequences: int, vocabulary: int, device: str, repeats: int) -> dict[str, Any]:
    import torch

    from rap_hf.rollouts.sampling import SeededSampler, sample_seed

    generator = torch.Generator(device="cpu").manual_seed(0)
    logits = torch.randn(sequences, vocabulary, generator=generator).to(device)
    seeds = [sample_seed(0, f"row{i}", "image", 0) for i in range(sequences)]
    seed_tensor = torch.tensor(seeds, dtype=torch.int64, device=device)
    # The sampler reads the step from the sequence length: views of one buffer, no allocation timed.
    buffer = torch.zeros(sequences, 5 + repeats, dtype=torch.long, device=device)

    def input_ids(step: int):
        return buffer[:, : 4 + step]

    def generate_draw(step: int):
        return torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1)

    sampler = SeededSampler(seeds)
    sampler(input_ids(0), logits)  # fixes the sampler's first step

    def seeded_draw(step: int):
        return torch.multinomial(torch.softmax(sampler(input_ids(step), logits), dim=-1), num_samples=1)

    def gumbel_draw(step: int):
        return torch.multinomial(torch.softmax(gumbel_baseline(seed_tensor, step, logits), dim=-1), num_samples=1)

    cuda = device.startswith("cuda")
    ms = {name: _per_step_ms(fn, repeats, cuda) for name, fn in
          (("generate", generate_draw), ("seeded", seeded_draw), ("gumbel", gumbel_draw))}
    return {"sequences": sequences, "vocabulary": vocabulary, "device": device, "ms_per_step": ms,
            "seeded_over_generate": ms["seeded"] / ms["generate"], "gumbel_over_generate": ms["gumbel"] / ms["generate"],
            "gumbel_over_seeded": ms["gumbel"] / ms["seeded"]}


def main(argv=None) -> dict:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["40x648", "80x152064"], help="SEQUENCESxVOCABULARY")
    parser.add_argument("--repeats", type=int, default=50, help="steps timed per shape and way (CPU: at most 10 "
                                                                 "at the real vocabulary, where a step takes seconds)")
    parser.add_argument("--out", default="benchmarks/results/sampler_speed.json")
    args = parser.parse_args(argv)
    shapes = [tuple(int(x) for x in shape.lower().split("x")) for shape in args.shapes]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    results: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "torch_threads": 1, "cuda": torch.cuda.get_device_name(0)
                    if torch.cuda.is_available() else None},
        "versions": {"torch": torch.__version__}, "repeats": args.repeats, "by_shape": []}
    try:
        print(f"{'device':>6} {'shape':>11} {'generate ms':>12} {'seeded ms':>10} {'gumbel ms':>10} "
              f"{'seeded/generate':>16} {'gumbel/seeded':>14}")
        for device in devices:
            for sequences, vocabulary in shapes:
                repeats = min(args.repeats, 10) if device == "cpu" and vocabulary > 10_000 else args.repeats
                entry = measure(sequences, vocabulary, device, repeats)
                results["by_shape"].append(entry)
                ms = entry["ms_per_step"]
                print(f"{device:>6} {f'{sequences}x{vocabulary}':>11} {ms['generate']:>12.3f} {ms['seeded']:>10.3f} "
                      f"{ms['gumbel']:>10.3f} {entry['seeded_over_generate']:>15.2f}x "
                      f"{entry['gumbel_over_seeded']:>13.1f}x")
    finally:
        torch.set_num_threads(previous_threads)
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()

"""Scoring throughput: `RAPScorer` against a naive scorer and against the bare `generate` floor.

    python -m benchmarks.scoring_speed [--rows 16] [--num-rollouts 5] [--max-new-tokens 32 128]
                                       [--batch-size 8] [--repeats 5] [--threads 1] [--out FILE.json]

The same rows of the embedded visual world, the same tiny random-weight Qwen2.5-VL (one model
object), scored three ways, each doing rollout CDE (M rollouts with and without the image) and ACE
on the first image rollout:

- ours: `RAPScorer(...).map(rows)` (adaptive off, logit-CDE off);
- naive: what a plain user writes: per row and condition, one `model.generate` call with
  `num_return_sequences=M` (the documented way to draw several samples; M calls per condition
  would be slower still, so this is the stronger baseline); the same verifier; for ACE a
  second copy of the model loaded with eager attention and one forward pass per row with
  `output_attentions=True` over all layers. Generation uses the default (sdpa) model, like ours;
- floor: only the work no scorer can avoid: the batched `generate` calls for the same 2 x M
  rollouts (same batch size, length and sampling), plus one plain forward pass per row over prompt
  + first image rollout. Inputs are prepared before the clock starts; no `datasets.map`, no
  verification, no bookkeeping.

A fourth variant, `floor_seeded`, is the floor drawing its samples through the scorer's
per-sample seeded sampler (`rap_hf.rollouts.sampling.SeededSampler`), to tell that sampler's cost
apart from the rest of the scorer's overhead.

Generation lengths are identical across the variants: a random-weight model samples EOS now and
then, and a per-row `generate` call stops as soon as its M samples end while a batched call runs
until its longest sequence ends, which would hand one side shorter work. So the model's generation
config sets `min_new_tokens = max_new_tokens` (the scorer has no such option but `generate` reads
the model's generation config; naive and floor also pass it), and every `generate` call is
metered: the JSON records the tokens each variant generated, which must be equal and contain no
EOS. The vision placeholder tokens are suppressed the same way in all variants (a trained model
never samples them; a random one does, and a sampled `<|image_pad|>` breaks a teacher-forced
pass). Sampling is plain: temperature 1, top-p 1, no top-k.

Clock: wall time (what the goals are judged on) and process CPU time, medians over `--repeats`
runs, the variants interleaved within each repeat (their order rotating from one repeat to the
next), after one untimed warm-up of each. torch runs
one thread by default: this tiny model runs no faster on two (the per-step work is too small to
split), and with one thread the figures stay steady when other jobs share the machine (with two,
OpenMP threads spinning against other processes slowed single runs up to tenfold here). The
breakdown splits each variant's wall time into `generate`, forward passes outside `generate`
(ACE) and the rest; for ours the rest is further split into input preparation (image decoding,
chat template, processor), verification and what remains (datasets.map, ACE scoring, bookkeeping).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The logit-CDE study's model size (text hidden 128, vision hidden 64; 168-pixel pictures = 36
# image tokens), random weights: the benchmark measures cost, not what the model answers.
MODEL_SIZE = dict(text_hidden=128, text_intermediate=256, vision_hidden=64, vision_intermediate=128)
NAIVE_NOTE = ("one generate call per row and condition with num_return_sequences=M (default sdpa model); ACE "
              "with a second, eager-attention copy of the model and output_attentions=True over all layers")
VARIANTS = ("ours", "naive", "floor", "floor_seeded")


def _synchronize(model) -> None:
    """Wait for queued GPU work, so that a clock read afterwards counts it (no-op on CPU)."""
    import torch

    if next(model.parameters()).device.type == "cuda":
        torch.cuda.synchronize()


class Meter:
    """Times a model's `generate` calls and its forward passes outside `generate`; counts new tokens.

    Installed on the model instance (an attribute shadowing `generate`, and forward hooks), so the
    scorer, the naive loop and the floor are measured by the same clock without changing their code.
    """

    def __init__(self, model, forbidden_ids: set[int]):
        self.model = model
        self.forbidden_ids = sorted(forbidden_ids)
        self._generate = model.generate
        self._inside_generate = False
        self._forward_start: float | None = None
        self.reset()
        model.generate = self._timed_generate
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def reset(self) -> None:
        self.generate_seconds = self.forward_seconds = 0.0
        self.generate_calls = self.forward_calls = self.new_tokens = self.forbidden_tokens = 0

    def _timed_generate(self, *args, **kwargs):
        import torch

        _synchronize(self.model)
        start = time.perf_counter()
        self._inside_generate = True
        try:
            output = self._generate(*args, **kwargs)
            _synchronize(self.model)
        finally:
            self._inside_generate = False
        self.generate_seconds += time.perf_counter() - start
        self.generate_calls += 1
        new = output[:, kwargs["input_ids"].shape[1]:]
        self.new_tokens += new.numel()
        # An EOS among the new tokens would mean a rollout ended early (lengths would differ); a
        # vision placeholder would break the teacher-forced ACE pass. Both are suppressed: check it.
        self.forbidden_tokens += int(torch.isin(new, torch.tensor(self.forbidden_ids, device=new.device)).sum())
        return output

    def _pre(self, module, args):
        if not self._inside_generate:
            self._forward_start = time.perf_counter()

    def _post(self, module, args, output):
        if not self._inside_generate and self._forward_start is not None:
            _synchronize(self.model)
            self.forward_seconds += time.perf_counter() - self._forward_start
            self.forward_calls += 1
            self._forward_start = None

    def snapshot(self) -> dict[str, Any]:
        return {"generate_seconds": self.generate_seconds, "forward_seconds": self.forward_seconds,
                "generate_calls": self.generate_calls, "forward_calls": self.forward_calls,
                "new_tokens": self.new_tokens, "forbidden_tokens": self.forbidden_tokens}


class ScorerParts:
    """Times a scorer's input preparation and its verification, through wrappers that only time.

    `prepare_rows` and `verify_rollouts` are looked up at call time in the modules that call them
    (the scorer, the rollout step), so they are swapped there for the benchmark's duration (`close`
    restores them).
    """

    def __init__(self, scorer):
        import rap_hf.scoring.rollout_cde as rollout_module
        import rap_hf.scoring.scorer as scorer_module

        self.prepare_seconds = self.verify_seconds = 0.0
        self._swapped = [(scorer_module, "prepare_rows", scorer_module.prepare_rows, "prepare_seconds"),
                         (rollout_module, "verify_rollouts", rollout_module.verify_rollouts, "verify_seconds")]
        for module, name, original, meter in self._swapped:
            setattr(module, name, self._timed(original, meter))

    def _timed(self, function, meter: str):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                setattr(self, meter, getattr(self, meter) + time.perf_counter() - start)

        return timed

    def reset(self) -> None:
        self.prepare_seconds = self.verify_seconds = 0.0

    def close(self) -> None:
        for module, name, original, _ in self._swapped:
            setattr(module, name, original)


def generation_kwargs(processor, max_new_tokens: int, num_rollouts: int) -> dict[str, Any]:
    """Plain sampling as the scorer configures it (temperature 1, top-p 1, no top-k), fixed length."""
    tokenizer = processor.tokenizer
    return dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, repetition_penalty=1.0,
                max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                num_return_sequences=num_rollouts, pad_token_id=tokenizer.pad_token_id)


def naive_score(model, eager_model, processor, rows, *, num_rollouts: int, max_new_tokens: int) -> list[dict]:
    """RAP scores written the plain way: a loop over rows, one `generate` per row and condition."""
    import torch
    from PIL import Image

    from rap_hf.prompts import build_conversation
    from rap_hf.scoring.ace import attention_confidence, reasoning_span, token_window
    from rap_hf.scoring.cde import verify_rollouts

    device = next(model.parameters()).device
    kwargs = generation_kwargs(processor, max_new_tokens, num_rollouts)
    results = []
    for row in rows:
        image = Image.open(io.BytesIO(row["images"][0]["bytes"])).convert("RGB")
        scores: dict[str, Any] = {"rap_id": row["rap_id"]}
        for condition in ("image", "text"):
            messages = build_conversation(row["question"], 1, with_images=condition == "image")
            text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            inputs = processor(text=[text], images=[[image]] if condition == "image" else None,
                               return_tensors="pt").to(device)
            with torch.no_grad():
                output = model.generate(**inputs, **kwargs)
            prompt_length = inputs["input_ids"].shape[1]
            responses = processor.batch_decode(output[:, prompt_length:], skip_special_tokens=True)
            correct, _ = verify_rollouts(responses, row["answer"])
            scores[f"acc_{condition}"] = sum(correct) / len(correct)
            if condition == "image":
                prompt_text, first_response, first_length = text, responses[0], prompt_length
        scores["cde"] = scores["acc_image"] - scores["acc_text"]
        # ACE: the whole teacher-forced sequence again, every layer's attention weights returned.
        inputs = processor(text=[prompt_text + first_response], images=[[image]], return_tensors="pt").to(device)
        with torch.no_grad():
            attentions = eager_model(**inputs, output_attentions=True).attentions
        offsets = processor.tokenizer(first_response, add_special_tokens=False,
                                      return_offsets_mapping=True)["offset_mapping"]
        start, end = token_window(offsets, reasoning_span(first_response), first_length)
        length = attentions[-1].shape[-1]
        scores["ace"], _ = attention_confidence(attentions[-1][0], (min(start, length), min(end, length)))
        results.append(scores)
    return results


def prepare_floor(processor, rows, batch_size: int, device) -> list[tuple[dict, dict, list[dict]]]:
    """The floor's inputs, built before its clock starts: per chunk the two left-padded prompt
    batches, and per row its encoded image prompt (for the ACE forward pass)."""
    from rap_hf.data.images import decode_row_images
    from rap_hf.prompts import render_prompt
    from rap_hf.rollouts import Prompt
    from rap_hf.rollouts.transformers_engine import encode, processor_inputs

    chunks = []
    for begin in range(0, len(rows), batch_size):
        part = rows.select(range(begin, min(begin + batch_size, len(rows))))
        image_prompts, text_prompts = [], []
        for row in part:
            images = decode_row_images(row["images"], row["rap_id"])
            image_prompts.append(Prompt(render_prompt(processor, row["question"], len(images)), images))
            text_prompts.append(Prompt(render_prompt(processor, row["question"], len(images), with_images=False)))
        encoded = [{k: v.to(device) for k, v in encode(processor, p).items()} for p in image_prompts]
        chunks.append((processor_inputs(processor, image_prompts, device),
                       processor_inputs(processor, text_prompts, device), encoded))
    return chunks


def floor_score(model, processor, chunks, *, num_rollouts: int, max_new_tokens: int,
                seeds: list[tuple[list[int], list[int]]] | None = None) -> int:
    """The bare work: batched `generate` for both conditions, one forward pass per row. Returns rows.

    With `seeds` (per chunk, the flat sample seeds of the image and the text batch), samples are
    drawn through the scorer's `SeededSampler` instead of generate's own sampling, with the same
    `generate` arguments the scorer's engine passes.
    """
    import torch

    from rap_hf.rollouts.sampling import SeededSampler

    kwargs = generation_kwargs(processor, max_new_tokens, num_rollouts)
    seeded = lambda flat_seeds: {**kwargs, **SeededSampler(flat_seeds).generate_kwargs()}  # noqa: E731
    done = 0
    with torch.inference_mode():
        for c, (image_inputs, text_inputs, encoded) in enumerate(chunks):
            image_output = model.generate(**image_inputs, **(kwargs if seeds is None else seeded(seeds[c][0])))
            model.generate(**text_inputs, **(kwargs if seeds is None else seeded(seeds[c][1])))
            prompt_length = image_inputs["input_ids"].shape[1]
            for k, prompt in enumerate(encoded):
                response = image_output[k * num_rollouts, prompt_length:][None]
                n = prompt["input_ids"].shape[1]
                inputs = dict(prompt)
                for key, value in prompt.items():  # extend the per-token tensors by the response
                    if torch.is_tensor(value) and value.shape == (1, n):
                        tail = response if key == "input_ids" else (
                            torch.ones_like(response) if key == "attention_mask" else torch.zeros_like(response))
                        inputs[key] = torch.cat([value, tail.to(value.dtype)], dim=1)
                model(**inputs, logits_to_keep=1)
            done += len(encoded)
    _synchronize(model)
    return done


def floor_seeds(rows, batch_size: int, num_rollouts: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """Per chunk, the scorer's sample seeds of the image and the text batch (rows x M, flat)."""
    from rap_hf.rollouts.sampling import sample_seed

    ids = list(rows["rap_id"])
    chunks = []
    for begin in range(0, len(ids), batch_size):
        part = ids[begin : begin + batch_size]
        chunks.append(tuple([sample_seed(seed, i, condition, j) for i in part for j in range(num_rollouts)]
                            for condition in ("image", "text")))
    return chunks


def _timed(fn: Callable[[], Any], meters: list[Meter], parts: ScorerParts | None) -> dict[str, Any]:
    """Run `fn` once: wall and CPU seconds, and the wall-time breakdown from the meters."""
    for meter in meters:
        meter.reset()
    if parts is not None:
        parts.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    totals = meters[0].snapshot()
    for meter in meters[1:]:  # the naive ACE forward passes run on the eager copy
        for key, value in meter.snapshot().items():
            totals[key] += value
    breakdown = {"generate": totals["generate_seconds"], "forward": totals["forward_seconds"]}
    rest = wall - breakdown["generate"] - breakdown["forward"]
    if parts is not None:
        breakdown.update(prepare=parts.prepare_seconds, verify=parts.verify_seconds)
        rest -= parts.prepare_seconds + parts.verify_seconds
    breakdown["rest"] = rest
    return {"wall": wall, "cpu": cpu, "breakdown": breakdown, "new_tokens": totals["new_tokens"],
            "forbidden_tokens": totals["forbidden_tokens"], "generate_calls": totals["generate_calls"],
            "forward_calls": totals["forward_calls"]}


def machine_info() -> dict[str, Any]:
    import torch

    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_average": list(os.getloadavg())}


def versions() -> dict[str, str]:
    import datasets
    import torch
    import transformers

    from rap_hf import __version__

    return {"rap_hf": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "datasets": datasets.__version__}


def main(argv=None) -> dict:
    import datasets
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=16, help="world rows scored by each variant")
    parser.add_argument("--num-rollouts", type=int, default=5, help="M, per row and condition")
    parser.add_argument("--max-new-tokens", type=int, nargs="+", default=[32, 128],
                        help="one measurement per length (every rollout has exactly this many tokens)")
    parser.add_argument("--batch-size", type=int, default=8, help="rows per generate call (ours and floor)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (see the module docstring)")
    parser.add_argument("--image-size", type=int, default=168, help="picture side; 168 px = 36 image tokens")
    parser.add_argument("--out", default="benchmarks/results/scoring_speed.json")
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        with tempfile.TemporaryDirectory(prefix="rap-scoring-speed-") as work:
            results = run(args, Path(work))
    finally:
        torch.set_num_threads(previous_threads)
    write_results(args.out, results)
    return results


def run(args: argparse.Namespace, work: Path) -> dict:
    """Build the model (in `work`) and rows, time every variant at every length; the results as a dict."""
    import torch
    from transformers import AutoModelForImageTextToText

    from rap_hf import RAPConfig, RAPScorer
    from rap_hf.data.synthetic import make_visual_world
    from rap_hf import modeling
    from rap_hf.modeling import load_vlm, pick_device, pick_dtype
    from rap_hf.testing import build_tiny_vlm

    folder = build_tiny_vlm("qwen2_5_vl", work / "model", seed=0, image_size=args.image_size, **MODEL_SIZE)
    rows = make_visual_world(2 * args.rows, seed=0, test_fraction=0.5, image_size=args.image_size)["test"]
    device = pick_device(None)
    dtype = pick_dtype("auto", device)

    results: dict[str, Any] = {
        "machine": machine_info(), "versions": versions(),
        "settings": {"rows": len(rows), "num_rollouts": args.num_rollouts, "batch_size": args.batch_size,
                     "repeats": args.repeats, "threads": torch.get_num_threads(), "image_size": args.image_size,
                     "model": {"kind": "qwen2_5_vl", **MODEL_SIZE}, "device": str(device),
                     "dtype": str(dtype).replace("torch.", ""), "sampling": "temperature 1.0, top_p 1.0, top_k 0",
                     "generation_length": "min_new_tokens = max_new_tokens in the model's generation config "
                                          "(every rollout exactly max_new_tokens tokens, checked)",
                     "naive": NAIVE_NOTE},
        "goals": {"min_speedup_vs_naive": 5.0, "max_ratio_to_floor": 1.15, "judged_on": "wall-time medians"},
        "by_length": [],
    }
    # The scorer loads through load_vlm's per-process cache with this same key: one model object.
    model, processor = load_vlm(str(folder), device=device, dtype=dtype)
    eager_model = AutoModelForImageTextToText.from_pretrained(str(folder), dtype=dtype,
                                                              attn_implementation="eager").to(device).eval()
    eos = model.generation_config.eos_token_id
    # A random-weight model samples special tokens a trained one never emits; a sampled
    # <|image_pad|> would add an image placeholder without features to the teacher-forced ACE input
    # of the floor (the scorer and the naive loop re-tokenize decoded text, which drops it).
    placeholders = [model.config.image_token_id, model.config.video_token_id,
                    model.config.vision_start_token_id, model.config.vision_end_token_id]
    model.generation_config.suppress_tokens = placeholders
    meter = Meter(model, {*placeholders, *(eos if isinstance(eos, list) else [eos])})
    eager_meter = Meter(eager_model, set())
    chunks = prepare_floor(processor, rows, args.batch_size, device)
    seeds = floor_seeds(rows, args.batch_size, args.num_rollouts)
    print(f"{len(rows)} rows, M = {args.num_rollouts}, batch {args.batch_size}, {device} {dtype}, "
          f"{torch.get_num_threads()} thread(s); wall-time medians of {args.repeats}")
    print(f"{'new tokens':>10} {'ours rows/s':>12} {'naive rows/s':>13} {'floor rows/s':>13} "
          f"{'vs naive':>9} {'/ floor':>8}")
    for max_new_tokens in args.max_new_tokens:
        # Fixed-length rollouts: the scorer has no min_new_tokens option, but generate reads the
        # model's generation config (saved too, should anything reload the folder).
        model.generation_config.min_new_tokens = max_new_tokens
        model.generation_config.save_pretrained(folder)
        # The processor's own resolution, as the naive and floor variants use it: the same work for all.
        config = RAPConfig(num_rollouts=args.num_rollouts, max_new_tokens=max_new_tokens, batch_size=args.batch_size,
                           compute_logit_cde=False, adaptive=False, min_pixels=None, max_pixels=None)
        scorer = RAPScorer(str(folder), config)
        generate = dict(num_rollouts=args.num_rollouts, max_new_tokens=max_new_tokens)
        variants: dict[str, Callable[[], Any]] = {
            "ours": lambda: scorer.map(rows, batch_size=args.batch_size, load_from_cache_file=False),
            "naive": lambda: naive_score(model, eager_model, processor, rows, **generate),
            "floor": lambda: floor_score(model, processor, chunks, **generate),
            "floor_seeded": lambda: floor_score(model, processor, chunks, **generate, seeds=seeds),
        }
        # Warm-up (untimed): lazy imports, first-call set-up, the scorer's model digest.
        warm = rows.select(range(min(args.batch_size, len(rows))))
        scored = scorer.map(warm, batch_size=args.batch_size, load_from_cache_file=False)
        if scorer.scoring_model.model is not model:
            raise AssertionError("the scorer loaded its own model: the comparison would not share one")
        if any(scored["rap_error"]):
            raise AssertionError(f"the scorer failed rows: {scored['rap_error']}")
        naive_score(model, eager_model, processor, warm.select(range(1)), **generate)
        floor_score(model, processor, chunks[:1], **generate)

        parts = ScorerParts(scorer)
        runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
        try:
            for repeat in range(args.repeats):
                # Rotate the order: a slow spell of the machine should not always hit the same variant.
                for name in VARIANTS[repeat % len(VARIANTS):] + VARIANTS[:repeat % len(VARIANTS)]:
                    meters = [meter, eager_meter] if name == "naive" else [meter]
                    runs[name].append(_timed(variants[name], meters, parts if name == "ours" else None))
        finally:
            parts.close()
        results["by_length"].append(_summarise(runs, len(rows), args.num_rollouts, max_new_tokens, results["goals"]))
        _print_entry(results["by_length"][-1])
    results["machine"]["load_average_after"] = list(os.getloadavg())
    # load_vlm keeps the model for the process's lifetime; this folder is about to go.
    modeling.clear_vlm_cache(model)
    return results


def _summarise(runs: dict[str, list[dict]], rows: int, m: int, max_new_tokens: int, goals: dict) -> dict:
    """Medians, ratios and checks of one generation length."""
    tokens = {name: runs[name][0]["new_tokens"] for name in VARIANTS}
    expected = rows * 2 * m * max_new_tokens
    if set(tokens.values()) != {expected} or any(r["forbidden_tokens"] for rs in runs.values() for r in rs):
        raise AssertionError(f"generation lengths differ: {tokens} tokens (expected {expected} each)")
    wall = {name: statistics.median(r["wall"] for r in runs[name]) for name in VARIANTS}
    cpu = {name: statistics.median(r["cpu"] for r in runs[name]) for name in VARIANTS}
    paired = lambda a, b: statistics.median(x["wall"] / y["wall"] for x, y in zip(runs[a], runs[b]))  # noqa: E731
    breakdown = {name: {part: statistics.median(r["breakdown"][part] for r in runs[name])
                        for part in runs[name][0]["breakdown"]} for name in VARIANTS}
    ours, floor = breakdown["ours"], breakdown["floor"]
    entry = {
        "max_new_tokens": max_new_tokens,
        "seconds": {name: {"median": wall[name], "runs": [r["wall"] for r in runs[name]]} for name in VARIANTS},
        "cpu_seconds": {name: {"median": cpu[name], "runs": [r["cpu"] for r in runs[name]]} for name in VARIANTS},
        "rows_per_second": {name: rows / wall[name] for name in VARIANTS},
        "generated_tokens": tokens,
        "calls": {name: {"generate": runs[name][0]["generate_calls"], "forward": runs[name][0]["forward_calls"]}
                  for name in VARIANTS},
        "breakdown_seconds": breakdown,
        "speedup_vs_naive": wall["naive"] / wall["ours"],
        "ratio_to_floor": wall["ours"] / wall["floor"],
        "cpu_speedup_vs_naive": cpu["naive"] / cpu["ours"],
        "cpu_ratio_to_floor": cpu["ours"] / cpu["floor"],
        "paired_speedup_vs_naive": paired("naive", "ours"),
        "paired_ratio_to_floor": paired("ours", "floor"),
        # No batched scorer can beat the floor: this is the most any could gain over naive here.
        "floor_speedup_vs_naive": wall["naive"] / wall["floor"],
        "seeded_sampler_ratio": wall["floor_seeded"] / wall["floor"],
        # Where ours spends its time beyond the floor (seconds, medians; the parts need not add up exactly).
        "excess_over_floor_seconds": {
            "total": wall["ours"] - wall["floor"],
            "generate (seeded sampler, engine)": ours["generate"] - floor["generate"],
            "ace_forward (eager one-layer capture)": ours["forward"] - floor["forward"],
            "prepare (images, chat template, processor)": ours["prepare"],
            "verify": ours["verify"],
            "rest (datasets.map, ACE scoring, bookkeeping)": ours["rest"] - floor["rest"],
        },
    }
    entry["goals_met"] = {"speedup_vs_naive": entry["speedup_vs_naive"] >= goals["min_speedup_vs_naive"],
                          "ratio_to_floor": entry["ratio_to_floor"] <= goals["max_ratio_to_floor"]}
    return entry


def _print_entry(entry: dict) -> None:
    rate = entry["rows_per_second"]
    print(f"{entry['max_new_tokens']:>10} {rate['ours']:>12.2f} {rate['naive']:>13.2f} {rate['floor']:>13.2f} "
          f"{entry['speedup_vs_naive']:>8.2f}x {entry['ratio_to_floor']:>7.2f}x")
    for name in VARIANTS:
        parts = " + ".join(f"{part} {value:.2f}" for part, value in entry["breakdown_seconds"][name].items())
        print(f"{'':>12}{name}: {entry['seconds'][name]['median']:.2f} s = {parts}")
    print(f"{'':>12}floor vs naive {entry['floor_speedup_vs_naive']:.2f}x; seeded sampler costs the floor "
          f"{entry['seeded_sampler_ratio']:.2f}x; CPU-time ratios: vs naive {entry['cpu_speedup_vs_naive']:.2f}x, "
          f"/ floor {entry['cpu_ratio_to_floor']:.2f}x")


if __name__ == "__main__":
    main()

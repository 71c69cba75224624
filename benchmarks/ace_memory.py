"""ACE memory: one-layer hook capture against `output_attentions=True` over all layers.

    python -m benchmarks.ace_memory [--layers 12] [--tokens 2048] [--out FILE.json]

A tiny Qwen2.5-VL grown to `--layers` text layers scores one teacher-forced sequence of about
`--tokens` tokens (a prompt with a picture, then a long response), the pass ACE makes per row.
Three variants, each in a fresh Python process so that no allocator cache or earlier peak carries
over:

- `forward`: the plain forward pass (sdpa attention, no weights returned): what any pass costs;
- `hook`: `rap_hf.scoring.ace.capture_attention` (only the last layer runs eager attention, its
  weights caught by a forward hook);
- `hook_and_score`: the hook capture, then ACE's column score over the response window
  (`attention_confidence`), i.e. the whole per-row ACE step of the scorer;
- `all_layers`: the model loaded with eager attention, `output_attentions=True`, last layer kept.

All pass `logits_to_keep=1`, as the scorer does. Peak memory is the rise over the process's
resident memory just before the pass: on Linux the kernel's high-water mark (VmHWM) is reset
through /proc/self/clear_refs, so the figure is the pass's own peak (tracemalloc cannot be used:
torch's allocator bypasses Python's, so a 64 MiB tensor shows up there as a few hundred bytes,
and ru_maxrss cannot be reset). glibc's dynamic mmap threshold is pinned so that freed tensors go
back to the system instead of staying in the heap. With a GPU, `torch.cuda.max_memory_allocated`
minus the memory allocated before the pass is measured too. The run also checks that the hook
variant returns the same last-layer weights as `output_attentions`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VARIANTS = ("forward", "hook", "hook_and_score", "all_layers")
MIB = 2**20


def _status_mib() -> dict[str, float]:
    """VmRSS and VmHWM (peak resident memory since the last reset) of this process, in MiB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024 / MIB
    return values


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(variant: str, folder: str, inputs_path: str, device: str, dtype: str, out: str) -> None:
    """One variant's pass in this (fresh) process; writes its measurements and a slice of the weights."""
    import gc

    import torch
    from transformers import AutoModelForImageTextToText

    from rap_hf.scoring.ace import attention_confidence, capture_attention

    torch_dtype = getattr(torch, dtype)
    attention = "eager" if variant == "all_layers" else "sdpa"
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch_dtype, attn_implementation=attention)
    model.to(device).eval()
    inputs = {k: v.to(device) for k, v in torch.load(inputs_path).items()}
    window = tuple(json.loads(Path(inputs_path).with_suffix(".json").read_text())["window"])
    inputs["logits_to_keep"] = 1
    cuda = device.startswith("cuda")
    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_before = torch.cuda.memory_allocated()
    before = _status_mib()
    can_reset = _reset_peak()
    start = time.perf_counter()
    with torch.inference_mode():
        if variant == "forward":
            model(**inputs)
            weights = None
        elif variant in ("hook", "hook_and_score"):
            weights = capture_attention(model, inputs, layer=-1)
            if variant == "hook_and_score":
                attention_confidence(weights[0], window)
        else:
            weights = model(**inputs, output_attentions=True).attentions[-1]
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    after = _status_mib()
    result: dict[str, Any] = {
        "variant": variant, "seconds": seconds, "tokens": int(inputs["input_ids"].shape[1]),
        "rss_before_mib": before["VmRSS"],
        "peak_rise_mib": (after["VmHWM"] - before["VmRSS"]) if can_reset else None,
        "peak_reset": can_reset,
    }
    if cuda:
        result["cuda_peak_rise_mib"] = (torch.cuda.max_memory_allocated() - cuda_before) / MIB
    if weights is not None:
        result["weights_shape"] = list(weights.shape)
        torch.save(weights[0, :, -4:, :].float().cpu().clone(), out + ".weights.pt")
    Path(out).write_text(json.dumps(result))


def build_inputs(folder: Path, tokens: int, path: Path) -> int:
    """Save one teacher-forced ACE input of about `tokens` tokens (picture prompt + long response),
    and beside it (`.json`) the response's reasoning window."""
    import random

    import torch
    from transformers import AutoProcessor

    from rap_hf.data.images import decode_row_images
    from rap_hf.data.synthetic import COLOURS, SHAPES, make_visual_world
    from rap_hf.prompts import render_prompt
    from rap_hf.rollouts import Prompt
    from rap_hf.scoring.ace import reasoning_span, token_window
    from rap_hf.scoring.teacher_forcing import teacher_forced_inputs, tokenize_continuation

    processor = AutoProcessor.from_pretrained(folder)
    row = make_visual_world(2, seed=0, image_size=168)["test"][0]
    prompt = Prompt(render_prompt(processor, row["question"], 1), decode_row_images(row["images"], row["rap_id"]))
    prompt_tokens = processor(text=[prompt.text], images=[prompt.images], return_tensors="pt")["input_ids"].shape[1]
    rng = random.Random(0)
    words = [*COLOURS, *SHAPES, "so", "the", "count", "is", "I", "see", "therefore", "."]
    tail = " </think> The answer is \\boxed{red}."
    budget = max(16, tokens - prompt_tokens - len(tokenize_continuation(processor.tokenizer, tail).ids))
    reasoning = "<think>"
    while len(tokenize_continuation(processor.tokenizer, reasoning).ids) < budget:
        reasoning += " " + " ".join(rng.choice(words) for _ in range(50))
    # Cut the reasoning at its budget-th token, so the whole sequence is about `tokens` long.
    cut = tokenize_continuation(processor.tokenizer, reasoning).offsets[budget - 1][1]
    response = reasoning[:cut] + tail
    continuation = tokenize_continuation(processor.tokenizer, response)
    inputs, (start,) = teacher_forced_inputs(processor, [prompt], [continuation], "cpu")
    torch.save(inputs, path)
    window = token_window(continuation.offsets, reasoning_span(response), start)
    path.with_suffix(".json").write_text(json.dumps({"window": list(window)}))
    return int(inputs["input_ids"].shape[1])


def run_variant(variant: str, folder: Path, inputs_path: Path, device: str, dtype: str, work: Path,
                in_process: bool = False) -> dict:
    """One variant's measurements, from a fresh Python process (or this one, for smoke tests)."""
    out = work / f"{variant}.json"
    if in_process:
        child(variant, str(folder), str(inputs_path), device, dtype, str(out))
        return json.loads(out.read_text())
    env = dict(os.environ)
    # Freed tensors must leave the resident set: a fixed mmap threshold stops glibc from raising it
    # (and then keeping big freed blocks in its heap) after the first large free.
    env["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)
    code = ("import sys; from benchmarks.ace_memory import child; "
            f"child({variant!r}, {str(folder)!r}, {str(inputs_path)!r}, {device!r}, {dtype!r}, {str(out)!r})")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ACE memory variant {variant!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12, help="text decoder layers of the grown tiny model")
    parser.add_argument("--tokens", type=int, default=2048, help="length of the teacher-forced sequence")
    parser.add_argument("--heads", type=int, default=4, help="attention heads of the text model")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process (smoke tests only: freed memory may stay cached, the figures "
                             "are not truthful; and a process spends seconds importing torch)")
    parser.add_argument("--out", default="benchmarks/results/ace_memory.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rap-ace-memory-") as work:
        results = measure(args, Path(work))
    write_results(args.out, results)
    return results


def measure(args: argparse.Namespace, work: Path) -> dict:
    """Build the grown model and its input in `work`, measure every variant; the results as a dict."""
    import torch

    from benchmarks.scoring_speed import machine_info, versions
    from rap_hf.testing import build_tiny_vlm

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = "bfloat16" if device.startswith("cuda") else "float32"
    folder = build_tiny_vlm("qwen2_5_vl", work / "model", seed=0, text_layers=args.layers, text_heads=args.heads,
                            text_kv_heads=max(1, args.heads // 2), text_hidden=32 * args.heads,
                            text_intermediate=64 * args.heads, image_size=168,
                            max_position_embeddings=max(4096, 2 * args.tokens))
    tokens = build_inputs(folder, args.tokens, work / "inputs.pt")
    window = json.loads((work / "inputs.json").read_text())["window"]
    measured = {variant: run_variant(variant, folder, work / "inputs.pt", device, dtype, work, args.in_process)
                for variant in VARIANTS}

    hook_weights = torch.load(work / "hook.json.weights.pt")
    all_weights = torch.load(work / "all_layers.json.weights.pt")
    element = torch.finfo(getattr(torch, dtype)).bits // 8
    one_layer = args.heads * tokens * tokens * element / MIB  # one layer's [1, heads, T, T] weights
    results: dict[str, Any] = {
        "machine": machine_info(), "versions": versions(),
        "settings": {"layers": args.layers, "heads": args.heads, "tokens": tokens, "device": device, "dtype": dtype,
                     "model": "tiny qwen2_5_vl, random weights", "logits_to_keep": 1,
                     "ace_window": window, "ace_window_tokens": window[1] - window[0]},
        "method": "peak resident memory rise over the pass (VmHWM reset via /proc/self/clear_refs), "
                  + ("in one process (smoke test)" if args.in_process else "fresh process per variant")
                  + "; CUDA: max_memory_allocated rise",
        "one_layer_weights_mib": one_layer,
        "all_layers_weights_mib": one_layer * args.layers,
        "variants": measured,
        "same_last_layer_weights": bool(torch.allclose(hook_weights, all_weights, atol=1e-5 if dtype == "float32" else 1e-2)),
    }
    peak = {v: measured[v]["peak_rise_mib"] for v in VARIANTS}
    if all(value is not None for value in peak.values()):
        ratio = lambda a, b: a / b if b > 0 else None  # noqa: E731 (a tiny smoke run may not move the mark)
        results["cpu"] = {
            "peak_rise_mib": peak,
            "ratio_all_layers_to_hook": ratio(peak["all_layers"], peak["hook"]),
            "ratio_over_forward": ratio(peak["all_layers"] - peak["forward"], peak["hook"] - peak["forward"]),
            "ratio_all_layers_to_hook_and_score": ratio(peak["all_layers"], peak["hook_and_score"]),
            # The all-layer pass holds every layer's weights at its end: a truthful peak is at least that.
            "all_layers_peak_covers_its_weights": peak["all_layers"] >= one_layer * args.layers,
        }
    if device.startswith("cuda"):
        cuda_peak = {v: measured[v]["cuda_peak_rise_mib"] for v in VARIANTS}
        results["cuda"] = {"peak_rise_mib": cuda_peak,
                           "ratio_all_layers_to_hook": cuda_peak["all_layers"] / cuda_peak["hook"]}
    print(f"{args.layers} layers, {args.heads} heads, {tokens} tokens, {device} {dtype}; one layer's weights "
          f"{one_layer:.0f} MiB, all layers' {one_layer * args.layers:.0f} MiB")
    print(f"{'variant':>14} {'peak rise (MiB)':>16} {'seconds':>8}")
    for variant in VARIANTS:
        value = measured[variant]["peak_rise_mib"]
        shown = f"{value:.0f}" if value is not None else "n/a"
        print(f"{variant:>14} {shown:>16} {measured[variant]['seconds']:>8.2f}")
    if "cpu" in results:
        shown = {k: f"{v:.1f}x" if v is not None else "n/a"
                 for k, v in results["cpu"].items() if k.startswith("ratio")}
        print(f"all layers / hook: {shown['ratio_all_layers_to_hook']} (over a plain forward: "
              f"{shown['ratio_over_forward']}; all layers / hook + ACE scoring: "
              f"{shown['ratio_all_layers_to_hook_and_score']}); same last-layer weights: "
              f"{results['same_last_layer_weights']}")
    return results


if __name__ == "__main__":
    main()

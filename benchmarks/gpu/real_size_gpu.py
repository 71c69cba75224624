"""GPU check of RAP scoring on a Qwen2.5-VL model of real size (the published 3B's dimensions).

    python -m benchmarks.gpu.real_size_gpu [--rows 32] [--max-new-tokens 256] [--out DIR] [--no-floor]
    python -m benchmarks.gpu.real_size_gpu --dry-run     # the same code paths, scaled down, on CPU

Nothing is downloaded: the model is built from the published Qwen2.5-VL-3B-Instruct dimensions with
random weights, straight on the GPU in bfloat16 (the text vocabulary stays the small offline
tokenizer's, so the output head is smaller than the real one: about 8 % of the 3B's parameters).
It measures, and writes to one JSON:
- first, on a clean GPU, `benchmarks.scoring_speed` on CUDA (tiny model, 32 rows, batch 16, 128
  tokens, 3 repeats): `RAPScorer` against the naive loop and the bare `generate` floor, and the
  seeded sampler's own cost (its full JSON beside this one, its ratios under "floor");
- rollouts per second of the transformers engine through `RAPScorer` (M = 5 per condition, ACE
  on), and that every row gets valid scores;
- under "through_server", the same rows through an OpenAI-protocol server (`backend="server"`): the
  model is saved to a folder (servers load checkpoints, not model objects), the in-memory copy is
  freed, `transformers serve` serves the folder (or `--server-url` names a server already serving it,
  e.g. `vllm serve FOLDER`), and `RAPScorer` rolls out through it (ACE off: step 2 measured it).
  `--dry-run` takes the same path on CPU;
- peak GPU memory of ACE's one-layer capture against `output_attentions=True` over all layers, on one
  2k-token sequence.
Exit code 1 when a check fails.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# Qwen/Qwen2.5-VL-3B-Instruct's config.json (text and vision towers).
QWEN2_5_VL_3B = dict(
    mrope_section=[16, 24, 24],
    text=dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
              num_key_value_heads=2),
    vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                fullatt_block_indexes=[7, 15, 23, 31]),
)
# Scaled down for --dry-run on a CPU: the same code, minutes become seconds.
DRY_RUN = dict(
    text=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
              num_key_value_heads=2),
    vision=dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=128,
                fullatt_block_indexes=[1]),
)


def build_model(dims: dict, image_size: int, device, dtype):
    """A Qwen2.5-VL with `dims`, random weights, built on `device`; the offline tiny processor."""
    import torch
    from transformers import AutoConfig, AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from rap_hf.testing import build_tiny_vlm

    folder = build_tiny_vlm("qwen2_5_vl", Path(tempfile.mkdtemp()) / "processor", image_size=image_size)
    values = AutoConfig.from_pretrained(folder).to_dict()  # token ids, RoPE, processor geometry
    text, vision = values["text_config"], values["vision_config"]
    text.update(dims["text"])
    text.pop("layer_types", None)  # derived from the layer count when the config is rebuilt
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    text["head_dim"] = head_dim
    half = head_dim // 2  # multimodal RoPE splits the rotary half over (time, height, width)
    text["rope_parameters"]["mrope_section"] = dims.get("mrope_section") or [half - 2 * (half // 3), half // 3,
                                                                              half // 3]
    vision.update(dims["vision"])
    config = AutoConfig.for_model(**values)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.eval()
    return model, AutoProcessor.from_pretrained(folder)


def score_rollouts(model, processor, rows, *, num_rollouts: int, max_new_tokens: int, batch_size: int,
                   server_url: str | None = None, extra_body: dict | None = None) -> dict:
    """Score `rows` with `RAPScorer` and check the scores: in process (`model`: a loaded model), or
    through the server at `server_url` (`model`: the saved folder it serves, ACE run here on it;
    `extra_body`: fields every request carries)."""
    from rap_hf import RAPConfig, RAPScorer

    backend = "server" if server_url else "transformers"
    # Through a server the rollouts are what is measured (ACE here is step 2's pass again); transformers
    # serve's Qwen response parser also drops a random model's text, which would leave ACE nothing to read.
    through = dict(server_urls=[server_url], server_concurrency=4 * batch_size,
                   server_extra_body=extra_body) if server_url else {}
    config = RAPConfig(num_rollouts=num_rollouts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                       backend=backend, compute_ace=not server_url, compute_logit_cde=False, **through)
    scorer = RAPScorer(model, config, processor=processor)
    start = time.perf_counter()
    scored = scorer.map(rows, batch_size=batch_size, load_from_cache_file=False,
                        new_fingerprint=f"real-size-{backend}-{time.time_ns()}")
    seconds = time.perf_counter() - start
    errors = [e for e in scored["rap_error"] if e]
    cde = [c for c in scored["rap_cde"] if c is not None]
    ace = [a for a in scored["rap_ace"] if a is not None] if config.compute_ace else None
    lengths = [len(processor.tokenizer(r).input_ids) for rs in scored["rap_responses_image"] for r in rs]
    rollouts = 2 * num_rollouts * len(rows)
    return {
        "backend": backend, "rows": len(rows), "rollouts": rollouts, "seconds": round(seconds, 2),
        "rows_per_second": round(len(rows) / seconds, 3), "rollouts_per_second": round(rollouts / seconds, 2),
        "mean_response_tokens_retokenized": round(sum(lengths) / max(len(lengths), 1), 1), "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "valid": not errors and len(cde) == len(rows) and all(-1 <= c <= 1 for c in cde)
        and (ace is None or (len(ace) == len(rows) and all(math.isfinite(a) for a in ace))),
    }


def floor_comparison(out: Path, *, dry_run: bool) -> dict:
    """`benchmarks.scoring_speed` at the settings of its H200 run (tiny ones in a dry run): the ratios."""
    from benchmarks import scoring_speed

    settings = (["--rows", "4", "--batch-size", "4", "--repeats", "1", "--max-new-tokens", "8"] if dry_run
                else ["--rows", "32", "--batch-size", "16", "--repeats", "3", "--max-new-tokens", "128"])
    name = "scoring_speed_dry_run.json" if dry_run else "scoring_speed_gpu.json"
    start = time.perf_counter()
    results = scoring_speed.main([*settings, "--out", str(out / name)])
    entry = results["by_length"][0]
    return {"json": name, "settings": settings, "seconds": round(time.perf_counter() - start, 1),
            "rows_per_second": entry["rows_per_second"], "speedup_vs_naive": round(entry["speedup_vs_naive"], 2),
            "ratio_to_floor": round(entry["ratio_to_floor"], 3),
            "seeded_sampler_ratio": round(entry["seeded_sampler_ratio"], 3), "goals_met": entry["goals_met"]}


def through_server(folder: str, processor, rows, settings: dict, server_url: str | None) -> dict:
    """`score_rollouts` through `server_url`, or through `transformers serve` started on `folder` here."""
    from benchmarks.served import Served

    if server_url:
        return {"server": server_url, **score_rollouts(folder, processor, rows, server_url=server_url, **settings)}
    start = time.perf_counter()
    # Plain sampling, as in process: transformers serve otherwise keeps GenerationConfig's top_k = 50.
    plain = {"generation_config": json.dumps({"top_k": 0})}
    with Served(folder, threads=os.cpu_count() or 1) as served:
        started = round(time.perf_counter() - start, 1)
        return {"server": "transformers serve", "server_start_seconds": started,
                **score_rollouts(folder, processor, rows, server_url=served.url, extra_body=plain, **settings)}


def ace_memory(model, processor, sequence_tokens: int, device) -> dict:
    """Peak memory of one teacher-forced pass over a `sequence_tokens` sequence: one layer captured
    by ACE's hook against all layers' attentions (`output_attentions=True`, eager)."""
    import torch

    from rap_hf.scoring.ace import capture_attention

    vocab = len(processor.tokenizer)
    ids = torch.randint(10, vocab - 10, (1, sequence_tokens), device=device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    on_cuda = str(device).startswith("cuda")

    def peak(run) -> float | None:
        if not on_cuda:
            with torch.no_grad():
                run()
            return None
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with torch.no_grad():
            out = run()
        torch.cuda.synchronize()
        del out
        return (torch.cuda.max_memory_allocated() - before) / 2**20

    one = peak(lambda: capture_attention(model, inputs, layer=-1))
    previous = model.config.text_config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        every = peak(lambda: model(**inputs, output_attentions=True).attentions)
    finally:
        model.set_attn_implementation(previous)
    return {"sequence_tokens": sequence_tokens, "one_layer_mib": one, "all_layers_mib": every,
            "ratio_all_over_one": round(every / one, 1) if one and every else None}


def main(argv=None) -> int:
    import torch

    from rap_hf import make_visual_world

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--num-rollouts", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=448, help="448 px = 256 image tokens per picture")
    parser.add_argument("--ace-tokens", type=int, default=2048)
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the scoring_speed comparison with the floor (about 3 minutes on an H200)")
    parser.add_argument("--dry-run", action="store_true", help="scaled down, on CPU: checks the code paths")
    parser.add_argument("--server-url", default=None,
                        help="a server already serving the saved folder (default: start `transformers serve` on it)")
    parser.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results"))
    args = parser.parse_args(argv)
    if args.dry_run:
        args.rows, args.max_new_tokens, args.batch_size, args.image_size, args.ace_tokens = 4, 8, 4, 56, 256
        device, dtype, dims = "cpu", torch.float32, DRY_RUN
    elif torch.cuda.is_available():
        device, dtype, dims = "cuda", torch.bfloat16, QWEN2_5_VL_3B
    else:
        print("no CUDA device: run with --dry-run, or on a machine with a GPU")
        return 1

    report = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__,
              "dry_run": args.dry_run,
              # Where the results went is a path on the measuring machine: it does not belong in them.
              "settings": {k: v for k, v in vars(args).items() if k != "out"}}
    if args.floor:
        report["floor"] = floor_comparison(Path(args.out), dry_run=args.dry_run)
    start = time.perf_counter()
    model, processor = build_model(dims, args.image_size, device, dtype)
    report["model"] = {"parameters": sum(p.numel() for p in model.parameters()), "dtype": str(dtype),
                       "build_seconds": round(time.perf_counter() - start, 1)}
    rows = make_visual_world(int(args.rows * 1.3) + 2, seed=0, image_size=args.image_size)["train"]
    rows = rows.select(range(args.rows))
    settings = dict(num_rollouts=args.num_rollouts, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    report["transformers"] = score_rollouts(model, processor, rows, **settings)
    report["ace_memory"] = ace_memory(model, processor, args.ace_tokens, device)
    # Last, as it frees the in-memory model: servers load checkpoints, and size their caches from free memory.
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        save_seconds = round(time.perf_counter() - start, 1)
        del model
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
        report["through_server"] = {"save_seconds": save_seconds, **through_server(folder, processor, rows, settings,
                                                                                   args.server_url)}
    report["ok"] = bool(report["transformers"]["valid"]) and bool(report["through_server"]["valid"])
    text = json.dumps(report, indent=2, default=str)
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    name = "real_size_gpu_dry_run.json" if args.dry_run else "real_size_gpu.json"
    (Path(args.out) / name).write_text(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

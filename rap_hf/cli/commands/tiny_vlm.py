"""`rap-hf tiny-vlm`: write a tiny random-weight VLM to a folder, for tests and offline runs."""

from __future__ import annotations

import argparse

from ..command import ArgparseCommand


class TinyVLMCommand(ArgparseCommand):
    name = "tiny-vlm"
    help = "write a tiny random-weight VLM (Qwen2.5-VL, Qwen2-VL, LLaVA) to a folder"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from ...testing import TINY_VLM_KINDS

        parser.add_argument("--kind", choices=TINY_VLM_KINDS, default="qwen2_5_vl", help="The model family")
        parser.add_argument("--out", required=True, help="Folder to write the model and processor to")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the tokenizer corpus and the weights")
        parser.add_argument("--text-hidden", type=int, help="Hidden size of the text model (default: 64)")
        parser.add_argument("--text-layers", type=int, help="Layers of the text model (default: 2)")
        parser.add_argument("--image-size", type=int, help="Images reach the vision tower at about this squared "
                                                           "pixels (default: 56)")
        parser.add_argument("--vocab-size", type=int, help="Vocabulary size (default: 640)")

    def run(self, args: argparse.Namespace) -> int:
        from ...testing import build_tiny_vlm

        overrides = {k: v for k, v in (("text_hidden", args.text_hidden), ("text_layers", args.text_layers),
                                        ("image_size", args.image_size), ("vocab_size", args.vocab_size))
                     if v is not None}
        path = build_tiny_vlm(args.kind, args.out, seed=args.seed, **overrides)
        print(f"Wrote a tiny {args.kind} model to {path}")
        return 0

"""`rap-hf verify`: check one response against a ground-truth answer, as the reward does."""

from __future__ import annotations

import argparse
import json

from ..command import ArgparseCommand


class VerifyCommand(ArgparseCommand):
    name = "verify"
    help = "check one response against a ground-truth answer"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--response", required=True, help="The model's response, its final answer in \\boxed{}")
        parser.add_argument("--answer", required=True, help="The ground-truth answer")
        parser.add_argument("--choices", help='Options as a JSON list, e.g. \'["red", "blue"]\'')

    def run(self, args: argparse.Namespace) -> int:
        from ...verify import extract_answer, is_correct, is_formatted

        choices = json.loads(args.choices) if args.choices else None
        result = {
            "extracted": extract_answer(args.response),
            "correct": is_correct(args.response, args.answer, choices),
            "formatted": is_formatted(args.response),
        }
        print(json.dumps(result))
        return 0

"""`rap-hf export`: canonical rows in the layout TRL, EasyR1 or verl trains on."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..command import ArgparseCommand


class ExportCommand(ArgparseCommand):
    name = "export"
    help = "export canonical rows for TRL, EasyR1 or verl"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dataset", required=True, help="Canonical rows (a save_to_disk folder or data file)")
        parser.add_argument("--split", help="Split of the rows (needed when they have several)")
        parser.add_argument("--to", choices=("trl", "easyr1", "verl"), required=True, help="The layout to write")
        parser.add_argument("--out", required=True, help="A folder for trl, a .parquet file for easyr1 and verl")
        parser.add_argument("--on-error", choices=("raise", "drop"), default="raise",
                            help="What to do with rows whose images cannot be decoded")

    def run(self, args: argparse.Namespace) -> int:
        from ...data import exporters
        from ...data.io import load_rows

        ds = load_rows(args.dataset, args.split, single=True)
        if args.to == "trl":
            out = exporters.to_trl(ds, on_error=args.on_error)
            out.save_to_disk(args.out)
        else:
            out = exporters.to_easyr1(ds, on_error=args.on_error) if args.to == "easyr1" else exporters.to_verl(
                ds, on_error=args.on_error)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            out.to_parquet(args.out)
        print(f"Wrote {len(out)} rows in {args.to} layout to {args.out}")
        return 0

"""`rap-hf world`: write the embedded visual world (train/test) to a folder."""

from __future__ import annotations

import argparse

from ..command import ArgparseCommand


class WorldCommand(ArgparseCommand):
    name = "world"
    help = "write the embedded visual world (train/test) to a folder"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", required=True, help="Folder to write (datasets.save_to_disk)")
        parser.add_argument("--n", type=int, default=500, help="Total rows, train and test together")
        parser.add_argument("--seed", type=int, default=0,
                            help="Seed of everything: tasks, shapes, colours, positions, split")
        parser.add_argument("--test-fraction", type=float, default=0.2,
                            help="Share of the rows in the held-out test split")
        parser.add_argument("--image-size", type=int, default=84, help="Side of the square images, in pixels")

    def run(self, args: argparse.Namespace) -> int:
        from ...data.synthetic import make_visual_world

        world = make_visual_world(args.n, seed=args.seed, test_fraction=args.test_fraction,
                                  image_size=args.image_size)
        world.save_to_disk(args.out)
        sizes = ", ".join(f"{split}: {len(part)}" for split, part in world.items())
        print(f"Wrote the visual world ({sizes}) to {args.out}")
        return 0

"""The shard plan's unit: a fixed range of input rows, how a list of them is said, and how ranks split it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Rows `start`..`stop - 1` of the input, written to the file `name`."""

    index: int
    start: int
    stop: int
    count: int

    @property
    def name(self) -> str:
        return f"shard-{self.index:05d}-of-{self.count:05d}.arrow"

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def record_name(self) -> str:
        """The record written beside a finished shard file (records.py)."""
        return self.name.removesuffix(".arrow") + ".json"


def plan_shards(num_rows: int, shard_rows: int) -> list[Shard]:
    """`num_rows` rows in shards of `shard_rows` (the last one shorter)."""
    count = -(-num_rows // shard_rows)
    return [Shard(i, i * shard_rows, min(num_rows, (i + 1) * shard_rows), count) for i in range(count)]


def describe_shards(shards: list[Shard]) -> str:
    """`shards 2, 5-7 (8 rows)`: a short list of shard numbers, ranges joined."""
    spans: list[list[int]] = []
    for index in sorted(s.index for s in shards):
        if spans and index == spans[-1][1] + 1:
            spans[-1][1] = index
        else:
            spans.append([index, index])
    numbers = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    rows = sum(s.rows for s in shards)
    return f"shard{'s' if len(shards) != 1 else ''} {numbers} ({rows} row{'s' if rows != 1 else ''})"


def split_by_node(shards: list[Shard], rank: int, world_size: int) -> list[Shard]:
    """This rank's contiguous block of `shards`, as `datasets.distributed.split_dataset_by_node` splits
    a map-style dataset: the first `len % world_size` ranks take one more. Applied to the shard list, so
    a resumed run spreads only the missing shards over any number of processes; with fewer missing
    shards than ranks, the ranks left over get none and exit (split_dataset_by_node itself fails on
    such a split)."""
    per_rank, extra = divmod(len(shards), world_size)
    start = rank * per_rank + min(rank, extra)
    return list(shards[start : start + per_rank + (1 if rank < extra else 0)])

"""What a finished shard must be, and the check that it still is.

A shard file counts as finished only with its record beside it (`shard-00003-of-00008.json`, written
after the file is renamed into place): the rows it holds, a digest of their ids, the fingerprint of
the settings it was scored with, its size and a checksum of its bytes. Before a resume scores and
before the merge reads, every shard is checked against its record. A shard file without a record (a
kill between the rename and the record, or a file copied in), one that is truncated or corrupted, or
one scored with other settings or over other rows is damaged: it is deleted and scored again, never
merged.

The checksum is xxh3-128 (xxhash, which `datasets` already depends on): it reads at memory speed, so
checking a large run costs about one read of its shards (see benchmarks/resume.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CHECKSUM = "xxh3_128"
_CHUNK_BYTES = 8 << 20


def file_checksum(path: str | os.PathLike) -> str:
    """xxh3-128 of a file's bytes, read in 8 MiB chunks."""
    import xxhash

    digest = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ShardRecord:
    """What a finished shard file holds; stored as JSON beside it.

    Attributes:
        index: The shard's number in the plan.
        start: First input row of the shard.
        stop: One past its last input row.
        rap_id_sha256: `rap_ids_digest` of the ids in the file, in order.
        settings: The run's settings fingerprint (the manifest's `model_fingerprint`).
        bytes: Size of the shard file.
        checksum: xxh3-128 of the shard file.
        errors: Rows of the shard with `rap_error`.
        seconds: Time spent scoring it.
    """

    index: int
    start: int
    stop: int
    rap_id_sha256: str
    settings: str
    bytes: int
    checksum: str
    errors: int = 0
    seconds: float = 0.0

    def write(self, path: Path) -> None:
        """Write atomically (a temporary name, then a rename): a record on disk is always whole."""
        write_atomically(path, json.dumps({"checksum_algorithm": CHECKSUM, **asdict(self)}, indent=2, sort_keys=True))

    @classmethod
    def read(cls, path: Path) -> ShardRecord:
        """The record at `path`; raises ValueError when it is not one."""
        try:
            data = json.loads(path.read_text())
            data.pop("checksum_algorithm", None)
            return cls(**data)
        except (OSError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"unreadable shard record {path.name}: {error}") from error


def damage(shard_file: Path, record_file: Path, *, start: int, stop: int, settings: str,
           rap_id_sha256: str) -> str | None:
    """Why the shard at `shard_file` cannot be merged as rows `start`..`stop - 1` of this run, or None
    when it is whole. `rap_id_sha256` is the digest of those input rows' ids; `settings` this run's
    settings fingerprint."""
    if not record_file.exists():
        return "no record beside it (left by a killed run, or copied in)"
    try:
        record = ShardRecord.read(record_file)
    except ValueError as error:
        return str(error)
    if not shard_file.exists():
        return "its file is missing"
    if record.settings != settings:
        return "scored with other settings than this run's"
    if (record.start, record.stop) != (start, stop) or record.rap_id_sha256 != rap_id_sha256:
        return "holds other rows than this run's input has there"
    size = shard_file.stat().st_size
    if size != record.bytes:
        return f"{'truncated' if size < record.bytes else 'grown'}: {size} bytes, {record.bytes} when written"
    if file_checksum(shard_file) != record.checksum:
        return "corrupted: its checksum differs from the one recorded when it was written"
    return None


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary name beside `path`, then rename it into place."""
    temporary = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)

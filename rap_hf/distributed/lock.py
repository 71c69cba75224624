"""One run at a time per output: an exclusive lock held by the process that plans and merges.

The lock is `fcntl.flock` on a file in the shard folder. The kernel releases it when its holder
exits, however it exits (SIGKILL, a lost node's processes), so a killed run never leaves a stale lock
behind and the next run needs no manual clean-up. On shared storage it holds across nodes where the
file system supports it (NFSv4, Lustre mounted with `flock`, GPFS); where it does not (flock fails
with ENOLCK or EOPNOTSUPP), the run warns once and goes on unlocked.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class OutputBusy(RuntimeError):
    """Another run holds the output's lock: it is scoring or merging into the same folder now."""


class OutputLock:
    """An exclusive, non-blocking lock on `path` (created if needed); `acquire` raises `OutputBusy`
    naming the holder (host, process id, start time) when another process has it."""

    def __init__(self, path: Path, *, output: Path):
        self.path = path
        self.output = output
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            import fcntl
        except ImportError:  # not a POSIX system: nothing to lock with
            print(f"Warning: no file locking on this system; do not start two runs on {self.output} at once",
                  file=sys.stderr)
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.read(fd, 4096))
            os.close(fd)
            raise OutputBusy(
                f"another rap-hf score run ({holder}) is writing {self.output} now. Wait for it to finish, or "
                "stop it; then run this command again (it resumes from the shards that run finished)."
            ) from None
        except OSError as error:
            os.close(fd)
            if error.errno not in _UNSUPPORTED:
                raise
            print(f"Warning: the file system of {self.path.parent} does not support locks ({error.strerror}); "
                  f"do not start two runs on {self.output} at once", file=sys.stderr)
            return
        owner = {"host": socket.gethostname(), "pid": os.getpid(),
                 "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(owner).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _describe(content: bytes) -> str:
    try:
        owner = json.loads(content)
        return f"process {owner['pid']} on {owner['host']}, started {owner['started']}"
    except (ValueError, KeyError, TypeError):
        return "a process that is still starting"

"""Reading the trainer's `training_args.bin` as data, never running it.

`Trainer.save_model` pickles the training arguments with `torch.save`. Unpickling runs whatever
code the file names (the Hub flags such files), so a folder's card reads the pickle with an
unpickler that imports nothing: every class the file names becomes a stand-in holding its state.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any


class _Stub:
    """Whatever class a pickle names, read as data: nothing is imported or called (see `read_pickled`)."""

    origin = ""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        self.state = state


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        return type(name, (_Stub,), {"origin": f"{module}.{name}"})

    def persistent_load(self, pid):  # tensors: not needed for the settings
        return None


def _plain(value: Any) -> Any:
    """A value of `read_pickled`'s result as plain data: an enum as its value, other objects by name."""
    if isinstance(value, _Stub):
        if value.state is None and len(value.args) == 1 and not isinstance(value.args[0], _Stub):
            return value.args[0]  # an enum member (SchedulerType("constant")) or a simple wrapper
        return value.origin
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def read_pickled(path: Path) -> dict[str, Any] | None:
    """The fields of the object `torch.save` wrote to `path` (the trainer's `training_args.bin`), read
    as data, without running the pickle's code (which the Hub flags in published files): every class
    it names becomes a stand-in. None when the file is not there or not readable this way."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if name is None:
                return None
            obj = _DataUnpickler(archive.open(name)).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError):
        return None
    state = obj.state if isinstance(obj, _Stub) else None
    if isinstance(state, tuple):  # (dict, slots) for classes with __slots__
        state = state[0]
    return {str(k): _plain(v) for k, v in state.items()} if isinstance(state, dict) else None

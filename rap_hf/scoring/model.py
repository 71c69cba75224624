"""The model a scorer runs: loaded lazily, once per process, identified without loading it.

`ScoringModel` holds a model and its processor, given loaded or as a reference (a Hub id or a
local folder). Pickled, the model travels as its reference alone, so `datasets.map(num_proc=...)`
workers and `accelerate` ranks each load their own copy, on `cuda:{rank}` when there are GPUs; a
processor the user passed loaded travels as it is (its settings are the user's), one the scorer
loaded is loaded again with the same settings. `identity()` names the exact weights for cache keys
without reading a whole checkpoint, and `processor_identity()` the processor.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any



def local_as_absolute(ref: str | os.PathLike) -> str:
    """A reference that names an existing local folder or file, made absolute; a Hub id as it is.
    Processes that load the model elsewhere (Ray workers run in their own working folder) then load
    what this process meant."""
    ref = os.path.expanduser(str(ref))
    return os.path.abspath(ref) if os.path.exists(ref) else ref


class ScoringModel:
    """A VLM and its processor for scoring: lazy loading, pickling as a reference, identity.

    Args:
        model: A Hub id or local folder, or a loaded `transformers` model.
        processor: The processor (loaded, or a reference); None loads the model's own.
    """

    def __init__(self, model, processor=None):
        if isinstance(model, (str, os.PathLike)):
            self.model_ref: str | None = local_as_absolute(model)
            self.model = None
        else:
            self.model = model
            ref = getattr(model, "name_or_path", None)
            self.model_ref = str(ref) if ref else None
        # A processor given loaded is the user's, used as it is: never reloaded from a reference.
        self.user_processor = processor is not None and not isinstance(processor, (str, os.PathLike))
        if not self.user_processor:
            self.processor_ref = local_as_absolute(processor) if processor is not None else None
            self.processor = None
        else:
            self.processor = processor
            ref = getattr(processor, "name_or_path", None) or getattr(
                getattr(processor, "tokenizer", None), "name_or_path", None)
            self.processor_ref = str(ref) if ref else None
        self._engine = None
        self._identity: str | None = None

    @property
    def loaded(self) -> bool:
        return self.model is not None and self.processor is not None

    def load(self, *, device: str | None = None, dtype: str = "auto", rank: int | None = None,
             processor_settings: Mapping[str, Any] | None = None) -> None:
        """Load what is not loaded yet: the model on `device` (or `cuda:{rank}`, or the CPU), and its
        processor with `processor_settings` (`rap_hf.modeling.load_processor`'s keywords: pixel bounds,
        processor_kwargs; a processor the user passed is kept as it is)."""
        if self.loaded:
            return
        from ..modeling import load_processor, load_vlm, pick_device, pick_dtype

        if self.model is None:
            target = pick_device(device, rank)
            self.model, processor = load_vlm(self.model_ref, device=target, dtype=pick_dtype(dtype, target),
                                             processor_ref=self.processor_ref, processor_settings=processor_settings)
            self.processor = self.processor or processor
        else:
            self.processor = load_processor(self.processor_ref or self.model_ref, **(processor_settings or {}))

    def engine(self):
        """The rollout engine over this model (`transformers` generate), built once."""
        if self._engine is None:
            from ..rollouts import TransformersEngine

            self._engine = TransformersEngine(self.model, self.processor)
        return self._engine

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    def identity(self) -> str:
        """What names these weights in a cache key: the Hub id and revision, a digest of a local folder's
        files (their first and last MiB only), or a digest of an in-memory model's parameters."""
        if self._identity is None:
            ref = self.model_ref
            if ref and Path(ref).is_dir():
                self._identity = "folder:" + folder_digest(Path(ref))
            elif ref:
                self._identity = "hub:" + ref + "@" + hub_revision(ref)
            else:
                self._identity = "object:" + parameters_digest(self.model)
        return self._identity

    def processor_identity(self) -> str | None:
        """What names the processor in a cache key: its reference, or for a processor the user passed
        loaded, a digest of its settings (image processor, tokenizer, chat template)."""
        if not self.user_processor:
            return self.processor_ref
        return "object:" + processor_digest(self.processor)

    def __getstate__(self) -> dict[str, Any]:
        if self.model_ref is None:
            raise TypeError(
                "The scorer holds a model that was not loaded from a folder or the Hub, so it cannot be sent to "
                "other processes. Save it with model.save_pretrained(folder) and pass the folder."
            )
        state = self.__dict__.copy()
        state["model"] = state["_engine"] = None  # reloaded lazily in each process
        if not self.user_processor:
            state["processor"] = None
        return state


def folder_digest(folder: Path) -> str:
    """Digest of a model folder from its files' names, sizes and first and last MiB (cheap on 7B)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder)}:{size}".encode())
        with open(path, "rb") as f:
            digest.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                digest.update(f.read())
    return digest.hexdigest()[:16]


def hub_revision(ref: str) -> str:
    """The commit a Hub id resolves to in the local cache ("unresolved" when it cannot be told)."""
    try:
        from transformers import AutoConfig

        return getattr(AutoConfig.from_pretrained(ref), "_commit_hash", None) or "unresolved"
    except Exception:
        return "unresolved"


def processor_digest(processor) -> str:
    """Digest of what decides a processor's output: its components' settings, its tokenizer's
    vocabulary size and special tokens, and its chat template."""
    tokenizer = getattr(processor, "tokenizer", processor)
    settings = processor.to_dict() if hasattr(processor, "to_dict") else {}
    payload = json.dumps({
        "class": type(processor).__name__, "settings": settings,
        "tokenizer": [type(tokenizer).__name__, len(tokenizer) if hasattr(tokenizer, "__len__") else None,
                      getattr(tokenizer, "all_special_tokens", None)],
        "chat_template": getattr(processor, "chat_template", None),
    }, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def parameters_digest(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).float().numpy().tobytes())
    return digest.hexdigest()[:16]

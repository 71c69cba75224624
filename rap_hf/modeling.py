"""Loading the scorer model once per process, on the right device."""

from __future__ import annotations

import os
from typing import Any

import torch

# (model ref, processor ref, device, dtype) -> (model, processor): the scorers and evaluation of one
# process share one copy of the weights instead of loading them again.
_LOADED: dict[tuple, tuple[Any, Any]] = {}


def pick_device(device: str | None, rank: int | None = None) -> torch.device:
    """`device` if given; else `cuda:{rank}` (or `cuda`) when a GPU is there; else the CPU."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        if rank is not None:
            return torch.device(f"cuda:{rank % torch.cuda.device_count()}")
        return torch.device("cuda")
    return torch.device("cpu")


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The torch dtype named `dtype` ("float32", "bfloat16", ...); "auto": bfloat16 on a GPU, float32 on the CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def load_vlm(model_ref: str | os.PathLike, *, device: torch.device, dtype: torch.dtype,
             processor_ref: str | os.PathLike | None = None):
    """`(model, processor)` for a Hub id or folder, loaded once per process and device."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    key = (str(model_ref), str(processor_ref or model_ref), str(device), str(dtype))
    if key not in _LOADED:
        model = AutoModelForImageTextToText.from_pretrained(str(model_ref), dtype=dtype)
        model.to(device).eval()
        processor = AutoProcessor.from_pretrained(str(processor_ref or model_ref))
        _LOADED[key] = (model, processor)
    return _LOADED[key]


def clear_vlm_cache(model: Any | None = None) -> int:
    """Drop `load_vlm`'s cached `(model, processor)` for `model` (the object `load_vlm` returned),
    or every cached pair when `model` is None; returns how many were dropped.

    The cache keeps a model for the process's lifetime: forget it before deleting the folder it
    came from, or to free its memory once nothing else holds it. A later `load_vlm` loads it anew.
    """
    keys = [key for key, (loaded, _) in _LOADED.items() if model is None or loaded is model]
    for key in keys:
        del _LOADED[key]
    return len(keys)

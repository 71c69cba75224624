"""Loading the scorer model once per process, on the right device."""

from __future__ import annotations

import os
from typing import Any

import torch

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

"""Loading the scorer model once per process, on the right device."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import torch

from .references import check_reference

# (model ref, processor ref, device, dtype, processor settings) -> (model, processor): the scorers and
# evaluation of one process share one copy of the weights instead of loading them again.
_LOADED: dict[tuple, tuple[Any, Any]] = {}


def pick_device(device: str | None, rank: int | None = None) -> torch.device:
    """`device` if given; else `cuda:{rank}` (or `cuda`) when a GPU is there; else the CPU.

    A device that is not there is one clear `ValueError` (not torch's driver error mid-run)."""
    if device:
        try:
            chosen = torch.device(device)
        except RuntimeError as error:
            raise ValueError(f"device {device!r} is not a device name (cpu, cuda, cuda:1, mps, ...): {error}") from None
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: torch sees no CUDA GPU on this machine; use --device cpu (device="
                             "'cpu'), or leave the device out to use a GPU only when there is one")
        if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return chosen
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


# Families `AutoModelForImageTextToText` loads, named in the error for a model it cannot load.
VLM_FAMILIES = "Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA, LLaVA-NeXT, Idefics3, SmolVLM, Gemma 3, InternVL, GLM-4V, ..."


def load_image_text_model(ref: str | os.PathLike, **kwargs: Any):
    """`AutoModelForImageTextToText.from_pretrained(ref, **kwargs)`, with one clear error for a model
    that is not a vision-language model (a text-only checkpoint) instead of transformers' list of
    every supported config class."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    try:
        return AutoModelForImageTextToText.from_pretrained(str(ref), **kwargs)
    except ValueError as error:
        if "Unrecognized configuration class" not in str(error):
            raise
        kind = getattr(AutoConfig.from_pretrained(str(ref), trust_remote_code=kwargs.get("trust_remote_code", False)),
                       "model_type", "unknown")
        raise ValueError(f"{ref} is a {kind} model, not a vision-language model: RAP compares answers with and "
                         "without the image, so it needs a model that AutoModelForImageTextToText loads ("
                         f"{VLM_FAMILIES})") from None


def takes_pixel_bounds(image_processor) -> bool:
    """Whether an image processor resizes by pixel area between `min_pixels` and `max_pixels` (the
    Qwen2-VL family and others that declare both settings), so `rap_hf.config.PixelBounds` applies."""
    declared = getattr(getattr(image_processor, "valid_kwargs", None), "__annotations__", {})
    return {"min_pixels", "max_pixels"} <= set(declared)


def load_processor(ref: str | os.PathLike, *, min_pixels: int | None = None, max_pixels: int | None = None,
                   processor_kwargs: Mapping[str, Any] | None = None, **kwargs: Any):
    """`AutoProcessor.from_pretrained(ref, ...)` at the given image resolution.

    `min_pixels` / `max_pixels` are applied when the processor's image processor takes them (see
    `takes_pixel_bounds`); other processors keep their own resolution. `processor_kwargs` and
    `kwargs` go to `from_pretrained` as they are (e.g. `padding_side`, another family's `size`); a
    resolution they set themselves (`size`, `min_pixels`, `max_pixels`) wins over the bounds.
    """
    from transformers import AutoProcessor

    ref = check_reference(ref, "model")  # a mistyped path fails here, at once, not after the Hub's retries
    options = {**(processor_kwargs or {}), **kwargs}
    processor = AutoProcessor.from_pretrained(str(ref), **options)
    bounds = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
    explicit = {"size", "min_pixels", "max_pixels"} & set(options)
    image_processor = getattr(processor, "image_processor", None)
    if bounds and not explicit and takes_pixel_bounds(image_processor):
        processor = AutoProcessor.from_pretrained(str(ref), **options, size=pixel_area_size(image_processor, bounds))
    return processor


def pixel_area_size(image_processor, bounds: Mapping[str, int]) -> dict[str, int]:
    """The `size` that holds pixel bounds for an image processor that resizes by pixel area: its
    current `size` with `shortest_edge` set to `min_pixels` and `longest_edge` to `max_pixels`.

    (transformers 5 reads these bounds from `size`; `min_pixels` / `max_pixels` given to
    `from_pretrained` still work, but reach every processor call, which warns that they are
    deprecated.)"""
    current = getattr(image_processor, "size", None) or {}
    size = {key: value for key, value in dict(current).items() if value is not None}
    if "min_pixels" in bounds:
        size["shortest_edge"] = bounds["min_pixels"]
    if "max_pixels" in bounds:
        size["longest_edge"] = bounds["max_pixels"]
    return {key: size[key] for key in ("shortest_edge", "longest_edge") if key in size}


def load_vlm(model_ref: str | os.PathLike, *, device: torch.device, dtype: torch.dtype,
             processor_ref: str | os.PathLike | None = None, processor_settings: Mapping[str, Any] | None = None):
    """`(model, processor)` for a Hub id or folder, loaded once per process, device and processor
    settings (`load_processor`'s keywords: pixel bounds, processor_kwargs)."""
    model_ref = check_reference(model_ref, "model")  # a mistyped path fails here, at once, not after the Hub's retries
    settings = dict(processor_settings or {})
    key = (str(model_ref), str(processor_ref or model_ref), str(device), str(dtype),
           json.dumps(settings, sort_keys=True, default=str))
    if key not in _LOADED:
        weights = (key[0], key[2], key[3])  # model, device, dtype
        # The same weights under other processor settings are shared, not loaded again.
        model = next((m for k, (m, _) in _LOADED.items() if (k[0], k[2], k[3]) == weights), None)
        if model is None:
            model = load_image_text_model(model_ref, dtype=dtype)
            model.to(device).eval()
        _LOADED[key] = (model, load_processor(processor_ref or model_ref, **settings))
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

"""Shared fixtures. Everything runs offline: tiny models are built here, never downloaded."""

import os

# Set before transformers / huggingface_hub / gradio are imported anywhere (they read these at import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import io  # noqa: E402

import pytest  # noqa: E402

from rap_hf.testing import TINY_VLM_KINDS, build_tiny_vlm  # noqa: E402


@pytest.fixture(scope="session")
def tiny_vlm_paths(tmp_path_factory):
    """One build per family for the whole session: {kind: folder}."""
    root = tmp_path_factory.mktemp("tiny-vlms")
    return {kind: build_tiny_vlm(kind, root / kind, seed=0) for kind in TINY_VLM_KINDS}


@pytest.fixture(scope="session")
def world():
    from rap_hf.data.synthetic import make_visual_world

    return make_visual_world(60, seed=0)


def png_bytes(colour=(200, 30, 30), size=(32, 32)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()

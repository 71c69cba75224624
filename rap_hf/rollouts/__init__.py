"""Rollout engines: `transformers` generate (default) and vLLM (GPU extra)."""

from .transformers_engine import Prompt, PromptTooLong, TransformersEngine

__all__ = ["Prompt", "PromptTooLong", "TransformersEngine", "make_engine"]


def make_engine(backend: str, model, processor, model_ref: str | None = None):
    """The rollout engine of a backend name ("transformers" or "vllm")."""
    if backend == "transformers":
        return TransformersEngine(model, processor)
    if backend == "vllm":
        from .vllm_engine import VLLMEngine

        if model_ref is None:
            raise ValueError("the vllm backend needs the model as a Hub id or folder, not a loaded model")
        return VLLMEngine(model_ref, processor)
    raise ValueError(f"Unknown rollout backend {backend!r}; choose 'transformers' or 'vllm'")

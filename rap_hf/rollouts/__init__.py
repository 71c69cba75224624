"""Rollout engines: `transformers` generate in this process (`TransformersEngine`), and
OpenAI-protocol inference servers (`rap_hf.rollouts.server.ServerEngine`: vLLM, SGLang, TGI,
Inference Endpoints, `transformers serve`)."""

from .transformers_engine import Prompt, PromptTooLong, TransformersEngine

__all__ = ["Prompt", "PromptTooLong", "TransformersEngine"]

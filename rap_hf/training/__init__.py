"""GRPO training on RAP subsets: rewards, the trainer, and the online replacement sampler."""

from .config import RAPGRPOConfig
from ..rewards import accuracy_reward, format_reward, rap_reward
from .sampler import ReplacementSampler
from .trainer import RAPGRPOTrainer

__all__ = ["RAPGRPOConfig", "RAPGRPOTrainer", "ReplacementSampler", "accuracy_reward", "format_reward", "rap_reward"]

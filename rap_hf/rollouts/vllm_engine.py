"""Rollouts with vLLM (`pip install "rap-hf[vllm]"`, GPU only).

The same requests as the transformers engine: one prompt per row and condition, `n=M` samples
drawn with prefix caching (the M samples of a prompt share its prefill), images passed as
multi-modal data. vLLM never returns attention weights, so ACE and logit-CDE still run a
transformers forward pass; only the rollouts move here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .transformers_engine import Prompt

VLLM_MISSING = (
    "The vllm backend needs vLLM, which is not installed. Install it with `pip install \"rap-hf[vllm]\"` "
    "(vLLM 0.22 to 0.31, the range TRL supports; it needs a CUDA GPU), or use backend='transformers'."
)


def _import_vllm():
    try:
        import vllm
    except ImportError as error:
        raise ImportError(VLLM_MISSING) from error
    return vllm


class VLLMEngine:
    """Samples M responses per prompt with a `vllm.LLM` (created on first use)."""

    def __init__(self, model_ref: str, processor, **llm_kwargs):
        self._vllm = _import_vllm()
        self.model_ref = model_ref
        self.processor = processor
        self.llm_kwargs = {"enable_prefix_caching": True, **llm_kwargs}
        self._llm = None

    @property
    def llm(self):
        if self._llm is None:
            self._llm = self._vllm.LLM(model=self.model_ref, **self.llm_kwargs)
        return self._llm

    def generate(
        self,
        prompts: Sequence[Prompt],
        num_samples: int,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 2048,
        seed: int = 0,
        sample_seeds: Sequence[Sequence[int]] | None = None,
    ) -> list[list[str]]:
        """`num_samples` responses per prompt. With `sample_seeds`, each response is its own request
        seeded with its seed (prefix caching shares the prompt), so it does not depend on the batch."""
        if not prompts:
            return []
        requests = []
        for prompt in prompts:
            request = {"prompt": prompt.text}
            if prompt.images:
                request["multi_modal_data"] = {"image": prompt.images if len(prompt.images) > 1 else prompt.images[0]}
            requests.append(request)
        common = dict(temperature=temperature, top_p=top_p, max_tokens=max_new_tokens)
        if sample_seeds is None:
            params = self._vllm.SamplingParams(n=num_samples, seed=seed, **common)
            outputs = self.llm.generate(requests, params, use_tqdm=False)
            return [[completion.text for completion in output.outputs] for output in outputs]
        expanded = [request for request in requests for _ in range(num_samples)]
        params = [self._vllm.SamplingParams(n=1, seed=s % (1 << 63), **common)
                  for per_prompt in sample_seeds for s in per_prompt]
        outputs = self.llm.generate(expanded, params, use_tqdm=False)
        texts = [output.outputs[0].text for output in outputs]
        return [texts[i * num_samples : (i + 1) * num_samples] for i in range(len(prompts))]

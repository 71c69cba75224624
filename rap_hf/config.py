"""Configuration of RAP scoring (`RAPConfig`), selection (`SelectionConfig`), evaluation (`EvalConfig`)
and the Space (`DemoConfig`).

Like TRL's configs, every field carries its help text in `metadata["help"]`; the CLI builds its
flags from them. Defaults are the paper's values (docs/method.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from .prompts import FORMAT_PROMPT
from .checks import check_range, parse_mapping
from .serving import ServerSettings, without_secrets


class ConfigMixin:
    """What every rap-hf config dataclass offers besides its fields (the CLI builds flags from `help`)."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, without secrets (a server's API key): what fingerprints, manifests and
        cards record."""
        return without_secrets(dataclasses.asdict(self))

    @classmethod
    def help(cls) -> dict[str, str]:
        """`{field: help text}`, for CLIs and docs."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


DTYPES = ("auto", "float32", "bfloat16", "float16")
# The paper's image resolution (EasyR1's min_pixels / max_pixels in the released training scripts):
# Qwen-VL processors resize each image to between 512^2 and 2048^2 pixels, 28 x 28 pixels per image
# token, so a 200x150 picture becomes 352 tokens and a 4000x3000 one 5,292.
PAPER_MIN_PIXELS = 262_144
PAPER_MAX_PIXELS = 4_194_304


@dataclass
class PixelBounds:
    """How large images are made before the model sees them: the same for scoring, evaluation and training.

    Applied to processors that resize by pixel area between `min_pixels` and `max_pixels`
    (Qwen2-VL, Qwen2.5-VL, Qwen3-VL and others whose image processor takes those two settings);
    other processors (LLaVA's fixed-size CLIP, ...) keep their own resolution.
    """

    min_pixels: int | None = field(
        default=PAPER_MIN_PIXELS,
        metadata={"help": "Fewest pixels an image is resized to, for processors that take min_pixels (Qwen-VL: "
                          "28 x 28 pixels per image token). Paper: 262,144 (512^2). None keeps the processor's own."},
    )
    max_pixels: int | None = field(
        default=PAPER_MAX_PIXELS,
        metadata={"help": "Most pixels an image is resized to, for processors that take max_pixels. Paper: "
                          "4,194,304 (2048^2). None keeps the processor's own."},
    )

    def check_pixel_bounds(self) -> None:
        for name in ("min_pixels", "max_pixels"):
            check_range(self, name, low=1, why=" (or None for the processor's own: none on the command line)")
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels ({self.min_pixels}) must not exceed max_pixels ({self.max_pixels}) "
                             "(--min-pixels, --max-pixels on the command line)")

    def pixel_bounds(self) -> dict[str, int]:
        """The bounds that are set, as keyword arguments of a processor."""
        return {k: v for k, v in (("min_pixels", self.min_pixels), ("max_pixels", self.max_pixels)) if v is not None}


@dataclass
class ProcessorSettings(PixelBounds):
    """`PixelBounds`, and anything else the processor is loaded with."""

    processor_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "More keyword arguments for AutoProcessor.from_pretrained, as a mapping (JSON on the "
                          "command line), e.g. another family's resolution: '{\"size\": {\"shortest_edge\": 336}}'."},
    )

    def check_processor_settings(self) -> None:
        self.check_pixel_bounds()
        self.processor_kwargs = parse_mapping(self.processor_kwargs, "processor_kwargs")

    def processor_settings(self) -> dict[str, Any]:
        """What a processor is loaded with (`rap_hf.modeling.load_processor`'s keywords)."""
        return {"min_pixels": self.min_pixels, "max_pixels": self.max_pixels,
                "processor_kwargs": dict(self.processor_kwargs or {})}


def check_generation(config: Any) -> None:
    """The checks every config that generates with a model shares (`RAPConfig`, `EvalConfig`): batch
    size, response length, top-p and dtype."""
    check_range(config, "batch_size", low=1)
    check_range(config, "max_new_tokens", low=1)
    check_range(config, "top_p", low=0, high=1, low_open=True)
    if config.dtype not in DTYPES:
        raise ValueError(f"dtype must be auto, float32, bfloat16 or float16, got {config.dtype!r} (--dtype on the "
                         "command line)")


@dataclass
class RAPConfig(ConfigMixin, ServerSettings, ProcessorSettings):
    """Settings of RAP scoring: rollouts (CDE, difficulty), ACE and logit-CDE."""

    num_rollouts: int = field(
        default=5, metadata={"help": "M: responses sampled per row and condition (with image, text-only). Paper: 5."}
    )
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the rollouts. Paper: 1.0."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of the rollouts. Paper: 1.0."})
    max_new_tokens: int = field(default=2048, metadata={"help": "Longest response, in tokens. Paper: 2048."})
    system_prompt: str | None = field(
        default=None, metadata={"help": "System message of every prompt; None keeps the chat template's default."}
    )
    format_prompt: str | None = field(
        default=FORMAT_PROMPT,
        metadata={"help": "Instruction appended to each question (the paper's think + boxed prompt by default)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the rollouts; the same seed and batches give the same responses."})
    batch_size: int = field(
        default=8,
        metadata={"help": "Rows per generate / forward call inside one scorer call (each row generates M responses)."},
    )
    dtype: str = field(
        default="auto",
        metadata={"help": "Model dtype: 'auto' (bfloat16 on GPU, float32 on CPU), 'float32', 'bfloat16' or 'float16'."},
    )
    device: str | None = field(
        default=None,
        metadata={"help": "Device of the model; None picks cuda:{rank} (or cuda) when available, else cpu."},
    )
    local_model: str | None = field(
        default=None,
        metadata={"help": "With --backend server: local weights of the served model (a folder or Hub id) for what "
                          "no server returns: ACE's attention and logit-CDE's log-probabilities, computed here over "
                          "the servers' responses. Without it both are skipped, and the scores say so."},
    )
    keep_responses: bool = field(
        default=True,
        metadata={"help": "Keep rap_responses_image / rap_responses_text in the output (the Space and ACE read them)."},
    )
    adaptive: bool = field(
        default=False,
        metadata={"help": "Draw rollouts in rounds and stop a row once its paper-mode selection decision and reason "
                          "cannot change (lambda_c = adaptive_cde_threshold, lambda_a = ace_threshold)."},
    )
    adaptive_cde_threshold: float = field(
        default=0.5, metadata={"help": "lambda_c of the paper-mode selection that adaptive rollouts keep exact."}
    )
    adaptive_round_size: int = field(
        default=1, metadata={"help": "Rollouts per condition drawn in each adaptive round after the first."}
    )
    ace_layer: int = field(
        default=-1, metadata={"help": "Decoder layer whose self-attention ACE reads; -1 is the final layer (paper)."}
    )
    ace_sigma: float = field(default=2.0, metadata={"help": "sigma of ACE's column score log(sigma * A[i, j]). Paper: 2.0."})
    ace_min_rows: int = field(
        default=8,
        metadata={"help": "A column counts only with at least this many query rows below it in the window (our guard)."},
    )
    ace_head_reduce: Literal["max", "mean"] = field(
        default="max", metadata={"help": "How attention heads are combined before the column score."}
    )
    ace_renormalize: bool = field(
        default=True, metadata={"help": "Renormalise each query row over the window's keys before scoring (our guard)."}
    )
    ace_rollout: int = field(default=0, metadata={"help": "Which image rollout of a row ACE reads (the first by default)."})
    ace_threshold: float = field(
        default=0.1,
        metadata={"help": "lambda_a: rap_ace_flag is log(psi) > log(ace_threshold). Selection can re-threshold rap_ace."},
    )
    compute_ace: bool = field(default=True, metadata={"help": "Run ACE (one teacher-forced forward pass per row)."})
    compute_logit_cde: bool = field(
        default=True, metadata={"help": "Run logit-CDE (two teacher-forced forward passes per row, no sampling)."}
    )
    logit_cde_target: str = field(
        default="\\boxed{{answer}}",
        metadata={"help": "What logit-CDE teacher-forces after the prompt; {answer} is replaced by the reference "
                          "answer, whose tokens are scored. Default: the boxed answer the format prompt asks for."},
    )

    def __post_init__(self) -> None:
        check_range(self, "num_rollouts", low=1)
        check_generation(self)
        self.check_processor_settings()
        check_range(self, "ace_rollout", low=0, high=self.num_rollouts - 1,
                    why=f" (an image rollout of the {self.num_rollouts}: 0 to num_rollouts - 1)")
        if self.ace_head_reduce not in ("max", "mean"):
            raise ValueError(f"ace_head_reduce must be 'max' or 'mean', got {self.ace_head_reduce!r} "
                             "(--ace-head-reduce on the command line)")
        self.check_server_settings()
        check_range(self, "temperature", low=0)
        if self.temperature == 0 and self.num_rollouts > 1:
            raise ValueError(f"temperature must be > 0 with num_rollouts = {self.num_rollouts}: greedy decoding "
                             "cannot give M different rollouts, got 0 (--temperature on the command line)")
        check_range(self, "ace_threshold", low=0, low_open=True, why=" (it is compared in the log domain)")
        check_range(self, "ace_sigma", low=0, low_open=True, why=" (ACE takes log(sigma * A[i, j]))")
        check_range(self, "ace_min_rows", low=1)
        check_range(self, "adaptive_cde_threshold", low=-1, high=1, why=" (D = acc_image - acc_text lies in it)")
        if "{answer}" not in self.logit_cde_target:
            raise ValueError(f"logit_cde_target must contain {{answer}}, got {self.logit_cde_target!r} "
                             "(--logit-cde-target on the command line)")
        check_range(self, "adaptive_round_size", low=1)




@dataclass
class SelectionConfig(ConfigMixin):
    """Settings of `rap_hf.select`: CDE -> ACE -> DRM, in the paper's or the released code's mode."""

    mode: Literal["paper", "reference"] = field(
        default="paper",
        metadata={"help": "'paper': the method as the paper states it. 'reference': exactly what the released "
                          "selection script does (strict correctness, LIMR band, random 10 % of the 1-of-M pool)."},
    )
    cde_threshold: float = field(
        default=0.5, metadata={"help": "lambda_c (paper mode): keep a row when D = acc_image - acc_text > lambda_c."}
    )
    ace_threshold: float = field(
        default=0.1, metadata={"help": "lambda_a (paper mode): drop a row as attention-biased when psi > lambda_a."}
    )
    use_ace: bool | None = field(
        default=None,
        metadata={"help": "Apply ACE. None: True in paper mode, False in reference mode (the released code has no ACE)."},
    )
    drm_k: int | None = field(
        default=None,
        metadata={"help": "Paper mode: how many replacement rows DRM adds. None: as many as trivial rows removed."},
    )
    drm_ratio: float = field(
        default=0.1, metadata={"help": "Reference mode: share of the 1-of-M pool sampled as replacements."}
    )
    drm_seed: int = field(
        default=42, metadata={"help": "Reference mode: seed of Python's random.sample over the pool (42 as released)."}
    )
    ref_core_band: float = field(
        default=0.6, metadata={"help": "Reference mode: core rows need LIMR band(acc_image) >= this."}
    )
    ref_core_gap: float = field(default=0.2, metadata={"help": "Reference mode: core rows need D > this."})
    ref_pool_band: float = field(
        default=0.85, metadata={"help": "Reference mode: pool rows pass the looser CDE with band >= this and ..."}
    )
    ref_pool_gap: float = field(
        default=0.2, metadata={"help": "Reference mode: ... D > mu_image - mu_text or D >= this (with the band) ..."}
    )
    ref_pool_strong_gap: float = field(
        default=0.6, metadata={"help": "Reference mode: ... or D >= this alone."}
    )

    def __post_init__(self) -> None:
        if self.mode not in ("paper", "reference"):
            raise ValueError(f"mode must be 'paper' or 'reference', got {self.mode!r} (--mode on the command line)")
        # Left to the mode, ACE is applied where the rows carry it; asked for, it is required.
        self._ace_by_default = self.use_ace is None
        if self.use_ace is None:
            self.use_ace = self.mode == "paper"
        if self.mode == "reference" and self.use_ace:
            raise ValueError("reference mode reproduces the released script, which has no ACE: leave ACE off "
                             "(use_ace=False; on the command line drop --use-ace, or give --no-use-ace)")
        check_range(self, "cde_threshold", low=-1, high=1, why=" (D = acc_image - acc_text lies in it)")
        check_range(self, "ace_threshold", low=0, low_open=True, why=" (it is compared in the log domain)")
        check_range(self, "drm_k", low=0)
        check_range(self, "drm_ratio", low=0, high=1)
        for name in ("ref_core_band", "ref_pool_band"):
            check_range(self, name, low=0, high=1, why=" (a LIMR band score)")
        for name in ("ref_core_gap", "ref_pool_gap", "ref_pool_strong_gap"):
            check_range(self, name, low=-1, high=1, why=" (D = acc_image - acc_text lies in it)")


@dataclass
class EvalConfig(ConfigMixin, ServerSettings, ProcessorSettings):
    """Settings of `rap_hf.evaluate_model` / `rap-hf eval`: how the model answers each row once."""

    max_new_tokens: int = field(default=2048, metadata={"help": "Longest response, in tokens."})
    batch_size: int = field(default=8, metadata={"help": "Rows generated together."})
    temperature: float = field(
        default=0.0,
        metadata={"help": "0 for greedy decoding (the default); above 0, each row is sampled from its own seed, so "
                          "a response does not depend on the rows batched with it."},
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling threshold when sampling."})
    seed: int = field(default=0, metadata={"help": "Seed of the sampled responses."})
    format_prompt: str | None = field(
        default=FORMAT_PROMPT,
        metadata={"help": "Instruction appended to each question (the paper's think + boxed prompt by default; "
                          "'' or None for none)."},
    )
    system_prompt: str | None = field(default=None, metadata={"help": "Optional system turn."})
    device: str | None = field(
        default=None,
        metadata={"help": "Where to load the model: cpu, cuda, cuda:1, ... (default: a GPU if there is one, else "
                          "the CPU). A loaded model stays where it is."},
    )
    dtype: str = field(
        default="auto",
        metadata={"help": "'auto' (bfloat16 on GPU, float32 on CPU), 'float32', 'bfloat16' or 'float16'; used when "
                          "loading the model."},
    )
    limit: int | None = field(default=None, metadata={"help": "Evaluate only the first N rows."})
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "The dataset's name in the summary and the model-card entry (default: the Hub id, or the "
                          "folder's name for a local dataset)."},
    )

    def __post_init__(self) -> None:
        check_generation(self)
        self.check_processor_settings()
        self.check_server_settings()
        check_range(self, "temperature", low=0, why=" (0: greedy)")
        check_range(self, "limit", low=1)
        if self.format_prompt == "":
            self.format_prompt = None


@dataclass
class DemoConfig(ConfigMixin):
    """Settings of the Space (`rap-hf demo`, `spaces_demo/app.py`): what it shows and where it serves."""

    dataset: str | None = field(
        default=None,
        metadata={"help": "A scored folder (rap-hf score / select output) or Hub dataset id (default: $RAP_DATASET, "
                          "else the embedded world)."},
    )
    model: str | None = field(
        default=None,
        metadata={"help": "The scorer, for attention maps and new samples (default: $RAP_MODEL; the embedded scorer "
                          "with the embedded world)."},
    )
    host: str | None = field(
        default=None, metadata={"help": "Address to serve on (default: $GRADIO_SERVER_NAME or 127.0.0.1)."}
    )
    port: int | None = field(default=None, metadata={"help": "Port (default: $GRADIO_SERVER_PORT or 7860)."})

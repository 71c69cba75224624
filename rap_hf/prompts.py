"""Conversations for one canonical row: with its images, or text-only.

RAP compares a model's answers with and without the image (docs/method.md, "Rollouts"). Both
conditions must go through the *same* chat template and differ only in the image blocks, so
every stage (scoring, training, export, evaluation) builds its prompt here: chat messages for a
processor (`build_conversation`, `render_prompt`), for TRL's trainers (`trl_prompt`), and the
placeholder text EasyR1 and verl read (`placeholder_text`).
"""

from __future__ import annotations

from typing import Any

# The instruction appended to every question in the paper's runs (the released RAP script,
# `examples/qwen2_5_vl_7b_mmeureka_grpo.sh`, passes it as EasyR1's `format_prompt`).
FORMAT_PROMPT = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
    "The reasoning process MUST BE enclosed within <think> </think> tags. "
    "The final answer MUST BE put in \\boxed{}."
)

Message = dict[str, Any]


def user_text(question: str, format_prompt: str | None = FORMAT_PROMPT) -> str:
    """The text of the user turn: the question, then the format instruction (as EasyR1 joins them)."""
    question = question.strip()
    if not format_prompt:
        return question
    return f"{question} {format_prompt.strip()}"


def render_prompt(
    processor,
    question: str,
    num_images: int,
    *,
    with_images: bool = True,
    format_prompt: str | None = FORMAT_PROMPT,
    system_prompt: str | None = None,
) -> str:
    """The prompt text of `build_conversation(...)` through the processor's chat template, ready for
    the assistant's answer (the generation prompt added)."""
    messages = build_conversation(question, num_images, with_images=with_images, format_prompt=format_prompt,
                                  system_prompt=system_prompt)
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def build_conversation(
    question: str,
    num_images: int,
    *,
    with_images: bool = True,
    format_prompt: str | None = FORMAT_PROMPT,
    system_prompt: str | None = None,
) -> list[Message]:
    """Build the chat messages for one row.

    Args:
        question: The canonical question (image placeholders already removed).
        num_images: How many images the row has; one `{"type": "image"}` block is emitted per
            image, before the text, when `with_images` is true.
        with_images: False gives the text-only condition of CDE: the same messages without any
            image block.
        format_prompt: Instruction appended to the question (the paper's think + boxed prompt by
            default); `None` or "" appends nothing.
        system_prompt: Optional system turn. `None` leaves the chat template's own default.

    Returns:
        A list of messages in the content-block form that processors' chat templates and TRL's
        conversational datasets accept.
    """
    if num_images < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    content: list[dict[str, Any]] = []
    if with_images:
        content.extend({"type": "image"} for _ in range(num_images))
    content.append({"type": "text", "text": user_text(question, format_prompt)})
    messages: list[Message] = []
    if system_prompt:
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    messages.append({"role": "user", "content": content})
    return messages


def trl_prompt(question: str, *, format_prompt: str | None = FORMAT_PROMPT,
               system_prompt: str | None = None) -> list[Message]:
    """The conversational `prompt` of TRL's datasets: plain-text messages; TRL inserts one image block
    per image of the row before the user's text itself."""
    messages: list[Message] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": user_text(question, format_prompt)})
    return messages


def placeholder_text(question: str, num_images: int, *, format_prompt: str | None = FORMAT_PROMPT,
                     placeholder: str = "<image>") -> str:
    """The user text with one `placeholder` per image before it, as EasyR1 and verl read prompts
    (`format_prompt=None` leaves the instruction to the trainer's own setting)."""
    return placeholder * num_images + user_text(question, format_prompt)

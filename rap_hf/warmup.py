"""Warm up a tiny VLM on the embedded visual world, so it can serve as a RAP scorer offline.

A random-weight model solves nothing, so every row would look unsolvable. Supervised fine-tuning on
the world's train split teaches a small Qwen2.5-VL-architecture model to answer in the paper's format
(`<think> ... </think> \\boxed{...}`): colours from the picture, counts (the slow skill), answers the
question gives away, guesses where nothing decides, and one count question ("Count the squares.")
answered from the picture only 2 times in 5 (`PARTIAL_SHARE`): the skill GRPO can improve. A
share of the examples is text-only, with a guess of the right kind as the target where the answer is
only in the picture, so that without the image the model guesses at chance in the right format, which
is what CDE measures.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .data.synthetic import COLOURS, MAX_COUNT
from .rollouts.transformers_engine import encode, left_padded, pad_token_id
from .rows import prepare_rows

GUESSES = {"colour": list(COLOURS), "count": [str(n) for n in range(1, MAX_COUNT + 1)]}
# The skill taught only partly ("partial_count", planted "learnable"): with the picture, the taught
# answer is the count in PARTIAL_SHARE of the examples and the prior PRIOR_COUNT otherwise, said as if
# counted; without the picture, the prior. The scorer so reads the count but gives it less often than
# the prior: greedy, it answers 2; sampled, it is right 2 times in 5 where the count is not 2. A fixed
# share of the targets, not a short training, decides how far it learned, so every seed and thread
# count lands at the same level.
PARTIAL_SHARE = 0.4
PRIOR_COUNT = "2"


# Every taught response opens by stating its answer (a guess where nothing decides it), then says why.
# The answer then stands at the same place for every row and condition, so logit-CDE can teacher-force
# it there (`LOGIT_CDE_TARGET`, the embedded recipe's `logit_cde_target`), where the model gives it.
LOGIT_CDE_TARGET = "<think> It is {answer}."


def target_response(task: str, answer: str, with_image: bool, rng: random.Random) -> str:
    """The response the model is taught for one row and condition."""
    if task in ("colour", "count") and not with_image:
        given, why = rng.choice(GUESSES[task]), "I cannot see the picture, so I guess."
    elif task == "colour":
        given, why = answer, f"The shape in the picture is {answer}."
    elif task == "count":
        given, why = answer, f"I count the shapes: {answer}."
    elif task == "partial_count":
        if with_image and rng.random() < PARTIAL_SHARE:
            given, why = answer, f"I count the shapes: {answer}."
        else:  # the prior, said as if counted: only the number tells the two apart
            given, why = PRIOR_COUNT, f"I count the shapes: {PRIOR_COUNT}."
    elif task in ("leaked_colour", "leaked_count"):
        given, why = answer, "The question already says it."
    else:
        given, why = rng.choice(GUESSES["colour"]), "Nothing here decides it, so I guess."
    return f"{LOGIT_CDE_TARGET.format(answer=given)} {why} </think> \\boxed{{{given}}}"


def warm_up(
    model_path: str | Path,
    output_dir: str | Path,
    train,
    *,
    steps: int = 1000,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    text_only_share: float = 0.3,
    seed: int = 0,
    device: str | None = None,
    show_progress: bool = True,
    on_step: Callable[[int, int, float], None] | None = None,
    vision_steps: int = 0,
) -> Path:
    """Fine-tune the model at `model_path` on world rows `train` (with `rap_task`) and save it.

    With `vision_steps`, the vision tower is first taught colour and count on its own
    (`pretrain_vision`) and then kept fixed while the language model learns to answer from it: the
    language model then only learns to read features that already separate the answers, which it does
    reliably, where learning both at once tips between the two skills with float noise.

    `device` ("cpu", "cuda", ...; None: the first GPU if there is one) only changes the speed; the
    weights are trained and saved in float32. `on_step(step, steps, loss)` is called after every
    optimiser step (the Space shows it as progress). Returns `output_dir`, a folder
    `AutoModelForImageTextToText` and `AutoProcessor` load.
    """
    from .modeling import pick_device
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if "rap_task" not in train.column_names:
        raise ValueError("warm_up trains on the embedded visual world: rows need the rap_task column")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    device = pick_device(device)
    model = AutoModelForImageTextToText.from_pretrained(str(model_path), dtype=torch.float32).to(device)
    processor = AutoProcessor.from_pretrained(str(model_path))
    tokenizer = processor.tokenizer
    eos = tokenizer.eos_token
    # Encode every prompt once, in both conditions (the images are processed here, not per step).
    encoded = []
    with tqdm(total=len(train), desc="Encoding prompts", disable=not show_progress) as bar:
        for batch in train.iter(batch_size=256):
            for row, task in zip(prepare_rows(batch, processor), batch["rap_task"]):
                if row.error is not None:
                    raise ValueError(f"warm_up: row {row.rap_id!r} cannot be used: {row.error}")
                per_condition = {True: encode(processor, row.image_prompt), False: encode(processor, row.text_prompt)}
                encoded.append((row.answer, task, per_condition))
            bar.update(len(batch["rap_id"]))
    pad_id = pad_token_id(processor)
    if vision_steps:
        pretrain_vision(model, encoded, steps=vision_steps, learning_rate=learning_rate, seed=seed, device=device,
                        show_progress=show_progress)
    trained = [p for name, p in model.named_parameters() if not (vision_steps and _in_vision_tower(name))]
    optimizer = torch.optim.AdamW(trained, lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps)))
    model.train()
    progress = tqdm(range(steps), desc="Warming up the scorer", disable=not show_progress)
    for step in progress:
        picks = [encoded[rng.randrange(len(encoded))] for _ in range(batch_size)]
        with_image = [rng.random() >= text_only_share for _ in picks]
        targets = [target_response(task, answer, flag, rng) + eos for (answer, task, _), flag in zip(picks, with_image)]
        target_ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
        inputs, labels = _collate([enc[flag] for (_, _, enc), flag in zip(picks, with_image)], target_ids, pad_id)
        loss_tensor = target_loss(model, {k: v.to(device) for k, v in inputs.items()}, labels.to(device))
        loss_tensor.backward()
        loss = loss_tensor.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        progress.set_postfix(loss=f"{loss:.3f}")
        if on_step is not None:
            on_step(step + 1, steps, loss)
    model.eval()
    output_dir = Path(output_dir)
    model.to("cpu").save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir


def target_loss(model, inputs: dict, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the targets, for labels of the batch's last T positions (`_collate`).

    Logits are computed only where targets are predicted (every row ends at the last position): the
    LM head and its softmax over all the prompt positions would cost 15 % of a step for nothing.
    Equal to the model's own loss with labels over the whole sequence."""
    logits = model(**inputs, logits_to_keep=labels.shape[1] + 1).logits[:, :-1]
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)


def _collate(encoded: list[dict], target_ids: list[list[int]], pad_id: int) -> tuple[dict, torch.Tensor]:
    """A training batch of prompt + target from per-example processor outputs, and the labels of its
    last T positions (T = the longest target; left padding makes every target end at the last
    position), -100 where a shorter target has not started."""
    batch, _ = left_padded(encoded, target_ids, pad_id)
    longest = max(len(ids) for ids in target_ids)
    labels = batch["input_ids"][:, -longest:].clone()
    for row, ids in enumerate(target_ids):
        labels[row, : longest - len(ids)] = -100
    return batch, labels


def pretrain_vision(model, encoded: list, *, steps: int, learning_rate: float, seed: int, device,
                    batch_size: int = 128, show_progress: bool = True) -> None:
    """Teach the vision tower (and its merger into the language model) to see colour and count,
    before the language model learns to answer: two linear heads on the mean of a picture's image
    tokens predict the shapes' colour and their number, trained with cross-entropy; the heads are
    then dropped. The labels come from the rows whose answer states them (colour and count rows,
    leaked or not). At 56 pixels (one image token per cell of the world's 2 x 2 grid) both heads
    reach about 100 % on held-out pictures within 100 steps of batch 128 (25 s on 2 CPU cores)."""

    labelled = []  # (pixel_values, image_grid_thw, colour label or -1, count label or -1)
    colours = list(COLOURS)
    for answer, task, per_condition in encoded:
        image = per_condition[True]
        colour = colours.index(answer) if task in ("colour", "leaked_colour") else -1
        count = int(answer) - 1 if task in ("count", "leaked_count", "partial_count") else -1
        if colour >= 0 or count >= 0:
            labelled.append((image["pixel_values"], image["image_grid_thw"], colour, count))
    hidden = model.config.text_config.hidden_size
    heads = torch.nn.ModuleDict({"colour": torch.nn.Linear(hidden, len(colours)),
                                 "count": torch.nn.Linear(hidden, MAX_COUNT)}).to(device)
    tower = [p for name, p in model.named_parameters() if _in_vision_tower(name)]
    optimizer = torch.optim.AdamW([*tower, *heads.parameters()], lr=learning_rate, weight_decay=0.0)
    rng = random.Random(seed + 1)
    model.train()
    progress = tqdm(range(steps), desc="Teaching the vision tower", disable=not show_progress)
    for _ in progress:
        batch = [labelled[rng.randrange(len(labelled))] for _ in range(batch_size)]
        pixels = torch.cat([b[0] for b in batch]).to(device)
        grids = torch.cat([b[1] for b in batch]).to(device)
        features = model.get_image_features(pixel_values=pixels, image_grid_thw=grids).pooler_output
        pooled = torch.stack([f.mean(0) for f in features])
        loss = pooled.new_zeros(())
        for name, column in (("colour", 2), ("count", 3)):
            labels = torch.tensor([b[column] for b in batch], device=device)
            if (labels >= 0).any():
                loss = loss + torch.nn.functional.cross_entropy(heads[name](pooled), labels, ignore_index=-1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        progress.set_postfix(loss=f"{loss.item():.3f}")


def _in_vision_tower(name: str) -> bool:
    """Whether a parameter belongs to the vision tower or its merger into the language model."""
    return ".visual." in f".{name}"

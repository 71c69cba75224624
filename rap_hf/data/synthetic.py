"""The embedded visual world: a small image-question set with known answers, drawn with PIL.

It is the default data of the quickstart, the Space and the tests, so that a new user sees RAP
behave on real images without downloading anything. Every row carries `rap_planted`, the truth
that selection should recover:

- ``visual``: the answer is only in the image (`rap_task` "colour": the colour of the one shape;
  "count": how many shapes, 1 to 4);
- ``language_prior``: the question gives the answer away ("The square is red. What colour is the
  square?"); the image agrees with it, but is not needed (`rap_task` "leaked_colour", "leaked_count");
- ``unsolvable``: nothing in the input determines the answer (`rap_task` "unsolvable": the colour
  the shape "will be painted tomorrow", drawn at random independently of the image);
- ``learnable``: the answer is only in the image, and the embedded scorer has only partly learned to
  give it (`rap_task` "partial_count": "Count the squares.", 1 to 4). Its warm-up answers these
  questions from the picture in 2 examples of 5 and with the prior "2" otherwise
  (`rap_hf.warmup.PARTIAL_SHARE`), so it reads the count but gives it less often than the prior: the
  rows GRPO can improve, which RAP should find.
"""

from __future__ import annotations

import io
import random
from collections.abc import Mapping

from .canonical import images_feature

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 70, 220),
    "yellow": (235, 205, 20),
    "purple": (140, 40, 170),
}
SHAPES = ("square", "circle", "triangle")
NUMBER_WORDS = ("one", "two", "three", "four")
MAX_COUNT = 4

DEFAULT_MIX: dict[str, float] = {
    "colour": 0.275,
    "count": 0.275,
    "leaked_colour": 0.10,
    "leaked_count": 0.10,
    "unsolvable": 0.05,
    "partial_count": 0.20,
}
PLANTED = {
    "colour": "visual",
    "count": "visual",
    "leaked_colour": "language_prior",
    "leaked_count": "language_prior",
    "unsolvable": "unsolvable",
    "partial_count": "learnable",
}
BACKGROUND = (250, 250, 250)


def _draw_shape(draw, shape: str, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box
    if shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    else:  # pragma: no cover - internal
        raise ValueError(shape)


def draw_scene(
    shape: str, colour: str, count: int, image_size: int, rng: random.Random, grid: int = 2
) -> bytes:
    """PNG bytes of `count` shapes of one kind and colour, each in its own cell of a `grid` x `grid` grid."""
    from PIL import Image, ImageDraw

    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be in 1..{MAX_COUNT}, got {count}")
    image = Image.new("RGB", (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    cell = image_size // grid
    cells = rng.sample(range(grid * grid), count)
    for c in cells:
        cx, cy = (c % grid) * cell, (c // grid) * cell
        # A single shape may be bigger; several must stay inside their cells to be countable.
        side = rng.randint(int(cell * 0.45), int(cell * 0.8))
        x0 = cx + rng.randint(1, cell - side - 1)
        y0 = cy + rng.randint(1, cell - side - 1)
        _draw_shape(draw, shape, (x0, y0, x0 + side, y0 + side), COLOURS[colour])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _make_row(task: str, rng: random.Random, image_size: int, grid: int) -> dict[str, str | bytes]:
    shape = rng.choice(SHAPES)
    colour = rng.choice(list(COLOURS))
    count = 1
    if task == "colour":
        question, answer = f"What colour is the {shape}?", colour
    elif task == "count":
        count = rng.randint(1, MAX_COUNT)
        question, answer = f"How many {shape}s are there in the image?", str(count)
    elif task == "partial_count":
        count = rng.randint(1, MAX_COUNT)
        question, answer = f"Count the {shape}s.", str(count)
    elif task == "leaked_colour":
        question, answer = f"The {shape} is {colour}. What colour is the {shape}?", colour
    elif task == "leaked_count":
        count = rng.randint(1, MAX_COUNT)
        noun = shape if count == 1 else f"{shape}s"
        verb = "is" if count == 1 else "are"
        question = f"There {verb} {NUMBER_WORDS[count - 1]} {noun}. How many {shape}s are there in the image?"
        answer = str(count)
    elif task == "unsolvable":
        question = f"What colour will the {shape} be painted tomorrow?"
        answer = rng.choice(list(COLOURS))  # independent of the picture: no input determines it
    else:
        raise ValueError(f"Unknown task {task!r}; known: {', '.join(PLANTED)}")
    png = draw_scene(shape, colour, count, image_size, rng, grid)
    return {"question": question, "answer": answer, "task": task, "png": png}


def make_visual_world(
    n: int,
    seed: int = 0,
    *,
    test_fraction: float = 0.2,
    image_size: int = 84,
    mix: Mapping[str, float] | None = None,
    grid: int = 2,
):
    """Build the embedded visual world in canonical RAP form.

    Args:
        n: Total number of rows, split into `train` and `test`.
        seed: Everything (tasks, shapes, colours, positions, split) follows from it.
        test_fraction: Share of rows in the held-out `test` split.
        image_size: Side of the square images, in pixels (84 = 3 x 3 Qwen image tokens).
        mix: Share of each task (keys of `DEFAULT_MIX`); normalised to sum to one.
        grid: Shapes sit one per cell of a `grid` x `grid` grid. (Measured: at 84 px, a 3 x 3 grid,
            one Qwen image token per cell, makes the shapes smaller and slows a tiny scorer's
            warm-up; see `benchmarks/gpu/warmup_recipes.py`.)

    Returns:
        `DatasetDict(train=..., test=...)` with the canonical columns `rap_id`, `question`,
        `answer`, `images` (`List(Image(decode=False))`, PNG bytes), plus `rap_planted` (visual,
        language_prior, unsolvable, learnable) and `rap_task`.
    """
    from datasets import Dataset, DatasetDict, Features, Value

    if n < 2:
        raise ValueError(f"n must be at least 2 (one train and one test row), got {n}")
    if grid * grid < MAX_COUNT or image_size // grid < 8:
        raise ValueError(f"grid={grid} must give at least {MAX_COUNT} cells of at least 8 pixels "
                         f"(image_size={image_size})")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    mix = dict(mix or DEFAULT_MIX)
    unknown = set(mix) - set(PLANTED)
    if unknown:
        raise ValueError(f"Unknown tasks in mix: {sorted(unknown)}; known: {', '.join(PLANTED)}")
    total = sum(mix.values())
    if total <= 0:
        raise ValueError("mix must give a positive share to at least one task")

    rng = random.Random(seed)
    # Exact task counts (largest remainder), so small worlds still hold every planted type.
    shares = {task: n * weight / total for task, weight in mix.items()}
    counts = {task: int(share) for task, share in shares.items()}
    for task in sorted(shares, key=lambda t: shares[t] - counts[t], reverse=True)[: n - sum(counts.values())]:
        counts[task] += 1
    tasks = [task for task, k in counts.items() for _ in range(k)]
    rng.shuffle(tasks)

    rows: dict[str, list] = {k: [] for k in ("rap_id", "question", "answer", "images", "rap_planted", "rap_task")}
    for i, task in enumerate(tasks):
        row = _make_row(task, rng, image_size, grid)
        rows["rap_id"].append(f"world-{seed}-{i:06d}")
        rows["question"].append(row["question"])
        rows["answer"].append(row["answer"])
        rows["images"].append([{"bytes": row["png"], "path": None}])
        rows["rap_planted"].append(PLANTED[task])
        rows["rap_task"].append(task)

    features = Features(
        {
            "rap_id": Value("string"),
            "question": Value("string"),
            "answer": Value("string"),
            "images": images_feature(),
            "rap_planted": Value("string"),
            "rap_task": Value("string"),
        }
    )
    ds = Dataset.from_dict(rows, features=features)
    n_test = max(1, min(n - 1, round(n * test_fraction)))
    split = ds.train_test_split(test_size=n_test, seed=seed, shuffle=True)
    return DatasetDict(train=_in_id_order(split["train"]), test=_in_id_order(split["test"]))


def _in_id_order(ds: Dataset) -> Dataset:
    """`ds` in `rap_id` order: stable, readable, and independent of the shuffle's internals.
    (`Dataset.sort` would do it, but passes pyarrow an option pyarrow 25 deprecates.)"""
    ids = ds["rap_id"]
    return ds.select(sorted(range(len(ds)), key=ids.__getitem__))

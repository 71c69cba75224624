"""Scored datasets built from outcome tables, for the selection tests.

The oracle of the reference-mode parity tests, a port of the released selection script, lives in
`benchmarks/released_selection.py` (the selection benchmark times it too).
"""

from __future__ import annotations

from datasets import Dataset, Features, List, Value

SCORED_FEATURES = Features(
    {
        "rap_id": Value("string"),
        "rap_image_correct": List(Value("bool")),
        "rap_text_correct": List(Value("bool")),
        "rap_image_formatted": List(Value("bool")),
        "rap_text_formatted": List(Value("bool")),
        "rap_ace": Value("float64"),
        "rap_error": Value("string"),
    }
)


def flags(strict: int, answer_only: int, m: int) -> tuple[list[bool], list[bool]]:
    """Correct / formatted flags: `strict` rollouts right in answer and format, `answer_only` more
    right in answer only, the rest wrong (and formatted, which must not matter)."""
    assert strict + answer_only <= m
    correct = [True] * (strict + answer_only) + [False] * (m - strict - answer_only)
    formatted = [True] * strict + [False] * answer_only + [True] * (m - strict - answer_only)
    return correct, formatted


def scored_dataset(rows: list[dict], m: int = 5) -> Dataset:
    """rows: dicts with rap_id, img (strict), img_extra (answer-only), txt (strict), txt_extra, ace, error."""
    data = {name: [] for name in SCORED_FEATURES}
    for row in rows:
        if row.get("error"):
            for name in ("rap_image_correct", "rap_text_correct", "rap_image_formatted", "rap_text_formatted"):
                data[name].append(None)
            data["rap_ace"].append(None)
            data["rap_error"].append(row["error"])
        else:
            image_correct, image_formatted = flags(row.get("img", 0), row.get("img_extra", 0), m)
            text_correct, text_formatted = flags(row.get("txt", 0), row.get("txt_extra", 0), m)
            data["rap_image_correct"].append(image_correct)
            data["rap_image_formatted"].append(image_formatted)
            data["rap_text_correct"].append(text_correct)
            data["rap_text_formatted"].append(text_formatted)
            data["rap_ace"].append(row.get("ace", -50.0))
            data["rap_error"].append(None)
        data["rap_id"].append(row["rap_id"])
    return Dataset.from_dict(data, features=SCORED_FEATURES)


def rollout_logs(rows: list[dict], m: int = 5) -> tuple[list[dict], list[dict]]:
    """The released pipeline's logs: per rollout {"onlyid", "reward"}, reward = 0.9 acc + 0.1 format."""
    image, text = [], []
    for row in rows:
        for log, strict, extra in ((image, row.get("img", 0), row.get("img_extra", 0)),
                                   (text, row.get("txt", 0), row.get("txt_extra", 0))):
            correct, formatted = flags(strict, extra, m)
            for c, f in zip(correct, formatted):
                log.append({"onlyid": row["rap_id"], "reward": 0.9 * float(c) + 0.1 * float(f)})
    return image, text


def hand_scored(canonical, image_counts: list[int], text_counts: list[int], m: int = 5) -> Dataset:
    """Canonical rows with score columns as a scorer would write them, from per-row counts of
    correct image / text rollouts (cycled over the rows); every rollout formatted."""
    n = len(canonical)
    image = [image_counts[i % len(image_counts)] for i in range(n)]
    text = [text_counts[i % len(text_counts)] for i in range(n)]
    columns = {
        "rap_image_correct": [[k > j for j in range(m)] for k in image],
        "rap_text_correct": [[k > j for j in range(m)] for k in text],
        "rap_image_formatted": [[True] * m for _ in range(n)],
        "rap_text_formatted": [[True] * m for _ in range(n)],
        "rap_acc_image": [k / m for k in image],
        "rap_acc_text": [k / m for k in text],
        "rap_cde": [(a - b) / m for a, b in zip(image, text)],
        "rap_difficulty": [1 - k / m for k in image],
        "rap_ace": [-50.0] * n,  # log psi far below log(0.1): no row is attention-biased
        "rap_error": [None] * n,
    }
    features = {"rap_error": Value("string")}
    out = canonical
    for name, values in columns.items():
        out = out.add_column(name, values, feature=features.get(name))
    return out

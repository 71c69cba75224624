"""A direct port of the released RAP selection script (`select/selection.py`, Mrshenshen/RAP).

It keeps the script's structure, nested loops included (quadratic in the number of rows), so it
serves twice: as the oracle of the reference-mode parity tests and as the baseline the selection
benchmark times. Input: the two rollout logs the script reads (records of `onlyid` and `reward`,
M = 5 consecutive records per row, reward = 0.9 accuracy + 0.1 format) and the dataset's ids in
order. Output: the dataset positions the script keeps.

One deliberate difference: the script averages accuracies in Python set order, which changes
between processes (string hashing is randomised); this port averages in dataset order, as
`rap_hf.select` does, so runs are repeatable.
"""

from __future__ import annotations

import random

import numpy as np


def _accuracies(log: list[dict], ids: list[str]) -> dict[str, float]:
    counts = {key: [0, 0] for key in ids}
    for sample in log:
        key = str(sample["onlyid"])
        counts[key][1] += 1
        if sample["reward"] == 1:
            counts[key][0] += 1
    return {key: correct / total if total else -1 for key, (correct, total) in counts.items()}


def _similarity(sequence: list[float], baseline) -> float:
    squared = sum((a - b) ** 2 for a, b in zip(sequence, baseline))
    largest = sum((1 - b) ** 2 for b in baseline)
    return 1 - squared / largest


def released_selection(image_log: list[dict], text_log: list[dict], dataset_ids: list[str],
                       similarity_threshold: float = 0.85) -> list[int]:
    """Dataset positions the released script keeps."""
    ids = list(dict.fromkeys(str(sample["onlyid"]) for sample in text_log))
    ids_image = list(dict.fromkeys(str(sample["onlyid"]) for sample in image_log))
    text_acc, image_acc = _accuracies(text_log, ids), _accuracies(image_log, ids_image)
    valid_ids, sequences = ids, [[text_acc[key]] for key in ids]
    valid_ids_image, sequences_image = ids_image, [[image_acc[key]] for key in ids_image]
    baseline = np.mean(sequences, axis=0)
    baseline_image = np.mean(sequences_image, axis=0)
    diff = [a - b for a, b in zip(baseline_image, baseline)]

    right1, easy = [], []
    for start in range(0, len(image_log), 5):
        group = image_log[start : start + 5]
        count = sum(1 for sample in group if sample.get("reward", 1) >= 0.9)
        if count == 5:
            easy.append(str(group[0]["onlyid"]))
        elif count == 1:
            right1.append(str(group[0]["onlyid"]))

    scores = {key: (_similarity(seq, baseline_image), seq) for key, seq in zip(valid_ids_image, sequences_image)}
    core, selected = set(), set()
    for key, score in scores.items():
        if score[0] >= 0.6:
            for other, acc in zip(valid_ids, sequences):
                if other == key and score[1][0] - acc[0] > 0.2:
                    core.add(key)
        if score[0] >= similarity_threshold:
            for other, acc in zip(valid_ids, sequences):
                if other == key:
                    if score[1][0] - acc[0] > diff[0]:
                        selected.add(key)
                    elif key in right1 and score[1][0] - acc[0] >= 0.2:
                        selected.add(key)
        for other, acc in zip(valid_ids, sequences):
            if other == key and key in right1 and score[1][0] - acc[0] >= 0.6:
                selected.add(key)

    filtered = [i for i, key in enumerate(dataset_ids) if key in core and key not in easy]
    pool = [i for i, key in enumerate(dataset_ids) if key in selected and key in right1]
    random.seed(42)
    sampled = set(random.sample(pool, int(len(pool) * 0.1)))
    return sorted(set(filtered).union(sampled))

"""The embedded visual world: its answers are what the pictures and questions say they are."""

from collections import Counter, deque

import pytest

from rap_hf.data.images import decode_row_images
from rap_hf.data.synthetic import BACKGROUND, COLOURS, DEFAULT_MIX, PLANTED, make_visual_world


def _shapes(image):
    """Connected non-background regions: [(pixel count, dominant colour name)]."""
    width, height = image.size
    pixels = image.load()
    seen = set()
    regions = []
    palette = {rgb: name for name, rgb in COLOURS.items()}
    for x in range(width):
        for y in range(height):
            if (x, y) in seen or pixels[x, y] == BACKGROUND:
                continue
            queue, colours, size = deque([(x, y)]), Counter(), 0
            seen.add((x, y))
            while queue:
                px, py = queue.popleft()
                size += 1
                colours[palette.get(pixels[px, py])] += 1
                for nx, ny in ((px + 1, py), (px - 1, py), (px, py + 1), (px, py - 1)):
                    if 0 <= nx < width and 0 <= ny < height and (nx, ny) not in seen and pixels[nx, ny] != BACKGROUND:
                        seen.add((nx, ny))
                        queue.append((nx, ny))
            regions.append((size, colours.most_common(1)[0][0]))
    return regions


def test_splits_sizes_and_columns():
    world = make_visual_world(100, seed=1, test_fraction=0.25)
    assert len(world["train"]) == 75 and len(world["test"]) == 25
    assert world["train"].column_names == ["rap_id", "question", "answer", "images", "rap_planted", "rap_task"]
    ids = list(world["train"]["rap_id"]) + list(world["test"]["rap_id"])
    assert len(set(ids)) == 100
    tasks = Counter(list(world["train"]["rap_task"]) + list(world["test"]["rap_task"]))
    assert tasks == {"colour": 28, "count": 27, "leaked_colour": 10, "leaked_count": 10, "unsolvable": 5,
                     "partial_count": 20}
    for row in world["train"]:
        assert row["rap_planted"] == PLANTED[row["rap_task"]]


def test_deterministic_for_a_seed():
    a, b, c = make_visual_world(30, seed=5), make_visual_world(30, seed=5), make_visual_world(30, seed=6)
    assert a["train"]["question"] == b["train"]["question"]
    assert a["train"][0]["images"] == b["train"][0]["images"]
    assert a["train"]["answer"] != c["train"]["answer"] or a["train"]["question"] != c["train"]["question"]


def test_answers_match_the_pictures():
    world = make_visual_world(120, seed=2)
    checked = Counter()
    for row in world["train"]:
        (image,) = decode_row_images(row["images"], row["rap_id"])
        assert image.size == (84, 84)
        regions = _shapes(image)
        colours = {colour for _, colour in regions}
        assert len(colours) == 1  # one colour per scene
        task, answer = row["rap_task"], row["answer"]
        if task in ("colour", "leaked_colour"):
            assert len(regions) == 1 and colours == {answer}
        elif task in ("count", "leaked_count", "partial_count"):
            assert 1 <= int(answer) <= 4 and len(regions) == int(answer)
        else:  # unsolvable: the answer is a colour, not derived from the picture
            assert answer in COLOURS
        checked[task] += 1
    assert set(checked) == set(DEFAULT_MIX)


def test_planted_question_types():
    world = make_visual_world(200, seed=3)
    for row in world["train"]:
        question, answer = row["question"].lower(), row["answer"]
        if row["rap_task"] == "leaked_colour":
            assert f" is {answer}." in question
        elif row["rap_task"] == "leaked_count":
            assert ["one", "two", "three", "four"][int(answer) - 1] in question
        else:  # visual and unsolvable questions never contain their answer
            assert answer.lower() not in question.split() and answer not in question
    # The unsolvable answers are not a function of the picture: the same colour of shape gets
    # different answers across rows.
    unsolvable = [r for r in world["train"] if r["rap_task"] == "unsolvable"]
    by_colour = {}
    for row in unsolvable:
        (image,) = decode_row_images(row["images"])
        drawn = _shapes(image)[0][1]
        by_colour.setdefault(drawn, set()).add(row["answer"])
    assert any(len(answers) > 1 for answers in by_colour.values())


def test_custom_mix_and_errors():
    world = make_visual_world(10, seed=0, mix={"count": 1.0})
    assert set(world["train"]["rap_task"]) == {"count"}
    with pytest.raises(ValueError, match="Unknown tasks"):
        make_visual_world(10, mix={"weather": 1.0})
    with pytest.raises(ValueError, match="at least 2"):
        make_visual_world(1)


def test_a_finer_grid_keeps_the_answers_right():
    world = make_visual_world(60, seed=5, grid=3)
    for row in world["train"]:
        regions = _shapes(decode_row_images(row["images"], row["rap_id"])[0])
        if row["rap_task"] in ("count", "leaked_count"):
            assert len(regions) == int(row["answer"])
        # One shape per 28-pixel cell: none is wider than a cell.
        assert all(size <= 26 * 26 for size, _ in regions)
    with pytest.raises(ValueError, match="grid=1 must give at least 4 cells"):
        make_visual_world(10, grid=1)

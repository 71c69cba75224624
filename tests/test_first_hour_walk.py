"""The first hour, walked as a new user walks it: their own CSV of picture paths, from `rap-hf convert`
to the Space, through the command line only, with the mistakes a newcomer makes on the way.

Every step checks what the user sees: the exit status, the one line an error is, and that the
corrected command then runs (nothing a failed step wrote blocks it).
"""

import csv
import json

import pytest
from datasets import load_dataset, load_from_disk
from PIL import Image

from rap_hf.cli import main

pytestmark = pytest.mark.slow
# A random tiny model at its own small resolution, answering briefly: seconds on two cores.
SCORE = ["--num-rollouts", "2", "--max-new-tokens", "6", "--min-pixels", "none", "--max-pixels", "none",
         "--map-batch-size", "4"]


def _last_line(err: str) -> str:
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert lines and "Traceback" not in err, err
    return lines[-1]


@pytest.fixture
def user_csv(tmp_path):
    """mydata/rows.csv with `id,image_path,question,answer` and the pictures beside it (relative paths);
    one row names a picture that is not there."""
    folder = tmp_path / "mydata"
    (folder / "pics").mkdir(parents=True)
    rows = []
    for i in range(8):
        colour = ("red", "blue")[i % 2]
        Image.new("RGB", (64, 48), (220, 30, 30) if colour == "red" else (40, 70, 220)).save(folder / f"pics/{i}.png")
        rows.append({"id": f"q{i}", "image_path": f"pics/{i}.png", "question": "What colour is the picture?",
                     "answer": colour})
    rows[7]["image_path"] = "pics/gone.png"
    with open(folder / "rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder / "rows.csv"


def test_a_csv_from_convert_to_the_space(user_csv, tiny_vlm_paths, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = str(tiny_vlm_paths["qwen2_5_vl"])

    # convert: every picture found next to the CSV (not in the working folder), the missing one named.
    assert main(["convert", "--dataset", "mydata/rows.csv", "--out", "canonical"]) == 0
    canonical = load_from_disk("canonical")
    assert [len(images) for images in canonical["images"]] == [1] * 8
    from rap_hf.data.images import decode_row_images

    # save_to_disk embedded the picture that sits next to the CSV: red, as drawn for row q0.
    assert decode_row_images(canonical["images"][0], "q0")[0].getpixel((0, 0)) == (220, 30, 30)

    # score, with a typo first: one line, at once, and nothing written.
    assert main(["score", "--model", model, "--dataset", "mydata/rows.cvs", "--output", "scored", *SCORE]) == 1
    assert "no such file or folder" in _last_line(capsys.readouterr().err)
    assert not (tmp_path / "scored.shards").exists()
    assert main(["score", "--model", model, "--dataset", "mydata/rows.csv", "--output", "scored", *SCORE]) == 0
    out = capsys.readouterr().out
    assert "Scored 8 rows (1 with rap_error)" in out and "(e.g. row 'q7')" in out
    scored = load_from_disk("scored")
    assert scored["rap_error"][7].startswith("Image 0 of row 'q7' could not be decoded")

    # select with a setting out of range, then for real: the random model solves nothing, so the
    # default threshold keeps nothing, and the report says why.
    assert main(["select", "--input", "scored", "--output", "selected", "--cde-threshold", "5"]) == 1
    assert "--cde-threshold" in _last_line(capsys.readouterr().err)
    assert main(["select", "--input", "scored", "--output", "selected"]) == 0
    assert "Nothing was kept" in capsys.readouterr().out

    # train and publish refuse the empty selection in one line, before loading any model.
    assert main(["train", "--config", "tiny_cpu", "--model_name_or_path", model, "--dataset", "selected",
                 "--output_dir", "ckpt"]) == 1
    assert _last_line(capsys.readouterr().err).startswith("rap-hf train: error:")
    assert main(["push", "subset", "--selection", "selected", "--repo-id", "me/rows-rap", "--local-dir", "tree"]) == 1
    assert _last_line(capsys.readouterr().err).startswith("rap-hf push: error:")
    assert not (tmp_path / "tree").exists()

    # A threshold every scored row passes (D > -1): the rows are kept, and the path goes on.
    assert main(["select", "--input", "scored", "--output", "kept", "--cde-threshold", "-1"]) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "kept" / "report.json").read_text())
    assert report["kept"] == 7 and report["counts"]["error"] == 1
    assert main(["train", "--config", "tiny_cpu", "--model_name_or_path", model, "--dataset", "kept",
                 "--output_dir", "ckpt", "--max_steps", "1", "--max_completion_length", "6"]) == 0
    assert main(["eval", "--model", "ckpt", "--dataset", "mydata/rows.csv", "--output", "eval", "--max-new-tokens",
                 "4", "--min-pixels", "none", "--max-pixels", "none"]) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["total"] == 8 and summary["errors"] == 1
    capsys.readouterr()

    # Publish (to local trees): the subset loads back; the cards keep what the user gave, no machine path.
    assert main(["push", "subset", "--selection", "kept", "--repo-id", "me/rows-rap", "--local-dir", "tree"]) == 0
    assert len(load_dataset(str(tmp_path / "tree"), split="train")) == 7
    dataset_card = (tmp_path / "tree" / "README.md").read_text()
    assert "qwen2_5_vl" in dataset_card and str(tmp_path) not in dataset_card
    assert main(["push", "checkpoint", "--folder", "ckpt", "--repo-id", "me/tiny-rap", "--local-dir", "model",
                 "--eval-summary", "eval/summary.json"]) == 0
    model_card = (tmp_path / "model" / "README.md").read_text()
    assert "rap_reward" in model_card and str(tmp_path) not in model_card

    # The Space opened on the selection shows that selection's own count.
    from rap_hf.demo import DemoData, overview

    data = DemoData.load("kept")
    assert data.initial_values()[0] == -1  # the selection's own lambda_c
    assert overview(data, *data.initial_values())[0].startswith("### Kept 7 of 8 rows")

"""A new executor of sharded scoring is one class and one registry line: the order it runs in
(lock, start check, prepare, missing shards, merge, summary) is `Executor.run`'s, written once."""

from __future__ import annotations

import pytest
from datasets import load_from_disk
from distributed_helpers import (  # noqa: F401  (fixtures)
    model,
    one_thread,
    rows_dir,
    single,
)
from distributed_helpers import assert_same_rows, score_args

from rap_hf.cli import command_parser, main
from rap_hf.distributed import EXECUTORS, Executor, register_executor


class LastFirst(Executor):
    """Every missing shard in this process, the last one first: the merge still puts rows in input order."""

    name = "last-first"
    help = "every shard in this process, last first"
    scored: list[int] = []

    def score(self, job, missing):
        for shard in reversed(missing):
            job.score_one(shard)
            LastFirst.scored.append(shard.index)


class Forgetful(LastFirst):
    """Skips the first shard: the order it runs in refuses to merge and names what is missing."""

    name = "forgetful"

    def score(self, job, missing):
        super().score(job, missing[1:])


@pytest.fixture
def registered():
    before = dict(EXECUTORS)
    LastFirst.scored = []
    register_executor(LastFirst)  # the one line a new executor needs
    register_executor(Forgetful)
    yield
    EXECUTORS.clear()
    EXECUTORS.update(before)


def test_a_registered_executor_is_an_engine_choice_and_scores_like_the_built_in_one(registered, single, model,
                                                                                      rows_dir, tmp_path, capsys):
    assert "last-first" in command_parser("score").format_help()
    out = tmp_path / "scored"
    assert main(score_args(model, rows_dir, out, "--engine", "last-first")) == 0
    assert LastFirst.scored == [3, 2, 1, 0]
    assert "Scored 8 rows (0 with rap_error)" in capsys.readouterr().out
    assert_same_rows(load_from_disk(str(out)), load_from_disk(str(single)))
    # The order's other steps come with it: a finished output is not scored again.
    assert main(score_args(model, rows_dir, out, "--engine", "last-first")) == 0
    assert LastFirst.scored == [3, 2, 1, 0]
    assert "nothing to do: the output was already complete" in capsys.readouterr().out


def test_an_executor_that_leaves_a_shard_unscored_gets_exit_3_and_the_built_in_one_finishes(registered, model,
                                                                                             rows_dir, tmp_path,
                                                                                             capsys):
    out = tmp_path / "scored"
    assert main(score_args(model, rows_dir, out, "--engine", "forgetful")) == 3
    assert "shard 0 (2 rows) of 4 could not be merged" in capsys.readouterr().err
    assert not out.exists()
    assert main(score_args(model, rows_dir, out)) == 0
    assert "2 scored in this run, 6 from earlier shards" in capsys.readouterr().out


def test_an_unregistered_engine_is_a_usage_error(model, rows_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(score_args(model, rows_dir, tmp_path / "scored", "--engine", "last-first"))
    assert stop.value.code == 2
    assert "invalid choice: 'last-first'" in capsys.readouterr().err


def test_an_executor_needs_a_name():
    class Nameless(Executor):
        pass

    with pytest.raises(ValueError, match="Nameless needs a name"):
        register_executor(Nameless)


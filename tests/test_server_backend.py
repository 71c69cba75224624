"""The server backend against a real OpenAI-protocol server: `transformers serve` on the shipped scorer.

Scored through the server, the embedded world separates its planted types as in-process scoring does
(CDE's AUROC within 0.03) and greedy answers are the in-process ones. Faults are injected as a fleet
meets them: a busy server (503 / 429 with Retry-After), a request the server rejects (400), a key it
refuses (401), a server killed mid-run and started again, two servers under Ray with one killed.
Every server here binds to 127.0.0.1 on a free port and is stopped however its test ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from server_helpers import FaultProxy, Served, free_port

from rap_hf.embedded import DEFAULT_RECIPE, embedded_scored, embedded_world, shipped_scorer
from rap_hf.metrics.ranking import auroc

pytestmark = pytest.mark.slow

MODEL = "rap_hf/embedded_scorer"  # as the server names it: the folder as given, from the repository root
ROOT = Path(__file__).resolve().parents[1]
# The embedded world's own settings: its tiny processor keeps its own resolution.
SMALL = ["--min-pixels", "none", "--max-pixels", "none", "--device", "cpu"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = Served(MODEL, cwd=str(ROOT), log=tmp_path_factory.mktemp("serve") / "serve.log")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def train_rows(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rows") / "train"
    embedded_world()["train"].select(range(DEFAULT_RECIPE.score_rows)).save_to_disk(str(folder))
    return folder


def score(url: str | list[str], rows: Path, out: Path, *extra: str, env: dict | None = None,
          timeout: float = 600) -> subprocess.CompletedProcess:
    """`rap-hf score --backend server` in a process of its own, as a user runs it."""
    urls = [url] if isinstance(url, str) else url
    command = [sys.executable, "-m", "rap_hf", "score", "--model", MODEL, "--dataset", str(rows), "--output", str(out),
               "--backend", "server", *[flag for u in urls for flag in ("--server-url", u)], *SMALL, *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def planted_auroc(rows) -> float:
    visual = [d for d, planted in zip(rows["rap_cde"], rows["rap_planted"]) if planted == "visual"]
    prior = [d for d, planted in zip(rows["rap_cde"], rows["rap_planted"]) if planted == "language_prior"]
    return auroc(visual, prior)


def test_scores_through_a_server_as_in_process(server, train_rows, tmp_path):
    """The done-when of the server backend: every row scored through `rap-hf score --backend server`,
    CDE's AUROC on the planted types within 0.03 of in-process scoring, and `rap-hf select` saying that
    ACE was not applied (no server returns attention)."""
    import datasets

    rows = 96
    subset = tmp_path / "rows"
    datasets.load_from_disk(str(train_rows)).select(range(rows)).save_to_disk(str(subset))
    done = score(server.url, subset, tmp_path / "scored", "--num-rollouts", "5", "--max-new-tokens", "40",
                 "--map-batch-size", "32", "--batch-size", "32")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ACE and logit-CDE are not computed" in done.stderr
    scored = datasets.load_from_disk(str(tmp_path / "scored"))
    assert len(scored) == rows and not any(scored["rap_error"])
    assert "rap_ace" not in scored.column_names and all(len(r) == 5 for r in scored["rap_responses_image"])
    in_process = embedded_scored().select(range(rows))
    assert list(in_process["rap_id"]) == list(scored["rap_id"])
    through_server, local = planted_auroc(scored), planted_auroc(in_process)
    assert abs(through_server - local) <= 0.03, (through_server, local)

    selected = subprocess.run([sys.executable, "-m", "rap_hf", "select", "--input", str(tmp_path / "scored"),
                               "--output", str(tmp_path / "selected")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert selected.returncode == 0, selected.stderr[-2000:]
    assert "ACE was not applied" in selected.stdout
    manifest = json.loads((tmp_path / "scored" / "rap_scoring.json").read_text())["manifest"]
    assert manifest["model"] == MODEL and manifest["model_identity"].startswith("server:")
    assert "server_urls" not in json.dumps(manifest["config"])


def test_greedy_answers_through_the_server_are_the_in_process_ones(server):
    """`evaluate_model` (what `rap-hf eval` runs) through the server: greedy answers equal to in-process."""
    from rap_hf import EvalConfig, evaluate_model

    rows = embedded_world()["test"].select(range(24))
    settings = dict(temperature=0.0, max_new_tokens=40, min_pixels=None, max_pixels=None, batch_size=8)
    local = evaluate_model(str(shipped_scorer()), rows, config=EvalConfig(device="cpu", **settings),
                           show_progress=False)
    served = evaluate_model(MODEL, rows, config=EvalConfig(backend="server", server_urls=[server.url], **settings),
                            show_progress=False)
    assert served.rows["response"] == local.rows["response"]
    assert served.summary["accuracy"] == local.summary["accuracy"] and served.summary["errors"] == 0
    assert served.summary["generation"]["backend"] == "server"


def small_rows(train_rows: Path, folder: Path, count: int) -> Path:
    import datasets

    datasets.load_from_disk(str(train_rows)).select(range(count)).save_to_disk(str(folder))
    return folder


FAST = ["--num-rollouts", "2", "--max-new-tokens", "12", "--map-batch-size", "4", "--batch-size", "4"]


def responses(folder: Path) -> dict[str, list]:
    import datasets

    scored = datasets.load_from_disk(str(folder))
    return dict(zip(scored["rap_id"], zip(scored["rap_responses_image"], scored["rap_responses_text"])))


def test_busy_servers_are_retried_and_rejected_rows_fail_alone(server, train_rows, tmp_path):
    """503 and 429 (with Retry-After) are retried until the server answers, with the answers a calm
    server gives; a request the server rejects (400) fails its own row with the server's reason."""
    rows = small_rows(train_rows, tmp_path / "rows", 8)
    calm = score(server.url, rows, tmp_path / "calm", *FAST)
    assert calm.returncode == 0, calm.stderr[-2000:]

    import datasets

    questions = datasets.load_from_disk(str(rows)).select_columns(["rap_id", "question"]).to_list()
    counts = {q: sum(r["question"] == q for r in questions) for q in (r["question"] for r in questions)}
    rejected_id, rejected_question = next((r["rap_id"], r["question"]) for r in questions if counts[r["question"]] == 1)
    marker = json.dumps(rejected_question)[1:-1]  # as it appears in a JSON request body
    busy = {"left": 6}

    def rule(method, path, body):
        if not path.endswith("/chat/completions"):
            return None
        text = json.dumps(body.get("messages", ""))
        if marker in text and "image_url" in text:
            return 400, {}, {"error": {"message": "the picture could not be read", "type": "BadRequestError"}}
        if busy["left"] > 0 and body.get("max_tokens") != 1:  # the start check's probe passes
            busy["left"] -= 1
            if busy["left"] % 2:
                return 503, {"Retry-After": "1"}, {"error": {"message": "overloaded"}}
            return 429, {"retry-after-ms": "300"}, {"error": {"message": "slow down"}}
        return None

    proxy = FaultProxy(server.url, rule)
    try:
        faulty = score(proxy.url, rows, tmp_path / "faulty", *FAST)
    finally:
        proxy.close()
    assert faulty.returncode == 0, faulty.stderr[-2000:]
    assert busy["left"] == 0
    scored = datasets.load_from_disk(str(tmp_path / "faulty"))
    errors = dict(zip(scored["rap_id"], scored["rap_error"]))
    assert errors.pop(rejected_id) == ("generation failed: the server rejected the request (HTTP 400): the picture "
                                       "could not be read")
    assert not any(errors.values()) and len(scored) == 8
    expected = responses(tmp_path / "calm")
    del expected[rejected_id]
    got = responses(tmp_path / "faulty")
    assert {k: got[k] for k in expected} == expected  # the retried requests drew the same rollouts
    assert "1 with rap_error" in faulty.stdout


def test_start_check_refuses_in_one_line_and_writes_nothing(server, train_rows, tmp_path):
    rows = small_rows(train_rows, tmp_path / "rows", 4)
    nowhere = f"http://127.0.0.1:{free_port()}"
    for urls, model, expected in (
        ([nowhere], MODEL, f"{nowhere}/v1 is unreachable"),
        ([server.url], "some-org/other-model", f"does not serve 'some-org/other-model'; it serves '{MODEL}'"),
        ([server.url, nowhere], MODEL, "is unreachable"),
    ):
        out = tmp_path / "out"
        done = subprocess.run(
            [sys.executable, "-m", "rap_hf", "score", "--model", model, "--dataset", str(rows), "--output", str(out),
             "--backend", "server", *[f for u in urls for f in ("--server-url", u)], *SMALL, *FAST],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stderr[-2000:]
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("rap-hf score: error: ") and expected in last, last
        assert "Traceback" not in done.stderr
        assert not out.exists() and not Path(str(out) + ".shards").exists()


def test_api_key_is_sent_and_never_shown(server, train_rows, tmp_path):
    """A server behind a key: refused without it, in one line; with it (from the environment) the run
    scores, and the key is in no output, log, manifest or error."""
    key = "sk-rap-test-0123456789abcdef"

    def rule(method, path, body):
        if body["_headers"].get("authorization") != f"Bearer {key}":
            return 401, {}, {"error": {"message": "Invalid API key"}}
        return None

    rows = small_rows(train_rows, tmp_path / "rows", 4)
    proxy = FaultProxy(server.url, rule)
    try:
        refused = score(proxy.url, rows, tmp_path / "refused", *FAST)
        accepted = score(proxy.url, rows, tmp_path / "scored", *FAST, env={"RAP_SERVER_API_KEY": key})
        flag = score(proxy.url, rows, tmp_path / "flag", *FAST, "--server-api-key", key + "x")
    finally:
        proxy.close()
    assert refused.returncode == 1 and "refused the API key" in refused.stderr.splitlines()[-1]
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    assert flag.returncode == 1 and "refused the API key" in flag.stderr
    written = "".join(p.read_text(errors="ignore") for p in (tmp_path / "scored").rglob("*") if p.is_file())
    for text in (refused.stdout, refused.stderr, accepted.stdout, accepted.stderr, flag.stdout, flag.stderr, written):
        assert key not in text


def wait_for_shards(folder: Path, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while len(list(folder.glob("shard-*.arrow"))) < count:
        assert time.monotonic() < deadline, f"fewer than {count} shards in {folder} after {timeout} s"
        time.sleep(0.2)


@pytest.mark.parametrize("engine", [[], ["--num-proc", "2"]], ids=["one-process", "local-workers"])
def test_a_server_killed_mid_run_stops_it_and_the_same_command_resumes(train_rows, tmp_path, engine):
    """The server dies after a shard is written: the run stops after --server-max-wait with exit 3,
    finished shards kept and the missing ones named; started again, the same command scores the rest."""
    served = Served(MODEL, cwd=str(ROOT), log=tmp_path / "serve.log")
    rows = small_rows(train_rows, tmp_path / "rows", 16)
    out = tmp_path / "scored"
    flags = [*FAST, "--shard-rows", "4", "--server-max-wait", "5", *engine]
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "rap_hf", "score", "--model", MODEL, "--dataset", str(rows), "--output", str(out),
             "--backend", "server", "--server-url", served.url, *SMALL, *flags],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"})
        wait_for_shards(Path(str(out) + ".shards"), 1)
        served.stop()
        stdout, stderr = run.communicate(timeout=300)
        assert run.returncode == 3, stderr[-2000:]
        last = stderr.strip().splitlines()[-1]
        assert "no server answered" in last and "still to score" in last and "run the same command" in last, last
        kept = sorted(p.name for p in Path(str(out) + ".shards").glob("shard-*.arrow"))
        assert 1 <= len(kept) < 4 and not out.exists()

        served.start()
        resumed = score(served.url, rows, out, *flags)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert f"({16 - 4 * len(kept)} scored in this run, {4 * len(kept)} from earlier shards)" in resumed.stdout
    finally:
        served.stop()
    import datasets

    scored = datasets.load_from_disk(str(out))
    assert len(scored) == 16 and not any(scored["rap_error"])


def test_two_servers_under_ray_with_one_killed_lose_nothing(server, train_rows, tmp_path):
    """Ray workers share two servers; one is killed mid-run and its requests go to the other."""
    pytest.importorskip("ray")
    second = Served(MODEL, cwd=str(ROOT), log=tmp_path / "serve.log")
    rows = small_rows(train_rows, tmp_path / "rows", 16)
    out = tmp_path / "scored"
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "rap_hf", "score", "--model", MODEL, "--dataset", str(rows), "--output", str(out),
             "--backend", "server", "--server-url", server.url, "--server-url", second.url, *SMALL, *FAST,
             "--shard-rows", "4", "--engine", "ray", "--num-proc", "2"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"})
        killed = []

        def kill_after_the_first_shard() -> None:
            wait_for_shards(Path(str(out) + ".shards"), 1)
            second.stop()
            killed.append(len(list(Path(str(out) + ".shards").glob("shard-*.arrow"))))

        killer = threading.Thread(target=kill_after_the_first_shard)
        killer.start()
        stdout, stderr = run.communicate(timeout=600)
        killer.join()
    finally:
        second.stop()
    assert run.returncode == 0, stderr[-3000:]
    assert killed and killed[0] < 4  # the server died with shards still to score
    import datasets

    scored = datasets.load_from_disk(str(out))
    assert len(scored) == 16 and not any(scored["rap_error"])
    assert sorted(scored["rap_id"]) == sorted(datasets.load_from_disk(str(rows))["rap_id"])


def test_n_is_used_where_the_server_honours_it(server, train_rows, tmp_path):
    """A server that honours n (as vLLM does) gets one request per row and condition carrying its M
    rollouts; `--server-n on` against one that ignores n (transformers serve) is refused at once."""
    from benchmarks.served import Echo

    rows = small_rows(train_rows, tmp_path / "rows", 4)
    echo = Echo(MODEL)
    proxy = FaultProxy(echo.url)
    try:
        done = score(proxy.url, rows, tmp_path / "scored", *FAST, "--num-rollouts", "3")
    finally:
        proxy.close()
        echo.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    # 4 rows x 2 conditions, one request each, plus the start check: its probe, and one row scored in memory.
    assert proxy.seen["/v1/chat/completions"] == 4 * 2 + 1 + 2
    import datasets

    assert all(len(r) == 3 for r in datasets.load_from_disk(str(tmp_path / "scored"))["rap_responses_image"])
    refused = score(server.url, rows, tmp_path / "refused", *FAST, "--server-n", "on")
    assert refused.returncode == 1 and "does not honour n" in refused.stderr.splitlines()[-1]


def test_ace_runs_here_on_the_local_weights_over_the_servers_responses(server, train_rows, tmp_path):
    """`--local-model`: ACE and logit-CDE are computed here, and ACE is what an in-process ACE pass over
    the same responses gives."""
    import datasets

    from rap_hf import ACEScorer, RAPConfig

    rows = small_rows(train_rows, tmp_path / "rows", 6)
    done = score(server.url, rows, tmp_path / "scored", *FAST, "--max-new-tokens", "40",
                 "--local-model", str(shipped_scorer()), "--ace-min-rows", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "not computed" not in done.stderr
    scored = datasets.load_from_disk(str(tmp_path / "scored"))
    assert all(a is not None for a in scored["rap_ace"]) and all(v is not None for v in scored["rap_logit_cde"])
    local = ACEScorer(str(shipped_scorer()), RAPConfig(num_rollouts=2, ace_min_rows=2, device="cpu", min_pixels=None,
                                                       max_pixels=None))
    again = local.map(scored.remove_columns(["rap_ace", "rap_ace_flag", "rap_ace_column"]), batch_size=6,
                      keep_in_memory=True)
    assert again["rap_ace"] == pytest.approx(scored["rap_ace"], abs=1e-4)


def test_a_resume_against_other_weights_under_the_same_name_is_refused(train_rows, tmp_path):
    """The manifest records the served model as /v1/models describes it (vLLM lists the weights as
    `root`): the same name over other weights is refused in one line."""
    from benchmarks.served import Echo

    rows = small_rows(train_rows, tmp_path / "rows", 8)
    out = tmp_path / "scored"
    first = Echo(MODEL, root="/models/qwen-a")
    port = first.port
    try:
        # Interrupted: one shard of two written (a folder of finished shards, as a killed run leaves).
        done = score(first.url, rows, out, *FAST, "--shard-rows", "4", "--keep-shards")
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        first.stop()
    import shutil

    shutil.rmtree(out)
    next(Path(str(out) + ".shards").glob("shard-*-of-*.arrow")).unlink()
    second = Echo(MODEL, root="/models/qwen-b", port=port)
    try:
        refused = score(second.url, rows, out, *FAST, "--shard-rows", "4")
    finally:
        second.stop()
    assert refused.returncode == 1, refused.stderr[-2000:]
    last = refused.stderr.strip().splitlines()[-1]
    assert "the served model" in last and "qwen-a" in last and "qwen-b" in last, last


def test_the_throughput_benchmark_runs(server):
    """`benchmarks/server_throughput.py`'s three parts at their smallest (figures are never asserted)."""
    from benchmarks import server_throughput
    from benchmarks.served import Echo

    (floor,) = server_throughput.against_the_floor(server.url, [2], count=8, max_new_tokens=4, repeats=2)
    assert floor["requests"] == 8 and len(floor["paired_ratios"]) == 2 and floor["ratio_to_floor"] > 0
    echo = Echo(MODEL)
    try:
        ceiling = server_throughput.client_ceiling(echo.url, 40, levels=(1, 4))
        memory = server_throughput.memory_at_scale(echo.url, 40)
    finally:
        echo.stop()
    assert [c["requests"] for c in ceiling] == [4, 40] and all(c["requests_per_second"] > 0 for c in ceiling)
    assert memory["rows"] == 40 and memory["requests"] == 80 and memory["rss_peak_mib"] > 0

"""`vipstudio ask` end to end through the console script, the tiny model and real SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_gen.qalog.log import QALog

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"
VIPSTUDIO = str(Path(sys.executable).parent / "vipstudio")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run(
    *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VIPSTUDIO, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=ENV
    )


def test_single_question_streams_and_logs(tiny_model_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    done = run(
        "ask",
        str(SAMPLES / "coffee.jpg"),
        "What is <region0>?",
        "--bbox",
        "180,20,420,230",
        "--label",
        "cup",
        "--model",
        str(tiny_model_dir),
        "--max-new-tokens",
        "8",
        "--db",
        str(db),
    )
    assert done.returncode == 0, done.stderr
    assert "tokens/s" in done.stderr and "turn 1" in done.stderr
    with QALog.open(db) as log:
        (turn,) = log.turns()
    assert turn.question == "What is the cup within the red rectangle?"
    assert turn.question_refs[0].start == len("What is ")
    assert done.stdout.strip() == turn.answer.strip()
    assert turn.source == "cli" and turn.model == str(tiny_model_dir)
    assert turn.prompts[0].box == (180.0, 20.0, 420.0, 230.0)


def test_json_output_and_no_log(tiny_model_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    done = run(
        "ask",
        str(SAMPLES / "chelsea.jpg"),
        "Describe it.",
        "--bbox",
        "100,40,300,280",
        "--shape",
        "arrow",
        "--model",
        str(tiny_model_dir),
        "--max-new-tokens",
        "5",
        "--json",
        "--no-log",
        "--db",
        str(db),
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["completion_tokens"] <= 5 and out["phrases"] == [
        "the object pointed to by the red arrow"
    ]
    assert out["turn_id"] is None and not db.exists()


def test_chat_mode_reuses_the_prefix_and_logs_each_turn(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "log.sqlite"
    done = run(
        "ask",
        str(SAMPLES / "coffee.jpg"),
        "--bbox",
        "180,20,420,230",
        "--model",
        str(tiny_model_dir),
        "--max-new-tokens",
        "4",
        "--db",
        str(db),
        "--json",
        stdin="What is in the red rectangle?\nAnd next to it?\n\nnever asked\n",
    )
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert second["cached_tokens"] > 0 and first["cached_tokens"] == 0
    with QALog.open(db) as log:
        turns = log.turns()
    assert [t.question for t in turns] == ["What is in the red rectangle?", "And next to it?"]
    assert turns[0].session_id == turns[1].session_id and [t.idx for t in turns] == [0, 1]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["ask", str(SAMPLES / "coffee.jpg"), "  ", "--bbox", "1,1,9,9"], "question is empty"),
        (["ask", str(SAMPLES / "coffee.jpg"), "q?", "--bbox", "9,9,1,1"], "top-left"),
        (["ask", str(SAMPLES / "nope.jpg"), "q?", "--bbox", "1,1,9,9"], "no such file"),
        (["ask", "--batch", "x.jsonl"], "needs --out"),
    ],
)
def test_bad_input_gives_one_clear_line(args: list[str], words: str, tmp_path: Path) -> None:
    done = run(*args, "--db", str(tmp_path / "l.sqlite"), "--model", str(tmp_path / "none"))
    assert done.returncode in (1, 2)
    assert words in done.stderr and "Traceback" not in done.stderr


def test_missing_model_says_how_to_get_it(tmp_path: Path) -> None:
    done = run(
        "ask",
        str(SAMPLES / "coffee.jpg"),
        "q?",
        "--bbox",
        "1,1,50,50",
        "--model",
        "llava-hf/vip-llava-7b-hf",
        "--db",
        str(tmp_path / "l.sqlite"),
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "download" in done.stderr or "folder" in done.stderr


def _queries(path: Path, n: int, bad: bool = True) -> list[str]:
    lines = []
    for i in range(n):
        image = SAMPLES / ["coffee.jpg", "chelsea.jpg", "rocket.jpg", "astronaut.jpg"][i % 4]
        lines.append(
            json.dumps(
                {
                    "id": f"q{i}",
                    "image": str(image),
                    "question": f"What is <region0>? ({i})",
                    "bboxes": [[10, 10, 200, 150]],
                }
            )
        )
    if bad:
        lines += [
            json.dumps(
                {
                    "id": "bad-image",
                    "image": str(path.parent / "broken.jpg"),
                    "question": "q?",
                    "bboxes": [[1, 1, 9, 9]],
                }
            ),
            json.dumps(
                {
                    "id": "bad-box",
                    "image": str(SAMPLES / "coffee.jpg"),
                    "question": "q?",
                    "bboxes": [[9, 9, 1, 1]],
                }
            ),
            json.dumps(
                {
                    "id": "outside",
                    "image": str(SAMPLES / "coffee.jpg"),
                    "question": "q?",
                    "bboxes": [[900, 900, 950, 950]],
                }
            ),
            json.dumps({"id": "no-question", "image": str(SAMPLES / "coffee.jpg")}),
            "{this is not json",
        ]
        (path.parent / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    path.write_text("\n".join(lines) + "\n")
    return [f"q{i}" for i in range(n)]


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batch_with_bad_lines_then_resume(tiny_model_dir: Path, tmp_path: Path) -> None:
    queries, out, db = tmp_path / "q.jsonl", tmp_path / "a.jsonl", tmp_path / "log.sqlite"
    ids = _queries(queries, 10)
    args = [
        "ask",
        "--batch",
        str(queries),
        "--out",
        str(out),
        "--model",
        str(tiny_model_dir),
        "--max-new-tokens",
        "4",
        "--batch-size",
        "4",
        "--db",
        str(db),
    ]
    first = run(*args)
    assert first.returncode == 3, first.stderr
    assert "10 answered, 5 error(s)" in first.stderr
    records = _records(out)
    answered = {r["id"] for r in records if "answer" in r}
    errors = {r["id"]: r["error"] for r in records if "error" in r}
    assert answered == set(ids)
    assert set(errors) == {"bad-image", "bad-box", "outside", "no-question", "line-15"}
    assert "damaged" in str(errors["bad-image"])
    assert "missing field 'question'" in str(errors["no-question"])
    second = run(*args)
    assert "0 answered" in second.stderr and "10 already done" in second.stderr
    records = _records(out)
    assert sorted(r["id"] for r in records if "answer" in r) == sorted(ids)  # no duplicates
    with QALog.open(db) as log:
        assert log.count() == 10


def test_kill_9_mid_batch_loses_nothing_and_rerun_completes(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    queries, out, db = tmp_path / "q.jsonl", tmp_path / "a.jsonl", tmp_path / "log.sqlite"
    ids = _queries(queries, 48, bad=False)
    args = [
        VIPSTUDIO,
        "ask",
        "--batch",
        str(queries),
        "--out",
        str(out),
        "--model",
        str(tiny_model_dir),
        "--max-new-tokens",
        "6",
        "--batch-size",
        "2",
        "--db",
        str(db),
    ]
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().count("\n") >= 6:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with QALog.open(db) as log:
        committed = {t.request_id for t in log.turns()}
    assert 0 < len(committed) < 48, "the kill must land mid-run"
    rerun = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    records = _records(out)
    assert sorted(r["id"] for r in records) == sorted(ids)
    with QALog.open(db) as log:
        turns = log.turns()
        assert len(turns) == 48 and len({t.request_id for t in turns}) == 48
        assert committed <= {t.request_id for t in turns}


@pytest.fixture
def server_url(tiny_model_dir: Path) -> Iterator[str]:
    from vip_model.hf import HFEngine
    from vip_model.server import ServerConfig, ServerThread, create_app

    with HFEngine(str(tiny_model_dir)) as engine:
        config = ServerConfig(model_name="tiny", token="tok")
        with ServerThread(create_app(engine, config)) as url:
            yield url


def test_remote_mode_against_a_real_server(
    server_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "log.sqlite"
    common = [
        "ask",
        str(SAMPLES / "coffee.jpg"),
        "What is in the red rectangle?",
        "--bbox",
        "180,20,420,230",
        "--max-new-tokens",
        "6",
        "--db",
        str(db),
        "--json",
    ]
    local = run(*common, "--model", str(tiny_model_dir), "--no-log")
    remote = run(*common, "--server", server_url, "--token", "tok")
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["answer"] == json.loads(local.stdout)["answer"]
    wrong = run(*common, "--server", server_url, "--token", "bad")
    assert wrong.returncode == 1 and "token" in wrong.stderr and "Traceback" not in wrong.stderr
    down = run(*common, "--server", "http://127.0.0.1:9", "--token", "tok")
    assert down.returncode == 1 and "cannot reach" in down.stderr

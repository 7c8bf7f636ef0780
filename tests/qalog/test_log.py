"""The Q&A log against real SQLite files: schema, writes, reviews, concurrency, bad files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import overlays as ov
from data_gen.qalog.log import (
    SCHEMA_VERSION,
    LogCorrupt,
    LogError,
    LogLocked,
    LogSchemaTooNew,
    NewTurn,
    QALog,
    RegionRef,
    find_refs,
)

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "coffee.jpg"


@pytest.fixture
def log(tmp_path: Path) -> QALog:
    with QALog.open(tmp_path / "log.sqlite") as opened:
        yield opened


def _turn(session: int, **kw: object) -> NewTurn:
    prompts = kw.pop("prompts", [ov.Rectangle((10, 20, 110, 220), label="cup")])
    base = dict(
        session_id=session,
        prompts=prompts,
        question="What is within the red rectangle?",
        answer="A cup of coffee.",
        model="tiny",
        template="llava_v1",
    )
    base.update(kw)
    return NewTurn(**base)  # type: ignore[arg-type]


def test_schema_pragmas_and_version(log: QALog) -> None:
    conn = log.conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"images", "sessions", "turns", "turn_tags", "drafts"} <= tables


def test_turn_round_trip_keeps_everything(log: QALog) -> None:
    image = log.add_image(SAMPLE)
    assert (image.width, image.height) == (600, 400)
    assert log.add_image(SAMPLE).id == image.id  # same content → same row
    session = log.start_session(image.id, source="cli")
    prompts = [ov.Rectangle((10.5, 20, 110, 220), label="cup"), ov.Arrow((300, 300), (200, 150))]
    question = "Is the red rectangle left of the lime arrow?"
    prompts = ov.assign_distinct_colors(prompts)
    refs = find_refs(question, prompts)
    start = question.index("the lime arrow")
    assert refs == [RegionRef(0, 3, 20), RegionRef(1, start, start + len("the lime arrow"))]
    turn_id = log.add_turn(
        _turn(
            session,
            prompts=prompts,
            question=question,
            question_refs=refs,
            settings={"temperature": 0, "max_new_tokens": 32},
            timings={"ttft_s": 0.01, "tokens_per_s": 120.0},
            prompt_tokens=40,
            answer_tokens=5,
            finish_reason="stop",
            tags=["demo", "spatial"],
        )
    )
    row = log.turn(turn_id)
    assert row.prompts == prompts
    assert row.question_refs == refs
    assert row.settings == {"temperature": 0, "max_new_tokens": 32}
    assert row.timings["tokens_per_s"] == 120.0
    assert (row.prompt_tokens, row.answer_tokens, row.finish_reason) == (40, 5, "stop")
    assert row.tags == ["demo", "spatial"]
    assert row.review == "unreviewed" and row.final_answer == "A cup of coffee."
    assert (
        row.idx == 0 and log.add_turn(_turn(session)) and log.turns(session_id=session)[1].idx == 1
    )


def test_review_edit_reject_and_filters(log: QALog) -> None:
    image = log.add_image(SAMPLE)
    session = log.start_session(image.id)
    a = log.add_turn(_turn(session))
    b = log.add_turn(_turn(session, model="other", source="batch"))
    log.review(a, "edited", "A white cup with coffee.")
    log.review(b, "rejected")
    assert log.turn(a).final_answer == "A white cup with coffee."
    assert log.turn(a).answer == "A cup of coffee."  # the model's answer is kept
    assert [t.id for t in log.turns(review=["rejected"])] == [b]
    assert [t.id for t in log.turns(model="other")] == [b]
    assert [t.id for t in log.turns(source="cli")] == [a]
    with pytest.raises(LogError, match="corrected answer"):
        log.review(a, "edited", "  ")
    with pytest.raises(LogError, match="does not exist"):
        log.review(999, "accepted")
    log.tag(a, ["hard"])
    assert [t.id for t in log.turns(tag="hard")] == [a]
    log.tag(a, ["hard"], remove=True)
    assert log.turns(tag="hard") == []


def test_request_id_makes_writes_idempotent(log: QALog) -> None:
    image = log.add_image(SAMPLE)
    session = log.start_session(image.id)
    first = log.add_turn(_turn(session, request_id="q-1"))
    again = log.add_turn(_turn(session, request_id="q-1", answer="different"))
    assert first == again and log.count() == 1 and log.request_ids() == {"q-1"}


def test_empty_question_and_unknown_session_are_refused(log: QALog) -> None:
    image = log.add_image(SAMPLE)
    session = log.start_session(image.id)
    with pytest.raises(LogError, match="non-empty question"):
        log.add_turn(_turn(session, question="   "))
    with pytest.raises(LogError, match="session 77 does not exist"):
        log.add_turn(_turn(77))
    assert log.count() == 0


def test_drafts_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    prompts = [ov.Scribble(((1, 1), (5, 9), (20, 4)))]
    with QALog.open(path) as log:
        image = log.add_image(SAMPLE)
        log.save_draft(image.id, prompts, "what is th", None)
        log.save_draft(image.id, prompts, "what is this", None)
    with QALog.open(path) as log:
        assert log.load_draft(image.id) == (prompts, "what is this", None)


def test_iter_turns_pages_through_everything(log: QALog) -> None:
    image = log.add_image(SAMPLE)
    session = log.start_session(image.id)
    ids = [log.add_turn(_turn(session, answer=f"a{i}")) for i in range(23)]
    assert [t.id for t in log.iter_turns(batch_size=5)] == ids
    assert [t.id for t in log.iter_turns(batch_size=5, limit=7, offset=3)] == ids[3:10]


def test_damaged_file_is_reported_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite"
    garbage = b"this is not sqlite" * 500
    path.write_bytes(garbage)
    with pytest.raises(LogCorrupt, match="damaged or not an SQLite file"):
        QALog.open(path)
    assert path.read_bytes() == garbage


def test_truncated_log_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    with QALog.open(path) as log:
        image = log.add_image(SAMPLE)
        session = log.start_session(image.id)
        for _ in range(200):
            log.add_turn(_turn(session, answer="x" * 500))
        log.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] + b"\0" * 4096 + data[len(data) // 3 + 4096 :])
    with pytest.raises(LogCorrupt), QALog.open(path) as log:
        log.turns()
        assert log.check() == "ok"


def test_foreign_sqlite_database_is_not_adopted(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(LogCorrupt, match="not a ViP Studio log"):
        QALog.open(path)
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["customers"]
    conn.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    QALog.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(LogSchemaTooNew, match="upgrade vip-studio"):
        QALog.open(path)


def test_locked_log_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    with QALog.open(path) as log:
        image = log.add_image(SAMPLE)
        session = log.start_session(image.id)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with (
            QALog.open(path, busy_timeout_s=0.2) as log,
            pytest.raises(LogLocked, match="locked by another process"),
        ):
            log.add_turn(_turn(session))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with QALog.open(path) as log:
        assert log.add_turn(_turn(session)) > 0


WRITER = textwrap.dedent(
    """
    import sys
    import overlays as ov
    from data_gen.qalog.log import NewTurn, QALog
    path, tag, n, image = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with QALog.open(path, busy_timeout_s=60) as log:
        img = log.add_image(image)
        session = log.start_session(img.id, source="batch")
        prompts = [ov.Rectangle((1, 1, 50, 50))]
        for i in range(n):
            log.add_turn(NewTurn(session, prompts, f"q {tag} {i}", "a", "m", "llava_v1",
                                 source="batch", request_id=f"{tag}-{i}"))
    """
)


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    QALog.open(path).close()
    n = 5000
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(n), str(SAMPLE)])
        for tag in ("a", "b")
    ]
    assert [p.wait(timeout=240) for p in procs] == [0, 0]
    with QALog.open(path) as log:
        assert log.count() == 2 * n
        ids = log.request_ids()
        assert ids == {f"{t}-{i}" for t in "ab" for i in range(n)}
        assert log.check() == "ok"
        sessions = {t.session_id for t in log.iter_turns()}
        assert len(sessions) == 2


def test_log_stats_command_counts_and_plots(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from app.cli import main

    db = tmp_path / "log.sqlite"
    with QALog.open(db) as log:
        image = log.add_image(SAMPLE)
        session = log.start_session(image.id)
        log.add_turn(_turn(session))
        log.add_turn(_turn(session, prompts=[ov.Arrow((5, 5), (40, 40), style=ov.Style("blue"))]))
    plot = tmp_path / "stats.png"
    done = CliRunner().invoke(
        main, ["log", "stats", "--db", str(db), "--json", "--plot", str(plot)]
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["turns"] == 2 and data["prompt_kind"] == {"rectangle": 1, "arrow": 1}
    assert data["colour"] == {"red": 1, "blue": 1}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = CliRunner().invoke(main, ["log", "stats", "--db", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 1 and "no such log" in missing.output


def test_server_source_is_read_but_no_longer_written(log: QALog) -> None:
    # A server logs no turns (the doors that use one log what they ask): "server" is refused for
    # new sessions and turns, while a log of an earlier version holding "server" rows stays
    # readable, filterable and countable.
    image = log.add_image(SAMPLE)
    with pytest.raises(LogError, match="no longer written"):
        log.start_session(image.id, source="server")
    session = log.start_session(image.id, source="cli")
    with pytest.raises(LogError, match=r"no longer written.*gui, cli, batch, import"):
        log.add_turn(_turn(session, source="server"))
    with pytest.raises(LogError, match="unknown source 'robot'"):
        log.add_turn(_turn(session, source="robot"))
    old = log.add_turn(_turn(session))
    with sqlite3.connect(log.path) as conn:  # as an earlier version wrote it
        conn.execute("UPDATE sessions SET source = 'server' WHERE id = ?", (session,))
        conn.execute("UPDATE turns SET source = 'server' WHERE id = ?", (old,))
    conn.close()
    assert [t.id for t in log.turns(source="server")] == [old]
    assert log.turn(old).source == "server"
    assert log.add_turn(_turn(session, question="And now?")) > old  # the session goes on

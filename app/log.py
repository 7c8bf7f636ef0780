"""The Q&A log: one SQLite file holding images, sessions and turns. Qt-free.

Safe for several processes at once (the desktop app, a CLI batch and a server writing the same
file): WAL journal, a busy timeout, and every turn written in its own short ``BEGIN IMMEDIATE``
transaction, committed as soon as its answer is complete. Nothing committed is rewritten except
by the explicit review calls. A damaged, locked or newer-version file raises a named error and
is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

import overlays as ov
from overlays.phrases import RegionRef, find_refs
from overlays.serialize import region_from_dict, region_to_dict

REVIEW_STATES = ("unreviewed", "accepted", "edited", "rejected")
SOURCES = ("gui", "cli", "batch", "server", "import")
Review = Literal["unreviewed", "accepted", "edited", "rejected"]


class LogError(Exception):
    """Base class of Q&A log errors; the message says what to do."""


class LogCorrupt(LogError):
    """The file is not a ViP Studio log, or it is damaged."""


class LogLocked(LogError):
    """Another process held the log for longer than the busy timeout."""


class LogSchemaTooNew(LogError):
    """The file was written by a newer ViP Studio."""


def default_db_path() -> Path:
    """The per-user log file (``$VIPSTUDIO_DB`` overrides it)."""
    env = os.environ.get("VIPSTUDIO_DB")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("vipstudio", appauthor=False)) / "log.sqlite"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# Each entry upgrades the schema by one version; the list index + 1 is the version reached.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        added_at TEXT NOT NULL
    );
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        image_id INTEGER NOT NULL REFERENCES images(id),
        source TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX sessions_image ON sessions(image_id);
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        image_id INTEGER NOT NULL REFERENCES images(id),
        idx INTEGER NOT NULL,
        prompts TEXT NOT NULL,
        question TEXT NOT NULL,
        question_refs TEXT NOT NULL DEFAULT '[]',
        answer TEXT NOT NULL,
        model TEXT NOT NULL,
        template TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}',
        timings TEXT NOT NULL DEFAULT '{}',
        prompt_tokens INTEGER,
        answer_tokens INTEGER,
        finish_reason TEXT,
        source TEXT NOT NULL,
        request_id TEXT UNIQUE,
        review TEXT NOT NULL DEFAULT 'unreviewed'
            CHECK (review IN ('unreviewed', 'accepted', 'edited', 'rejected')),
        corrected_answer TEXT,
        reviewed_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX turns_session ON turns(session_id, idx);
    CREATE INDEX turns_image ON turns(image_id);
    CREATE INDEX turns_review ON turns(review);
    CREATE TABLE turn_tags (
        turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (turn_id, tag)
    );
    CREATE TABLE drafts (
        image_id INTEGER PRIMARY KEY REFERENCES images(id),
        prompts TEXT NOT NULL,
        question TEXT NOT NULL DEFAULT '',
        session_id INTEGER REFERENCES sessions(id),
        updated_at TEXT NOT NULL
    );
    """,
    # 2: imported regions (data_gen.importers): boxes/polygons with class names brought in from
    # COCO, LabelMe or ViP-LLaVA files, waiting for Q&A (`ask --batch`); one row per import.
    """
    CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        format TEXT NOT NULL,
        file TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX imports_sha ON imports(sha256);
    CREATE TABLE regions (
        id INTEGER PRIMARY KEY,
        image_id INTEGER NOT NULL REFERENCES images(id),
        session_id INTEGER REFERENCES sessions(id),
        import_id INTEGER REFERENCES imports(id),
        label TEXT,
        region TEXT NOT NULL,
        external_id TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX regions_image ON regions(image_id);
    CREATE INDEX regions_import ON regions(import_id);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass
class NewTurn:
    """A finished turn to append to the log."""

    session_id: int
    prompts: Sequence[ov.Prompt]
    question: str
    answer: str
    model: str
    template: str
    source: str = "cli"
    question_refs: Sequence[RegionRef] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int | None = None
    answer_tokens: int | None = None
    finish_reason: str | None = None
    request_id: str | None = None
    tags: Sequence[str] = ()


@dataclass(frozen=True)
class TurnRow:
    """A turn as stored, with its prompts parsed back."""

    id: int
    session_id: int
    image_id: int
    idx: int
    prompts: list[ov.Prompt]
    question: str
    question_refs: list[RegionRef]
    answer: str
    model: str
    template: str
    settings: dict[str, Any]
    timings: dict[str, Any]
    prompt_tokens: int | None
    answer_tokens: int | None
    finish_reason: str | None
    source: str
    request_id: str | None
    review: str
    corrected_answer: str | None
    reviewed_at: str | None
    created_at: str
    tags: list[str]
    image_path: str
    image_sha256: str
    image_width: int
    image_height: int

    @property
    def final_answer(self) -> str:
        """The corrected answer when there is one, else the model's."""
        return self.corrected_answer if self.corrected_answer is not None else self.answer


@dataclass(frozen=True)
class ImageRow:
    id: int
    sha256: str
    path: str
    width: int
    height: int


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class QALog:
    """The Q&A log in one SQLite file. Open with :meth:`open`; close with :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str], busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self.db: sqlite_utils.Database | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | os.PathLike[str] | None = None, busy_timeout_s: float = 30.0
    ) -> QALog:
        log = cls(path if path is not None else default_db_path(), busy_timeout_s)
        log._connect()
        return log

    def __enter__(self) -> QALog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self.db = None

    def _connect(self) -> None:
        if self.path.is_dir():
            raise LogCorrupt(f"{self.path} is a folder: pass a file path with --db")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LogError(f"cannot create the folder of {self.path}: {exc.strerror}") from None
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise LogError(f"cannot open the log {self.path}: {exc}") from None
        self._conn = conn
        try:
            with self._translate():
                conn.execute("PRAGMA foreign_keys = ON")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise LogSchemaTooNew(
                        f"{self.path} has log schema version {version}, newer than this ViP "
                        f"Studio reads ({SCHEMA_VERSION}): upgrade vip-studio"
                    )
                if version < SCHEMA_VERSION:
                    self._migrate()
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode = DELETE")
                conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            self._conn = None
            raise
        self.db = sqlite_utils.Database(conn)

    def _migrate(self) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and self._has_foreign_tables():
                raise LogCorrupt(
                    f"{self.path} is an SQLite database but not a ViP Studio log: "
                    "pass another file with --db"
                )
            for target in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[target]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _has_foreign_tables(self) -> bool:
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return bool(rows)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LogError("the log is closed")
        return self._conn

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise LogLocked(
                    f"the log {self.path} stayed locked by another process for "
                    f"{self.busy_timeout_s:g} s: retry, or close the program holding it"
                ) from None
            if "malformed" in text or "not a database" in text:
                raise LogCorrupt(_corrupt_message(self.path, text)) from None
            raise LogError(f"{self.path}: {text}") from None
        except sqlite3.DatabaseError as exc:
            raise LogCorrupt(_corrupt_message(self.path, str(exc))) from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction (``BEGIN IMMEDIATE``), committed on success."""
        conn = self.conn
        with self._translate():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- writing ----------------------------------------------------------------------------

    def add_image(
        self,
        path: str | os.PathLike[str],
        size: tuple[int, int] | None = None,
        sha256: str | None = None,
    ) -> ImageRow:
        """Register an image (by content hash); returns the existing row if already known."""
        p = Path(path)
        digest = sha256 or file_sha256(p)
        width, height = size if size is not None else ov.image_size(p)
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id, sha256, path, width, height FROM images WHERE sha256 = ?", (digest,)
            ).fetchone()
            if row is None:
                cur = conn.execute(
                    "INSERT INTO images (sha256, path, width, height, added_at) VALUES (?,?,?,?,?)",
                    (digest, str(p.resolve()), width, height, now()),
                )
                return ImageRow(int(cur.lastrowid or 0), digest, str(p.resolve()), width, height)
        return ImageRow(*row)

    def start_session(self, image_id: int, source: str = "cli") -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO sessions (image_id, source, created_at) VALUES (?,?,?)",
                (image_id, source, now()),
            )
            return int(cur.lastrowid or 0)

    def add_turn(self, turn: NewTurn) -> int:
        """Append a finished turn, committed before returning; returns its id.

        With a ``request_id`` already present, nothing is written and the existing id is
        returned, so a resumed batch never duplicates a turn.
        """
        if not turn.question.strip():
            raise LogError("a turn needs a non-empty question")
        if turn.source not in SOURCES:
            raise LogError(f"unknown source {turn.source!r}: use one of {', '.join(SOURCES)}")
        prompts_json = ov.dumps(turn.prompts)
        refs = json.dumps([[r.prompt, r.start, r.end] for r in turn.question_refs])
        with self.transaction() as conn:
            if turn.request_id is not None:
                row = conn.execute(
                    "SELECT id FROM turns WHERE request_id = ?", (turn.request_id,)
                ).fetchone()
                if row is not None:
                    return int(row[0])
            session = conn.execute(
                "SELECT image_id FROM sessions WHERE id = ?", (turn.session_id,)
            ).fetchone()
            if session is None:
                raise LogError(f"session {turn.session_id} does not exist")
            idx = conn.execute(
                "SELECT COALESCE(MAX(idx), -1) + 1 FROM turns WHERE session_id = ?",
                (turn.session_id,),
            ).fetchone()[0]
            cur = conn.execute(
                """INSERT INTO turns (session_id, image_id, idx, prompts, question, question_refs,
                   answer, model, template, settings, timings, prompt_tokens, answer_tokens,
                   finish_reason, source, request_id, created_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    turn.session_id,
                    session[0],
                    idx,
                    prompts_json,
                    turn.question,
                    refs,
                    turn.answer,
                    turn.model,
                    turn.template,
                    json.dumps(turn.settings, sort_keys=True),
                    json.dumps(turn.timings, sort_keys=True),
                    turn.prompt_tokens,
                    turn.answer_tokens,
                    turn.finish_reason,
                    turn.source,
                    turn.request_id,
                    now(),
                ),
            )
            turn_id = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT OR IGNORE INTO turn_tags (turn_id, tag) VALUES (?, ?)",
                [(turn_id, t) for t in _clean_tags(turn.tags)],
            )
            return turn_id

    def review(self, turn_id: int, status: Review, corrected_answer: str | None = None) -> None:
        """Accept, edit (with the corrected answer), reject, or reset a turn's review."""
        if status not in REVIEW_STATES:
            raise LogError(f"unknown review status {status!r}: use {', '.join(REVIEW_STATES)}")
        if status == "edited" and not (corrected_answer or "").strip():
            raise LogError("an edited review needs the corrected answer")
        corrected = corrected_answer if status == "edited" else None
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE turns SET review = ?, corrected_answer = ?, reviewed_at = ? WHERE id = ?",
                (status, corrected, now(), turn_id),
            )
            if cur.rowcount == 0:
                raise LogError(f"turn {turn_id} does not exist")

    def tag(self, turn_id: int, tags: Iterable[str], remove: bool = False) -> None:
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM turns WHERE id = ?", (turn_id,)).fetchone() is None:
                raise LogError(f"turn {turn_id} does not exist")
            sql = (
                "DELETE FROM turn_tags WHERE turn_id = ? AND tag = ?"
                if remove
                else "INSERT OR IGNORE INTO turn_tags (turn_id, tag) VALUES (?, ?)"
            )
            conn.executemany(sql, [(turn_id, t) for t in _clean_tags(tags)])

    def save_draft(
        self, image_id: int, prompts: Sequence[ov.Prompt], question: str, session_id: int | None
    ) -> None:
        """Autosave what is drawn and typed on an image but not yet asked."""
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO drafts (image_id, prompts, question, session_id, updated_at)
                   VALUES (?,?,?,?,?)
                   ON CONFLICT(image_id) DO UPDATE SET prompts = excluded.prompts,
                   question = excluded.question, session_id = excluded.session_id,
                   updated_at = excluded.updated_at""",
                (image_id, ov.dumps(prompts), question, session_id, now()),
            )

    def load_draft(self, image_id: int) -> tuple[list[ov.Prompt], str, int | None] | None:
        with self._translate():
            row = self.conn.execute(
                "SELECT prompts, question, session_id FROM drafts WHERE image_id = ?", (image_id,)
            ).fetchone()
        if row is None:
            return None
        return ov.loads(row[0]), row[1], row[2]

    # -- reading ----------------------------------------------------------------------------

    def image_by_path(self, path: str | os.PathLike[str]) -> ImageRow | None:
        with self._translate():
            row = self.conn.execute(
                "SELECT id, sha256, path, width, height FROM images WHERE path = ? "
                "ORDER BY id DESC LIMIT 1",
                (str(Path(path).resolve()),),
            ).fetchone()
        return ImageRow(*row) if row else None

    def turn(self, turn_id: int) -> TurnRow:
        rows = self.turns(ids=[turn_id])
        if not rows:
            raise LogError(f"turn {turn_id} does not exist")
        return rows[0]

    def turns(
        self,
        *,
        ids: Sequence[int] | None = None,
        image_id: int | None = None,
        session_id: int | None = None,
        review: Sequence[str] | None = None,
        model: str | None = None,
        source: str | None = None,
        tag: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[TurnRow]:
        """Turns matching every given filter, oldest first unless ``newest_first``."""
        return list(
            self.iter_turns(
                ids=ids,
                image_id=image_id,
                session_id=session_id,
                review=review,
                model=model,
                source=source,
                tag=tag,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
                newest_first=newest_first,
            )
        )

    def iter_turns(
        self,
        *,
        ids: Sequence[int] | None = None,
        image_id: int | None = None,
        session_id: int | None = None,
        review: Sequence[str] | None = None,
        model: str | None = None,
        source: str | None = None,
        tag: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
        batch_size: int = 500,
    ) -> Iterator[TurnRow]:
        """Like :meth:`turns`, streamed in pages (exports never hold the whole log)."""
        where: list[str] = []
        args: list[Any] = []
        if ids is not None:
            where.append(f"t.id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        for column, value in (
            ("t.image_id", image_id),
            ("t.session_id", session_id),
            ("t.model", model),
            ("t.source", source),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if review:
            where.append(f"t.review IN ({','.join('?' * len(review))})")
            args.extend(review)
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM turn_tags g WHERE g.turn_id = t.id AND g.tag = ?)")
            args.append(tag)
        if since is not None:
            where.append("t.created_at >= ?")
            args.append(since)
        if until is not None:
            where.append("t.created_at < ?")
            args.append(until)
        order = "DESC" if newest_first else "ASC"
        sql = (
            "SELECT t.*, i.path, i.sha256, i.width, i.height, "
            "(SELECT json_group_array(tag) FROM turn_tags g WHERE g.turn_id = t.id) AS tags "
            "FROM turns t JOIN images i ON i.id = t.image_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY t.id {order}"
        )
        remaining = limit
        position = offset
        while remaining is None or remaining > 0:
            page = batch_size if remaining is None else min(batch_size, remaining)
            with self._translate():
                cur = self.conn.execute(sql + " LIMIT ? OFFSET ?", (*args, page, position))
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
            for row in rows:
                yield _turn_row(dict(zip(names, row, strict=True)))
            if len(rows) < page:
                return
            position += len(rows)
            if remaining is not None:
                remaining -= len(rows)

    def request_ids(self) -> set[str]:
        """Every ``request_id`` already answered (used to resume a batch)."""
        with self._translate():
            rows = self.conn.execute("SELECT request_id FROM turns WHERE request_id IS NOT NULL")
            return {r[0] for r in rows}

    def count(self) -> int:
        with self._translate():
            return int(self.conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Counts by review status, model, source, template and prompt kind."""
        with self._translate():
            conn = self.conn

            def grouped(column: str) -> dict[str, int]:
                rows = conn.execute(
                    f"SELECT {column}, COUNT(*) FROM turns GROUP BY {column} ORDER BY 2 DESC"
                )
                return {str(k): int(v) for k, v in rows}

            kinds: dict[str, int] = {}
            colors: dict[str, int] = {}
            for (prompts_json,) in conn.execute("SELECT prompts FROM turns"):
                for item in json.loads(prompts_json).get("prompts", []):
                    kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
                    color = item.get("style", {}).get("color", "red")
                    name = color if isinstance(color, str) else "unnamed RGB"
                    colors[name] = colors.get(name, 0) + 1
            return {
                "turns": int(conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]),
                "images": int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]),
                "sessions": int(conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]),
                "review": grouped("review"),
                "model": grouped("model"),
                "source": grouped("source"),
                "template": grouped("template"),
                "prompt_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
                "color": dict(sorted(colors.items(), key=lambda kv: -kv[1])),
            }

    def check(self) -> str:
        """SQLite's integrity check: "ok" or the first problem found."""
        with self._translate():
            return str(self.conn.execute("PRAGMA quick_check").fetchone()[0])

    # -- imports and imported regions (schema version 2) ------------------------------------

    @contextmanager
    def batch(self) -> Iterator[LogBatch]:
        """Several writes in one transaction: committed together on success, else none of them.

        Used by importers, so that a failed import leaves nothing behind. Do the slow work
        (hashing, reading image headers) before entering: the log is write-locked meanwhile.
        """
        with self.transaction() as conn:
            yield LogBatch(conn)

    def find_imports(self, sha256: str) -> list[dict[str, Any]]:
        """Earlier imports of a file with this content hash (to refuse importing it twice)."""
        with self._translate():
            rows = self.conn.execute(
                "SELECT id, format, file, created_at FROM imports WHERE sha256 = ? ORDER BY id",
                (sha256,),
            ).fetchall()
        return [dict(zip(("id", "format", "file", "created_at"), r, strict=True)) for r in rows]

    def iter_regions(
        self, *, import_id: int | None = None, image_id: int | None = None, batch_size: int = 500
    ) -> Iterator[RegionRow]:
        """Imported regions, oldest first, streamed in pages (keyset on the id)."""
        where = ["r.id > ?"]
        args: list[Any] = []
        for column, value in (("r.import_id", import_id), ("r.image_id", image_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = (
            "SELECT r.id, r.image_id, r.session_id, r.import_id, r.label, r.region, "
            "r.external_id, i.path, i.width, i.height FROM regions r "
            "JOIN images i ON i.id = r.image_id WHERE " + " AND ".join(where) + " ORDER BY r.id"
        )
        last = 0
        while True:
            with self._translate():
                rows = self.conn.execute(sql + " LIMIT ?", (last, *args, batch_size)).fetchall()
            for row in rows:
                yield RegionRow(
                    id=row[0],
                    image_id=row[1],
                    session_id=row[2],
                    import_id=row[3],
                    label=row[4],
                    region=region_from_dict(json.loads(row[5])),
                    external_id=row[6],
                    image_path=row[7],
                    image_width=row[8],
                    image_height=row[9],
                )
            if len(rows) < batch_size:
                return
            last = rows[-1][0]


def _turn_row(r: dict[str, Any]) -> TurnRow:
    refs = [RegionRef(int(a), int(b), int(c)) for a, b, c in json.loads(r["question_refs"])]
    tags = sorted(t for t in json.loads(r["tags"] or "[]") if t is not None)
    return TurnRow(
        id=r["id"],
        session_id=r["session_id"],
        image_id=r["image_id"],
        idx=r["idx"],
        prompts=ov.loads(r["prompts"]),
        question=r["question"],
        question_refs=refs,
        answer=r["answer"],
        model=r["model"],
        template=r["template"],
        settings=json.loads(r["settings"]),
        timings=json.loads(r["timings"]),
        prompt_tokens=r["prompt_tokens"],
        answer_tokens=r["answer_tokens"],
        finish_reason=r["finish_reason"],
        source=r["source"],
        request_id=r["request_id"],
        review=r["review"],
        corrected_answer=r["corrected_answer"],
        reviewed_at=r["reviewed_at"],
        created_at=r["created_at"],
        tags=tags,
        image_path=r["path"],
        image_sha256=r["sha256"],
        image_width=r["width"],
        image_height=r["height"],
    )


def _clean_tags(tags: Iterable[str]) -> list[str]:
    out = []
    for tag in tags:
        t = tag.strip()
        if not t:
            raise LogError("tags must be non-empty")
        out.append(t)
    return out


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _corrupt_message(path: Path, detail: str) -> str:
    return (
        f"{path} is damaged or not an SQLite file ({detail}). Nothing was changed: keep a copy, "
        "try `sqlite3 FILE .recover`, or pass another file with --db"
    )


@dataclass(frozen=True)
class RegionRow:
    """An imported region (a box, maybe polygons, maybe a class name) on a logged image."""

    id: int
    image_id: int
    session_id: int | None
    import_id: int | None
    label: str | None
    region: ov.Region
    external_id: str | None
    image_path: str
    image_width: int
    image_height: int


class LogBatch:
    """Writes inside one open transaction (see :meth:`QALog.batch`); nothing commits alone.

    ``add_image``, ``start_session`` and ``add_turn`` write the same rows as the ``QALog``
    methods of the same names.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add_image(
        self, path: str | os.PathLike[str], size: tuple[int, int], sha256: str
    ) -> ImageRow:
        row = self.conn.execute(
            "SELECT id, sha256, path, width, height FROM images WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is not None:
            return ImageRow(*row)
        resolved = str(Path(path).resolve())
        cur = self.conn.execute(
            "INSERT INTO images (sha256, path, width, height, added_at) VALUES (?,?,?,?,?)",
            (sha256, resolved, size[0], size[1], now()),
        )
        return ImageRow(int(cur.lastrowid or 0), sha256, resolved, size[0], size[1])

    def start_session(self, image_id: int, source: str = "import") -> int:
        cur = self.conn.execute(
            "INSERT INTO sessions (image_id, source, created_at) VALUES (?,?,?)",
            (image_id, source, now()),
        )
        return int(cur.lastrowid or 0)

    def add_import(self, format: str, file: str | os.PathLike[str], sha256: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO imports (format, file, sha256, created_at) VALUES (?,?,?,?)",
            (format, str(Path(file).resolve()), sha256, now()),
        )
        return int(cur.lastrowid or 0)

    def add_region(
        self,
        image_id: int,
        region: ov.Region,
        *,
        label: str | None = None,
        session_id: int | None = None,
        import_id: int | None = None,
        external_id: str | None = None,
    ) -> int:
        cur = self.conn.execute(
            """INSERT INTO regions (image_id, session_id, import_id, label, region, external_id,
               created_at) VALUES (?,?,?,?,?,?,?)""",
            (
                image_id,
                session_id,
                import_id,
                label,
                json.dumps(region_to_dict(region)),
                external_id,
                now(),
            ),
        )
        return int(cur.lastrowid or 0)

    def add_turn(self, turn: NewTurn) -> int:
        if not turn.question.strip():
            raise LogError("a turn needs a non-empty question")
        if turn.source not in SOURCES:
            raise LogError(f"unknown source {turn.source!r}: use one of {', '.join(SOURCES)}")
        conn = self.conn
        if turn.request_id is not None:
            row = conn.execute(
                "SELECT id FROM turns WHERE request_id = ?", (turn.request_id,)
            ).fetchone()
            if row is not None:
                return int(row[0])
        session = conn.execute(
            "SELECT image_id FROM sessions WHERE id = ?", (turn.session_id,)
        ).fetchone()
        if session is None:
            raise LogError(f"session {turn.session_id} does not exist")
        idx = conn.execute(
            "SELECT COALESCE(MAX(idx), -1) + 1 FROM turns WHERE session_id = ?",
            (turn.session_id,),
        ).fetchone()[0]
        cur = conn.execute(
            """INSERT INTO turns (session_id, image_id, idx, prompts, question, question_refs,
               answer, model, template, settings, timings, prompt_tokens, answer_tokens,
               finish_reason, source, request_id, created_at)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (
                turn.session_id,
                session[0],
                idx,
                ov.dumps(turn.prompts),
                turn.question,
                json.dumps([[r.prompt, r.start, r.end] for r in turn.question_refs]),
                turn.answer,
                turn.model,
                turn.template,
                json.dumps(turn.settings, sort_keys=True),
                json.dumps(turn.timings, sort_keys=True),
                turn.prompt_tokens,
                turn.answer_tokens,
                turn.finish_reason,
                turn.source,
                turn.request_id,
                now(),
            ),
        )
        turn_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT OR IGNORE INTO turn_tags (turn_id, tag) VALUES (?, ?)",
            [(turn_id, t) for t in _clean_tags(turn.tags)],
        )
        return turn_id


__all__ = [
    "REVIEW_STATES",
    "SCHEMA_VERSION",
    "SOURCES",
    "ImageRow",
    "LogBatch",
    "LogCorrupt",
    "LogError",
    "LogLocked",
    "LogSchemaTooNew",
    "NewTurn",
    "QALog",
    "RegionRef",
    "RegionRow",
    "TurnRow",
    "default_db_path",
    "file_sha256",
    "find_refs",
]

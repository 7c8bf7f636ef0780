"""The Q&A log: one SQLite file holding images, sessions and turns (and drafts, imports,
regions). Qt-free.

Safe for several processes at once (the desktop app's log process, a CLI batch and an import
writing the same file): WAL journal, a busy timeout, and every turn written in its own short
``BEGIN IMMEDIATE`` transaction, committed as soon as its answer is complete. Nothing committed
is rewritten except by the explicit review and tag calls and the image's autosaved draft. A
damaged, locked or newer-version file raises a named error and is never overwritten; so does
another program's SQLite file (see ``log_open``). A read-only log opens read-only for the
reading commands.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Unpack

import overlays as ov
from data_gen.qalog.log_batch import LogBatch, RegionRow, clean_tags
from data_gen.qalog.log_open import (
    OpenMode,
    check_version,
    connect_read_only,
    corrupt_message,
    identify,
    needs_setup,
    read_only_hint,
    set_up,
    writable,
)
from data_gen.qalog.log_schema import MIGRATIONS, SCHEMA_VERSION
from data_gen.qalog.log_types import (
    LEGACY_SOURCES,
    REVIEW_STATES,
    SOURCES,
    ImageFile,
    ImageRow,
    LogCorrupt,
    LogError,
    LogForeign,
    LogLocked,
    LogReadOnly,
    LogSchemaTooNew,
    NewTurn,
    Recorded,
    Review,
    TurnFilters,
    TurnRow,
    default_db_path,
    file_sha256,
    now,
)
from data_gen.qalog.log_video import TrackRow, VideoLog, VideoMeta, VideoRow, frame_image
from overlays.phrases import RegionRef, find_refs
from overlays.serialize import region_from_dict


class QALog(VideoLog):
    """The Q&A log in one SQLite file. Open with :meth:`open`; close with :meth:`close`.

    Video turns, videos and tracks: see :class:`~data_gen.qalog.log_video.VideoLog`."""

    def __init__(self, path: str | os.PathLike[str], busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.read_only = False
        self._conn: sqlite3.Connection | None = None
        self._videos = None

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        busy_timeout_s: float = 30.0,
        mode: OpenMode = "rw",
    ) -> QALog:
        """Open (creating when ``rw``) the log. ``ro`` only reads; ``auto`` reads and writes
        when the file and its folder are writable, else opens read-only (for reading commands).
        """
        log = cls(path if path is not None else default_db_path(), busy_timeout_s)
        if mode == "auto":
            mode = "rw" if writable(log.path) else "ro"
            if mode == "rw":
                try:
                    log._connect()
                except LogReadOnly:  # writable by permissions, yet not (a read-only mount)
                    mode = "ro"
                else:
                    return log
        if mode == "ro":
            log._connect_read_only()
        else:
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

    def _connect(self) -> None:
        if self.path.is_dir():
            raise LogCorrupt(f"{self.path} is a folder: pass a file path with --db")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LogError(f"cannot create the folder of {self.path}: {exc.strerror}") from None
        if not writable(self.path):
            raise LogReadOnly(read_only_hint(self.path))
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
                # Nothing is written before the file is known to be ours.
                kind = identify(conn, self.path)
                if needs_setup(kind, check_version(conn, self.path)):
                    set_up(conn, self.path)
                conn.execute("PRAGMA foreign_keys = ON")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode = DELETE")
                conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            self._conn = None
            raise

    def _connect_read_only(self) -> None:
        if self.path.is_dir():
            raise LogCorrupt(f"{self.path} is a folder: pass a file path with --db")
        self._conn = connect_read_only(self.path, self.busy_timeout_s)
        self.read_only = True

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
            if "readonly" in text or "read-only" in text:
                raise LogReadOnly(read_only_hint(self.path)) from None
            if "locked" in text or "busy" in text:
                raise LogLocked(
                    f"the log {self.path} stayed locked by another process for "
                    f"{self.busy_timeout_s:g} s: retry, or close the program holding it"
                ) from None
            if "malformed" in text or "not a database" in text:
                raise LogCorrupt(corrupt_message(self.path, text)) from None
            raise LogError(f"{self.path}: {text}") from None
        except sqlite3.DatabaseError as exc:
            raise LogCorrupt(corrupt_message(self.path, str(exc))) from None

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
        # Hash and read the header before taking the write lock.
        digest = sha256 or file_sha256(p)
        image_size = size if size is not None else ov.image_size(p)
        with self.batch() as batch:
            return batch.add_image(p, image_size, digest)

    def start_session(self, image_id: int, source: str = "cli") -> int:
        with self.batch() as batch:
            return batch.start_session(image_id, source)

    def add_turn(self, turn: NewTurn) -> int:
        """Append a finished turn, committed before returning; returns its id.

        With a ``request_id`` already present, nothing is written and the existing id is
        returned, so a resumed batch never duplicates a turn.
        """
        with self.batch() as batch:
            return batch.add_turn(turn)

    def record_turn(
        self,
        turn: NewTurn,
        *,
        session_id: int | None = None,
        image_id: int | None = None,
        image: ImageFile | None = None,
        video: VideoMeta | None = None,
        frame_index: int | None = None,
        frame_time: float | None = None,
    ) -> Recorded:
        """Store a finished turn, with its image and session when they are new, in ONE
        transaction: a failure at any step leaves nothing (never an empty session).

        Follow-ups give ``session_id``; a new conversation gives the ``image_id`` of a logged
        image or the ``image`` file (:meth:`ImageFile.read`, before: hashing holds no lock).
        The session takes the turn's source. A ``request_id`` already stored is a retry: its
        ids are returned and nothing is written.

        A turn about a video frame also gives the ``video`` (``overlays.video_io.VideoInfo``,
        registered when new), ``frame_index`` and ``frame_time``, and as ``image`` the frame
        (:func:`~data_gen.qalog.log_video.frame_image`). A conversation stays on one frame:
        a follow-up without ``video`` inherits its session's frame.
        """
        with self.batch() as batch:
            return batch.record_turn(
                turn,
                session_id=session_id,
                image_id=image_id,
                image=image,
                video=video,
                frame_index=frame_index,
                frame_time=frame_time,
            )

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
            conn.executemany(sql, [(turn_id, t) for t in clean_tags(tags)])

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

    def turns(self, **filters: Unpack[TurnFilters]) -> list[TurnRow]:
        """Turns matching every given filter (see :class:`TurnFilters`), oldest first unless
        ``newest_first``."""
        return list(self.iter_turns(**filters))

    def iter_turns(
        self, *, batch_size: int = 500, **filters: Unpack[TurnFilters]
    ) -> Iterator[TurnRow]:
        """Like :meth:`turns`, streamed in pages (exports never hold the whole log)."""
        ids = filters.get("ids")
        review = filters.get("review")
        tag, since, until = filters.get("tag"), filters.get("since"), filters.get("until")
        limit, offset = filters.get("limit"), filters.get("offset", 0)
        newest_first = filters.get("newest_first", False)
        where: list[str] = []
        args: list[Any] = []
        if ids is not None:
            where.append(f"t.id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        for column, value in (
            ("t.image_id", filters.get("image_id")),
            ("t.session_id", filters.get("session_id")),
            ("t.model", filters.get("model")),
            ("t.source", filters.get("source")),
            ("t.request_id", filters.get("request_id")),
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
        video, video_id = filters.get("video"), filters.get("video_id")
        with_videos = self._has_videos()
        if not with_videos and (video or video_id is not None):
            return  # a read-only log of an earlier version holds no video turns
        if with_videos and video_id is not None:
            where.append("t.video_id = ?")
            args.append(video_id)
        if with_videos and video is not None:
            where.append("t.video_id IS NOT NULL" if video else "t.video_id IS NULL")
        order = "DESC" if newest_first else "ASC"
        # Keyset paging (on the id) stays fast deep into a large log, unlike OFFSET.
        where.append("t.id < ?" if newest_first else "t.id > ?")
        video_join = (
            ", v.path AS video_path FROM turns t JOIN images i ON i.id = t.image_id "
            "LEFT JOIN videos v ON v.id = t.video_id"
            if with_videos
            else " FROM turns t JOIN images i ON i.id = t.image_id"
        )
        sql = (
            "SELECT t.*, i.path, i.sha256, i.width, i.height, "
            "(SELECT json_group_array(tag) FROM turn_tags g WHERE g.turn_id = t.id) AS tags"
            + video_join
            + " WHERE "
            + " AND ".join(where)
            + f" ORDER BY t.id {order} LIMIT ? OFFSET ?"
        )
        remaining = limit
        last = 2**63 - 1 if newest_first else -1
        skip = offset
        while remaining is None or remaining > 0:
            page = batch_size if remaining is None else min(batch_size, remaining)
            with self._translate():
                cur = self.conn.execute(sql, (*args, last, page, skip))
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
            skip = 0
            for row in rows:
                yield _turn_row(dict(zip(names, row, strict=True)))
            if len(rows) < page:
                return
            last = rows[-1][names.index("id")]
            if remaining is not None:
                remaining -= len(rows)

    def image_statuses(self) -> dict[str, tuple[int, int]]:
        """Per logged image path: (turns, reviewed turns). For file lists and filters."""
        with self._translate():
            rows = self.conn.execute(
                "SELECT i.path, COUNT(t.id), SUM(t.review != 'unreviewed') FROM images i "
                "JOIN turns t ON t.image_id = i.id GROUP BY i.id"
            ).fetchall()
        return {str(p): (int(n), int(r or 0)) for p, n, r in rows}

    def source_paths(self) -> list[str]:
        """Every file the log refers to (images, imported annotation files): what an export's
        ``--overwrite`` must never delete."""
        with self._translate():
            rows = self.conn.execute("SELECT path FROM images").fetchall()
            if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'imports'").fetchone():
                rows += self.conn.execute("SELECT file FROM imports").fetchall()
            if self._has_videos():
                rows += self.conn.execute("SELECT path FROM videos").fetchall()
        return [str(r[0]) for r in rows]

    def request_ids(self) -> set[str]:
        """Every ``request_id`` already answered (used to resume a batch)."""
        with self._translate():
            rows = self.conn.execute("SELECT request_id FROM turns WHERE request_id IS NOT NULL")
            return {r[0] for r in rows}

    def count(self) -> int:
        with self._translate():
            return int(self.conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0])

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
        video_id=r.get("video_id"),
        frame_index=r.get("frame_index"),
        frame_time=r.get("frame_time"),
        video_path=r.get("video_path"),
    )


__all__ = [
    "LEGACY_SOURCES",
    "MIGRATIONS",
    "REVIEW_STATES",
    "SCHEMA_VERSION",
    "SOURCES",
    "ImageFile",
    "ImageRow",
    "LogBatch",
    "LogCorrupt",
    "LogError",
    "LogForeign",
    "LogLocked",
    "LogReadOnly",
    "LogSchemaTooNew",
    "NewTurn",
    "QALog",
    "Recorded",
    "RegionRef",
    "RegionRow",
    "Review",
    "TrackRow",
    "TurnRow",
    "VideoMeta",
    "VideoRow",
    "default_db_path",
    "file_sha256",
    "find_refs",
    "frame_image",
]

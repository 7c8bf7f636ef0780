"""Writes to the Q&A log inside one open transaction (see :meth:`data_gen.qalog.log.QALog.batch`).

Every write of the log goes through :class:`LogBatch`, so the SQL of each row kind exists once.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import overlays as ov
from data_gen.qalog.log_types import (
    ImageFile,
    ImageRow,
    LogError,
    NewTurn,
    Recorded,
    check_source,
    now,
)
from overlays.serialize import region_to_dict


def clean_tags(tags: Iterable[str]) -> list[str]:
    out = []
    for tag in tags:
        t = tag.strip()
        if not t:
            raise LogError("tags must be non-empty")
        out.append(t)
    return out


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

    ``QALog.add_image``, ``start_session`` and ``add_turn`` are these, each in a transaction
    of its own.
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
        check_source(source)
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
        check_source(turn.source)
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
            [(turn_id, t) for t in clean_tags(turn.tags)],
        )
        return turn_id

    def record_turn(
        self,
        turn: NewTurn,
        *,
        session_id: int | None,
        image_id: int | None,
        image: ImageFile | None,
    ) -> Recorded:
        """The turn with, when new, its image and session (see :meth:`QALog.record_turn`)."""
        conn = self.conn
        if turn.request_id is not None:
            row = conn.execute(
                "SELECT image_id, session_id, id FROM turns WHERE request_id = ?",
                (turn.request_id,),
            ).fetchone()
            if row is not None:  # a retry of a turn already stored: nothing new
                return Recorded(*map(int, row))
        if session_id is None:
            if image_id is None:
                if image is None:
                    raise LogError("a turn without its image or session cannot be recorded")
                image_id = self.add_image(image.path, image.size, image.sha256).id
            session_id = self.start_session(image_id, source=turn.source)
        turn.session_id = session_id
        turn_id = self.add_turn(turn)
        row = conn.execute("SELECT image_id FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return Recorded(int(row[0]), session_id, turn_id)

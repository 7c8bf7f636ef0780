"""Writes to the Q&A log inside one open transaction (see :meth:`data_gen.qalog.log.QALog.batch`).

Every write of the log goes through :class:`LogBatch`, so the SQL of each row kind exists once.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from data_gen.qalog.log_video import (
    VIDEO_COLUMNS,
    VideoMeta,
    VideoRow,
    check_frame,
    track_json,
    video_row,
)
from overlays.serialize import region_to_dict
from overlays.tracks import Track


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

    def add_video(self, video: VideoMeta) -> VideoRow:
        """Register a video by content hash; returns the existing row if already known."""
        row = self.conn.execute(
            f"SELECT {VIDEO_COLUMNS} FROM videos WHERE sha256 = ?", (video.sha256,)
        ).fetchone()
        if row is not None:
            return video_row(row)
        resolved = str(Path(video.path).resolve())
        vfr = bool(getattr(video, "variable_frame_rate", False))
        added = now()
        cur = self.conn.execute(
            "INSERT INTO videos (sha256, path, width, height, fps, frame_count, duration, codec, "
            "variable_frame_rate, added_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                video.sha256,
                resolved,
                video.width,
                video.height,
                float(video.fps),
                video.frame_count,
                float(video.duration),
                video.codec,
                int(vfr),
                added,
            ),
        )
        return VideoRow(
            int(cur.lastrowid or 0),
            video.sha256,
            resolved,
            video.width,
            video.height,
            float(video.fps),
            video.frame_count,
            float(video.duration),
            video.codec,
            vfr,
            added,
        )

    def save_track(
        self,
        video_id: int,
        region_index: int,
        track: Track | Mapping[str, Any],
        *,
        session_id: int | None = None,
    ) -> int:
        """Store (or replace) the track of region ``region_index`` of ``session_id`` on the
        video; returns its row id."""
        if region_index < 0:
            raise LogError(f"region index {region_index} must be 0 or more")
        if self.conn.execute("SELECT 1 FROM videos WHERE id = ?", (video_id,)).fetchone() is None:
            raise LogError(f"video {video_id} does not exist")
        data = track_json(track)
        row = self.conn.execute(
            "SELECT id FROM video_tracks WHERE video_id = ? AND session_id IS ? "
            "AND region_index = ?",
            (video_id, session_id, region_index),
        ).fetchone()
        if row is not None:
            self.conn.execute(
                "UPDATE video_tracks SET track = ?, updated_at = ? WHERE id = ?",
                (data, now(), row[0]),
            )
            return int(row[0])
        cur = self.conn.execute(
            "INSERT INTO video_tracks (video_id, session_id, region_index, track, updated_at) "
            "VALUES (?,?,?,?,?)",
            (video_id, session_id, region_index, data, now()),
        )
        return int(cur.lastrowid or 0)

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
        # The video columns only for a video turn: an image turn's row is written as before.
        video = (
            {}
            if turn.video_id is None
            else {
                "video_id": turn.video_id,
                "frame_index": turn.frame_index,
                "frame_time": turn.frame_time,
            }
        )
        columns = "".join(f", {c}" for c in video)
        cur = conn.execute(
            f"""INSERT INTO turns (session_id, image_id, idx, prompts, question, question_refs,
               answer, model, template, settings, timings, prompt_tokens, answer_tokens,
               finish_reason, source, request_id, created_at{columns})
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?{",?" * len(video)})""",
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
                *video.values(),
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
        video: VideoMeta | None = None,
        frame_index: int | None = None,
        frame_time: float | None = None,
    ) -> Recorded:
        """The turn with, when new, its image, video and session (see
        :meth:`QALog.record_turn`)."""
        check_frame(video, frame_index, frame_time)
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
        else:
            # A conversation stays on its frame: a follow-up inherits it, or must name it.
            last = conn.execute(
                "SELECT video_id, frame_index, frame_time FROM turns WHERE session_id = ? "
                "ORDER BY idx DESC LIMIT 1",
                (session_id,),
            ).fetchone()
            if video is None and last is not None and last[0] is not None:
                turn.video_id, turn.frame_index, turn.frame_time = last
            elif video is not None and last is not None:
                asked = self.add_video(video).id, frame_index
                if (last[0], last[1]) != asked:
                    raise LogError(
                        f"session {session_id} is about another "
                        f"{'frame' if last[0] is not None else 'image'}: a conversation stays "
                        f"on one frame; start a new session for frame {frame_index}"
                    )
        if video is not None:
            turn.video_id = self.add_video(video).id
            turn.frame_index, turn.frame_time = frame_index, frame_time
        turn.session_id = session_id
        turn_id = self.add_turn(turn)
        row = conn.execute("SELECT image_id FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return Recorded(int(row[0]), session_id, turn_id)

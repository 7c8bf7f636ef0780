"""Video in the Q&A log (schema version 3, issue 14): value types and the reading SQL.

A video turn is a question about ONE frame. Its ``images`` row is that frame: ``path`` is
``"<video path>#frame=<i>"`` (:func:`frame_path`) and ``sha256`` hashes the decoded pixels
(:func:`frame_sha256`), so every image-only reader of the log keeps working. The turn also
records ``video_id``, ``frame_index`` and ``frame_time``; :data:`~.log_types.TurnRow` carries
them (None on image turns). Identical frames share one image row (content-addressed, like
photos): the turn's ``frame_index`` is the authority on which frame was asked about.

``video_tracks`` keeps a region's track (``overlays.tracks.Track.to_dict`` JSON: keyframes,
tracked frames, ``lost_at``) per video, session and region index.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Unpack

from data_gen.qalog.log_types import ImageFile, LogError, TurnFilters, TurnRow
from overlays.errors import InvalidPrompt
from overlays.tracks import Track

if TYPE_CHECKING:
    from PIL import Image

    from data_gen.qalog.log_batch import LogBatch

#: Joins a video's path and a frame index into the path of that frame's ``images`` row.
FRAME_MARK = "#frame="


class VideoMeta(Protocol):
    """What the log keeps of a video: ``overlays.video_io.VideoInfo`` has these fields."""

    @property
    def path(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def fps(self) -> float: ...
    @property
    def frame_count(self) -> int: ...
    @property
    def duration(self) -> float: ...
    @property
    def codec(self) -> str: ...


@dataclass(frozen=True)
class VideoRow:
    """A logged video (``videos`` table); ``path`` is absolute."""

    id: int
    sha256: str
    path: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    codec: str
    variable_frame_rate: bool
    added_at: str


@dataclass(frozen=True)
class TrackRow:
    """A region's track on a video (``video_tracks`` table).

    ``data`` is the stored ``Track.to_dict()`` JSON (``{"format": "vipstudio.track/1",
    "keyframes": {...}, "tracked": {...}, "lost_at": ...}``); :meth:`track` parses it.
    """

    id: int
    video_id: int
    session_id: int | None
    region_index: int
    data: dict[str, Any]
    updated_at: str

    def track(self) -> Track:
        """The :class:`overlays.tracks.Track` of :attr:`data` (raises ``InvalidTrack`` for JSON
        of a newer version)."""
        return Track.from_dict(self.data)


def frame_path(video_path: str | Path, index: int) -> str:
    """The ``images.path`` of frame ``index`` of the video at ``video_path`` (made absolute)."""
    return f"{Path(video_path).resolve()}{FRAME_MARK}{index}"


def parse_frame_path(path: str) -> tuple[str, int] | None:
    """``(video path, frame index)`` of a frame's image path, or None for a photo's path."""
    head, mark, tail = path.rpartition(FRAME_MARK)
    if not mark or not tail.isdigit():
        return None
    return head, int(tail)


def frame_sha256(image: Image.Image) -> str:
    """The content hash of a decoded frame: sha256 of ``"<w>x<h>:"`` then its RGB bytes."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def frame_image(video: VideoMeta, index: int, image: Image.Image) -> ImageFile:
    """The ``images`` row of frame ``index`` of ``video`` decoded as ``image`` (for
    ``QALog.record_turn(image=...)``; hash it before taking the log's write lock)."""
    return ImageFile(frame_path(video.path, index), image.size, frame_sha256(image))


def check_frame(video: VideoMeta | None, frame_index: int | None, frame_time: float | None) -> None:
    """Raise :class:`LogError` unless the frame fields fit together and fit ``video``."""
    if video is None:
        if frame_index is not None or frame_time is not None:
            raise LogError("a frame index or time needs its video: pass video=")
        return
    if frame_index is None or frame_time is None:
        raise LogError("a video turn needs its frame_index and frame_time")
    if frame_index < 0 or (video.frame_count > 0 and frame_index >= video.frame_count):
        raise LogError(
            f"frame {frame_index} is not in {video.path} (frames 0-{video.frame_count - 1})"
        )
    if not math.isfinite(frame_time) or frame_time < 0:
        raise LogError(f"frame time {frame_time!r} must be finite and non-negative (seconds)")


def track_json(track: Track | Mapping[str, Any]) -> str:
    """The JSON stored for a track: a :class:`~overlays.tracks.Track`'s ``to_dict()``, or that
    dict itself (checked by reading it back)."""
    if not isinstance(track, Track):
        try:
            track = Track.from_dict(track)
        except (InvalidPrompt, ValueError, TypeError) as exc:
            raise LogError(f"not a track ({exc}): give an overlays.tracks.Track") from None
    return json.dumps(track.to_dict(), sort_keys=True)


# -- reading (QALog delegates here) -------------------------------------------------------------

VIDEO_COLUMNS = (
    "id, sha256, path, width, height, fps, frame_count, duration, codec, variable_frame_rate, "
    "added_at"
)


def has_videos(conn: sqlite3.Connection) -> bool:
    """Whether the file has the video tables (a read-only log of an earlier version has not)."""
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'videos'"
        ).fetchone()
        is not None
    )


def video_row(row: tuple[Any, ...]) -> VideoRow:
    values = list(row)
    values[9] = bool(values[9])
    return VideoRow(*values)


def read_videos(
    conn: sqlite3.Connection, where: str = "1", args: tuple[Any, ...] = ()
) -> list[VideoRow]:
    rows = conn.execute(f"SELECT {VIDEO_COLUMNS} FROM videos WHERE {where} ORDER BY id", args)
    return [video_row(r) for r in rows.fetchall()]


def read_tracks(
    conn: sqlite3.Connection, video_id: int, session_id: int | None, any_session: bool
) -> list[TrackRow]:
    sql = (
        "SELECT id, video_id, session_id, region_index, track, updated_at FROM video_tracks "
        "WHERE video_id = ?"
    )
    args: tuple[Any, ...] = (video_id,)
    if not any_session:
        sql += " AND session_id IS ?"
        args += (session_id,)
    rows = conn.execute(sql + " ORDER BY session_id, region_index, id", args).fetchall()
    return [TrackRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]


def video_statuses(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    rows = conn.execute(
        "SELECT v.path, COUNT(t.id), SUM(t.review != 'unreviewed') FROM videos v "
        "JOIN turns t ON t.video_id = v.id GROUP BY v.id"
    ).fetchall()
    return {str(p): (int(n), int(r or 0)) for p, n, r in rows}


class VideoLog:
    """The video part of :class:`~data_gen.qalog.log.QALog` (a base class of it).

    The read API of exports: :meth:`videos` / :meth:`video` (metadata), :meth:`video_turns`
    (a video's turns in time order, with frame index and time), :meth:`tracks` (its regions'
    tracks); ``QALog.iter_turns(video=True)`` streams every video turn.
    """

    _videos: bool | None = None  # has the video tables (schema 3)? Asked once per connection.

    if TYPE_CHECKING:  # provided by QALog

        @property
        def conn(self) -> sqlite3.Connection: ...
        def _translate(self) -> AbstractContextManager[None]: ...
        def batch(self) -> AbstractContextManager[LogBatch]: ...
        def iter_turns(
            self, *, batch_size: int = 500, **filters: Unpack[TurnFilters]
        ) -> Iterator[TurnRow]: ...

    def add_video(self, video: VideoMeta) -> VideoRow:
        """Register a video (by content hash); returns the existing row if already known."""
        with self.batch() as batch:
            return batch.add_video(video)

    def save_track(
        self,
        video_id: int,
        region_index: int,
        track: Track | Mapping[str, Any],
        *,
        session_id: int | None = None,
    ) -> int:
        """Store, or replace, the track (``overlays.tracks.Track`` or its ``to_dict()``) of
        the ``region_index``-th region of ``session_id`` (None: of no conversation) on the
        video; returns the row id."""
        with self.batch() as batch:
            return batch.save_track(video_id, region_index, track, session_id=session_id)

    def _has_videos(self) -> bool:
        if self._videos is None:
            with self._translate():
                self._videos = has_videos(self.conn)
        return self._videos

    def videos(self) -> list[VideoRow]:
        """Every logged video, oldest first (none in a read-only log of an earlier version)."""
        if not self._has_videos():
            return []
        with self._translate():
            return read_videos(self.conn)

    def video(self, video_id: int) -> VideoRow:
        """The logged video ``video_id``; raises :class:`LogError` when there is none."""
        rows = read_videos(self.conn, "id = ?", (video_id,)) if self._has_videos() else []
        if not rows:
            raise LogError(f"video {video_id} does not exist")
        return rows[0]

    def video_by_path(self, path: str | os.PathLike[str]) -> VideoRow | None:
        """The newest video logged from ``path``, or None."""
        if not self._has_videos():
            return None
        with self._translate():
            rows = read_videos(self.conn, "path = ?", (str(Path(path).resolve()),))
        return rows[-1] if rows else None

    def video_turns(
        self, video_id: int | None = None, /, **filters: Unpack[TurnFilters]
    ) -> list[TurnRow]:
        """The turns asked about frames of video ``video_id`` (of any video when None), in
        time order (frame index, then turn id), matching the other ``filters``.

        Each :class:`TurnRow` carries ``video_id``, ``video_path``, ``frame_index`` and
        ``frame_time``; its prompts are those drawn on that frame. Exports read a video's turns
        with this, its metadata with :meth:`video`, and its regions' tracks with :meth:`tracks`.
        """
        filters["video_id"], filters["video"] = video_id, True
        rows = self.iter_turns(**filters)
        return sorted(rows, key=lambda r: (r.video_id or 0, r.frame_index or 0, r.id))

    def tracks(
        self, video_id: int, session_id: int | None = None, *, any_session: bool = True
    ) -> list[TrackRow]:
        """The stored tracks of ``video_id``: all of them (``any_session``), or those of
        ``session_id`` only (None: tracks saved without a conversation) with
        ``any_session=False``. Ordered by session, then region index."""
        if not self._has_videos():
            return []
        with self._translate():
            return read_tracks(self.conn, video_id, session_id, any_session)

    def video_statuses(self) -> dict[str, tuple[int, int]]:
        """Per logged video path: (turns, reviewed turns), like :meth:`image_statuses`."""
        if not self._has_videos():
            return {}
        with self._translate():
            return video_statuses(self.conn)


__all__ = [
    "FRAME_MARK",
    "TrackRow",
    "VideoLog",
    "VideoMeta",
    "VideoRow",
    "check_frame",
    "frame_image",
    "frame_path",
    "frame_sha256",
    "parse_frame_path",
    "track_json",
]

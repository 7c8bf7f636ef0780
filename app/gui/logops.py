"""The log process's side (see :mod:`app.gui.logproc`): the calls the app may make, run on the
only connection to the log. Qt-free; started as ``python -c``, it never loads Qt."""

from __future__ import annotations

import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import overlays as ov
from app.gui.logproc import PARENT_POLL_S, LogProcessError, receive, send
from data_gen.qalog.log import ImageFile, ImageRow, LogError, NewTurn, QALog, TurnRow
from data_gen.qalog.log_video import frame_image
from overlays.tracks import Track


@dataclass(frozen=True)
class ImageState:
    """What the log knows about one image: its row, its turns, its draft."""

    image: ImageRow
    turns: list[TurnRow]
    draft: tuple[list[ov.Prompt], str, int | None] | None = None
    statuses: dict[str, tuple[int, int]] = field(default_factory=dict)


def _open_image(log: QALog, path: Path) -> ImageState | None:
    try:
        row = log.add_image(path)
    except ov.ImageError:
        return None  # not a readable image: the canvas reports that
    return ImageState(row, log.turns(image_id=row.id), log.load_draft(row.id))


def _commit_turn(
    log: QALog,
    image_id: int | None,
    session_id: int | None,
    path: Path | None,
    turn: NewTurn,
    frame: Any = None,
) -> TurnRow:
    """The image (if new), the session (if new) and the turn, in one transaction
    (:meth:`QALog.record_turn`); the turn already stored under its request id when this is a
    retry. ``frame`` (``app.gui.video_frames.FrameRef``): a question about a video frame."""
    if frame is not None:
        new = image_id is None and session_id is None
        recorded = log.record_turn(
            turn,
            session_id=session_id,
            image_id=image_id,
            image=frame_image(frame.info, frame.index, frame.image) if new else None,
            video=frame.info,
            frame_index=frame.index,
            frame_time=frame.time,
        )
        return log.turn(recorded.turn_id)
    image = None
    if image_id is None and session_id is None:
        if path is None:
            raise LogError("an answer without its image cannot be saved")
        image = ImageFile.read(path)  # hashed before taking the write lock
    recorded = log.record_turn(turn, session_id=session_id, image_id=image_id, image=image)
    return log.turn(recorded.turn_id)


def _open_video(log: QALog, info: Any) -> tuple[int, list[dict[str, Any]], list[TurnRow]]:
    """Register a video (``overlays.video_io.VideoInfo``); its regions' tracks saved without a
    conversation (the app's draft of the video, as ``Track.to_dict()``: a Track does not
    pickle), and its turns."""
    row = log.add_video(info)
    tracks: list[dict[str, Any]] = []
    for stored in sorted(log.tracks(row.id, None, any_session=False), key=lambda r: r.region_index):
        try:
            track = stored.track()
        except ov.OverlayError:
            continue  # a newer version's track: left in the log, not shown
        if track:
            tracks.append(track.to_dict())
    return row.id, tracks, log.video_turns(row.id)


def _save_tracks(log: QALog, video_id: int, tracks: Sequence[dict[str, Any]]) -> None:
    """The video's regions (``Track.to_dict()`` each), region by region, in one transaction;
    regions deleted since the last save are stored empty."""
    before = len(log.tracks(video_id, None, any_session=False))
    with log.batch() as batch:
        for i, track in enumerate(tracks):
            batch.save_track(video_id, i, track)
        for i in range(len(tracks), before):
            batch.save_track(video_id, i, Track())


def _review(log: QALog, turn_id: int, status: Any, corrected: str | None) -> TurnRow:
    log.review(turn_id, status, corrected)
    return log.turn(turn_id)


def _set_tags(log: QALog, turn_id: int, wanted: Sequence[str]) -> TurnRow:
    current = set(log.turn(turn_id).tags)
    if remove := sorted(current - set(wanted)):
        log.tag(turn_id, remove, remove=True)
    if add := sorted(set(wanted) - current):
        log.tag(turn_id, add)
    return log.turn(turn_id)


def _region_labels(log: QALog, folder: str) -> list[str]:
    """The labels of the regions imported for the images in ``folder`` (and below it), most
    used first: they seed an empty label list."""
    prefix = str(Path(folder).resolve()).rstrip(os.sep) + os.sep  # the log stores them resolved
    rows = log.conn.execute(
        "SELECT r.label FROM regions r JOIN images i ON i.id = r.image_id "
        "WHERE r.label IS NOT NULL AND substr(i.path, 1, ?) = ? "
        "GROUP BY r.label ORDER BY COUNT(*) DESC, r.label LIMIT 500",
        (len(prefix), prefix),
    ).fetchall()
    return [str(row[0]) for row in rows]


def _prompted_images(log: QALog, paths: Sequence[Path]) -> list[tuple[Path, int, list[ov.Prompt]]]:
    """The images of ``paths`` with prompts in the log, as ``(path, image id, prompts)``: the
    prompts of the image's draft, else its imported regions, each drawn as
    ``import --queries`` draws it (a rectangle, seed 0), so both doors ask the same thing."""
    from vip_model.prepare import region_prompt

    found = []
    for path in paths:
        row = log.image_by_path(path)
        if row is None:
            continue
        draft = log.load_draft(row.id)
        prompts = list(draft[0]) if draft else []
        if not prompts:
            size = (row.width, row.height)
            for region in log.iter_regions(image_id=row.id):
                try:
                    prompts.append(
                        region_prompt("rectangle", region.region, size, seed=0, label=region.label)
                    )
                except ov.OverlayError:
                    continue  # a region off the image: nothing to ask about
        if prompts:
            found.append((path, row.id, prompts))
    return found


OPS: dict[str, Callable[..., Any]] = {
    "prompted_images": _prompted_images,
    "ping": lambda log: None,
    "open_image": _open_image,
    "turns": lambda log, image_id: log.turns(image_id=image_id),
    "turn": lambda log, turn_id: log.turn(turn_id),
    "statuses": lambda log: {**log.image_statuses(), **log.video_statuses()},
    "save_draft": lambda log, *args: log.save_draft(*args),
    "commit_turn": _commit_turn,
    "review": _review,
    "open_video": _open_video,
    "save_tracks": _save_tracks,
    "set_tags": _set_tags,
    "region_labels": _region_labels,
}


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives a pickle round trip, else a LogProcessError saying what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return LogProcessError(f"{type(exc).__name__}: {exc}")
    return exc


class _Server:
    """One connection, opened on the first call after ``configure`` (errors go to that call)."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.busy_timeout_s = 5.0
        self.log: QALog | None = None

    def close(self) -> None:
        if self.log is not None:
            log, self.log = self.log, None
            log.close()

    def handle(self, op: str, args: tuple[Any, ...]) -> Any:
        if op == "configure":
            self.close()
            self.path, self.busy_timeout_s = Path(args[0]), float(args[1])
            return None
        if self.path is None:
            raise LogProcessError("the log process was not told which log to open")
        if self.log is None:
            self.log = QALog.open(self.path, busy_timeout_s=self.busy_timeout_s)
        return OPS[op](self.log, *args)


def serve(inp: IO[bytes], out: IO[bytes], parent: int) -> None:
    """Answer calls until the app closes the pipe, asks to close, or is gone."""
    requests: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        try:
            while True:
                requests.put(receive(inp))
        except (EOFError, OSError, pickle.UnpicklingError):
            requests.put(None)

    threading.Thread(target=read, name="log-requests", daemon=True).start()
    server = _Server()
    try:
        while True:
            try:
                message = requests.get(timeout=PARENT_POLL_S)
            except queue.Empty:
                if os.getppid() != parent:
                    return  # the app died; another process kept the pipe open
                continue
            if message is None:
                return  # the app closed the pipe (or died): every call it sent was done
            op, args = message
            if op == "close":
                server.close()
                send(out, ("ok", None))
                return
            try:
                reply = ("ok", server.handle(op, args))
            except Exception as exc:  # reported to the app, which shows it and goes on
                reply = ("error", _portable(exc))
            try:
                send(out, reply)
            except OSError:
                return  # the app is gone; the call itself is done
    finally:
        server.close()


def child_main() -> None:
    """Entry point of the child (``python -c``); ``argv[1]`` is the app's pid."""
    # Ctrl+C in a terminal reaches the whole process group: the app decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the protocol
    serve(inp, out, int(sys.argv[1]))

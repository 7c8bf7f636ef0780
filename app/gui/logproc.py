"""The desktop app's log process: the only holder of the app's SQLite connection. Qt-free.

SQLite's locks on POSIX are ``fcntl`` locks, owned by the process, and closing *any* descriptor
of a file drops all of the process's locks on it. Qt's file dialog opens and closes
``log.sqlite``, ``-wal`` and ``-shm`` to sniff their type; in the app's process that silently
unlocked the log, another process deleted the live WAL, and later commits went to a deleted
file. So the app keeps no connection at all: a child process (``python -c``, not a fork, so it
holds none of the app's descriptors and never loads Qt) owns it, and the app sends it named
calls over a pipe.

Protocol: each message is a 4-byte big-endian length and a pickle (both ends are this module,
run by the same user). A request is ``(op, args)``; the answer ``("ok", result)`` or
``("error", exception)``. Calls run one at a time, in order. The child stops when the app closes
the pipe — including when the app is killed: the kernel closes it — after finishing the calls
it already received, so a write the app sent is committed, never cut half-way. It also polls
its parent's pid, in case another process inherited the pipe.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import overlays as ov
from app.log import ImageRow, LogError, NewTurn, QALog, TurnRow, file_sha256

PARENT_POLL_S = 0.5
_HEADER = struct.Struct(">I")


class LogProcessError(LogError):
    """The log process failed or stopped; the message says what happened."""


@dataclass(frozen=True)
class ImageState:
    """What the log knows about one image: its row, its turns, its draft."""

    image: ImageRow
    turns: list[TurnRow]
    draft: tuple[list[ov.Prompt], str, int | None] | None = None
    statuses: dict[str, tuple[int, int]] = field(default_factory=dict)


# -- the calls (run in the child, on its connection) -----------------------------------------


def _open_image(log: QALog, path: Path) -> ImageState | None:
    try:
        row = log.add_image(path)
    except ov.ImageError:
        return None  # not a readable image: the canvas reports that
    return ImageState(row, log.turns(image_id=row.id), log.load_draft(row.id))


def _commit_turn(
    log: QALog, image_id: int | None, session_id: int | None, path: Path | None, turn: NewTurn
) -> TurnRow:
    """The image (if new), the session (if new) and the turn, in one transaction; the turn
    already stored under its request id when this is a retry."""
    if turn.request_id is not None:
        for row in log.turns(request_id=turn.request_id):
            return row
    size = digest = None
    if image_id is None:
        if path is None:
            raise LogError("an answer without its image cannot be saved")
        digest, size = file_sha256(path), ov.image_size(path)  # before taking the write lock
    with log.batch() as batch:
        if image_id is None:
            assert path is not None and size is not None and digest is not None
            image_id = batch.add_image(path, size, digest).id
        if session_id is None:
            session_id = batch.start_session(image_id, source="gui")
        turn.session_id = session_id
        turn_id = batch.add_turn(turn)
    return log.turn(turn_id)


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


OPS: dict[str, Callable[..., Any]] = {
    "ping": lambda log: None,
    "open_image": _open_image,
    "turns": lambda log, image_id: log.turns(image_id=image_id),
    "turn": lambda log, turn_id: log.turn(turn_id),
    "statuses": lambda log: log.image_statuses(),
    "save_draft": lambda log, *args: log.save_draft(*args),
    "commit_turn": _commit_turn,
    "review": _review,
    "set_tags": _set_tags,
}


# -- framing ---------------------------------------------------------------------------------


def send(out: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(data)) + data)
    out.flush()


def receive(inp: IO[bytes]) -> Any:
    """The next message; EOFError when the other end closed (or died) between or mid-message."""
    header = inp.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = inp.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives a pickle round trip, else a LogProcessError saying what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return LogProcessError(f"{type(exc).__name__}: {exc}")
    return exc


# -- the child -------------------------------------------------------------------------------


def serve(inp: IO[bytes], out: IO[bytes], path: Path, busy_timeout_s: float, parent: int) -> None:
    """Answer calls until the app closes the pipe, asks to close, or is gone."""
    requests: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        try:
            while True:
                requests.put(receive(inp))
        except (EOFError, OSError, pickle.UnpicklingError):
            requests.put(None)

    threading.Thread(target=read, name="log-requests", daemon=True).start()
    log: QALog | None = None
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
                if log is not None:
                    log.close()
                    log = None
                send(out, ("ok", None))
                return
            try:
                if log is None:
                    log = QALog.open(path, busy_timeout_s=busy_timeout_s)
                reply = ("ok", OPS[op](log, *args))
            except Exception as exc:  # reported to the app, which shows it and goes on
                reply = ("error", _portable(exc))
            try:
                send(out, reply)
            except OSError:
                return  # the app is gone; the call itself is done
    finally:
        if log is not None:
            log.close()


def child_main() -> None:
    """Entry point of the child (``python -c``): ``argv`` = path, busy timeout, parent pid."""
    # Ctrl+C in a terminal reaches the whole process group: the app decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the protocol
    path, timeout, parent = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    serve(inp, out, path, timeout, parent)


# -- the app's side --------------------------------------------------------------------------


class LogProcess:
    """A started log process. :meth:`call` blocks: use it off the GUI thread (the writer's
    log thread); calls from several threads are serialised."""

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from app.gui.logproc import child_main; child_main()",
                str(path),
                repr(busy_timeout_s),
                str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def call(self, op: str, *args: Any) -> Any:
        """Run ``op`` in the child; its exception is raised here."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            try:
                send(self._proc.stdin, (op, args))
                status, value = receive(self._proc.stdout)
            except (EOFError, OSError):
                try:
                    code: int | None = self._proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    code = None
                detail = f" (exit code {code})" if code is not None else ""
                raise LogProcessError(
                    f"the log process stopped{detail}: it is restarted on the next call"
                ) from None
        if status == "error":
            raise value
        return value

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the child to finish and wait for it; kill it only if it does not exit."""
        with self._lock:
            stdin, stdout = self._proc.stdin, self._proc.stdout
            try:
                if stdin is not None and stdout is not None and self.alive:
                    send(stdin, ("close", ()))
                    receive(stdout)
            except (EOFError, OSError):
                pass
            for fh in (stdin, stdout):
                if fh is not None:
                    fh.close()
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

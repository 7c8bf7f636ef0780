"""The desktop app's log process: the only holder of the app's SQLite connection.

SQLite's locks on POSIX are ``fcntl`` locks, owned by the process, and closing *any* descriptor
of a file drops all of the process's locks on it. Qt's file dialog opens and closes
``log.sqlite``, ``-wal`` and ``-shm`` to sniff their type; in the app's process that silently
unlocked the log, another process deleted the live WAL, and later commits went to a deleted
file. So the app keeps no connection at all: a child process (``python -c``, not a fork, so it
holds none of the app's descriptors and never loads Qt) owns it, and the app sends it named
calls over a pipe (the calls: :mod:`app.gui.logops`).

Protocol: each message is a 4-byte big-endian length and a pickle (both ends are this code, run
by the same user). A request is ``(op, args)``; the answer ``("ok", result)`` or ``("error",
exception)``. Calls run one at a time, in order. The child stops when the app closes the pipe —
also when the app is killed: the kernel closes it — after finishing the calls it already
received, so a write the app sent is committed, never cut half-way. It also polls its parent's
pid, in case another process inherited the pipe.

This module imports only the standard library, so that the app can start the child before its
own heavy imports (:func:`prestart`) and the two boot side by side.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

PARENT_POLL_S = 0.5
_HEADER = struct.Struct(">I")


class LogProcessError(Exception):
    """The log process failed a call in a way the log itself does not name."""


class LogProcessDied(LogProcessError):
    """The log process stopped (or its pipe broke) before answering; the call may be resent."""


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


def child_env() -> dict[str, str]:
    """The environment of a ``python -c`` child of the app: this package importable."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


class LogProcess:
    """A started log process. :meth:`call` blocks: use it off the GUI thread (the writer's
    log thread); calls from several threads are serialised."""

    def __init__(self) -> None:
        env = child_env()
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from app.gui.logops import child_main; child_main()",
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

    def configure(self, path: Path, busy_timeout_s: float) -> None:
        """Which log to use (opened on the next call), and how long to wait on its lock."""
        self.call("configure", str(path), busy_timeout_s)

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
                raise LogProcessDied(
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


_spare: LogProcess | None = None
_spare_lock = threading.Lock()


def prestart() -> None:
    """Start a log process now, for the first :func:`take` (the app calls this first thing)."""
    global _spare
    with _spare_lock:
        if _spare is None:
            _spare = LogProcess()


def take() -> LogProcess:
    """The prestarted log process if it is still running, else a new one."""
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is not None and spare.alive:
        return spare
    return LogProcess()

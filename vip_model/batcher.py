"""The server's batcher: a worker thread that drains the request queue into batched engine calls.

A failing batch is split in halves down to the failing request, so that one request's error is
its own. Each job gives its pixels back to the server's budget when it is done. No Qt.
"""

from __future__ import annotations

import asyncio
import ctypes
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from vip_model.engine import CancelToken, Engine, Request
from vip_model.server_limits import Reservation, ServerConfig

#: A batch holding this many decoded pixels makes the idle batcher return freed memory.
TRIM_AFTER_PIXELS = 10_000_000


def return_freed_memory() -> None:
    """Hand freed heap memory back to the system (glibc only; elsewhere nothing happens).

    glibc keeps the pages of freed blocks it got from its heap: without this a server that
    decoded a few 50-MP images keeps their gigabytes for good."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _find_malloc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _find_malloc_trim()


class QueueFull(Exception):
    """The server's queue is full; the client should retry later."""


@dataclass(eq=False)
class Job:
    """One request waiting for the engine, and where its results go."""

    request: Request
    stream: bool
    loop: asyncio.AbstractEventLoop
    reservation: Reservation | None = None
    cancel: CancelToken = field(default_factory=CancelToken)
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)

    def emit(self, kind: str, value: Any) -> None:
        """Hand an event ("delta", "answer" or "error") to the waiting handler, thread-safely."""
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the handler's loop is gone: its client left
            self.cancel.cancel()

    def finish(self, kind: str, value: Any) -> None:
        """The last event of this job: its pixels go back to the budget."""
        self.emit(kind, value)
        self.release()

    def release(self) -> None:
        if self.reservation is not None:
            self.reservation.release()


class Batcher:
    """A worker thread that drains the queue into batched engine calls."""

    def __init__(self, engine: Engine, config: ServerConfig) -> None:
        self.engine = engine
        self.config = config
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=config.max_queue)
        self.batches = 0
        self.answered = 0
        self.cancelled = 0
        self.splits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vip-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def submit(self, job: Job) -> None:
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise QueueFull from None

    def _run(self) -> None:
        trim_until = 0.0
        while not self._stop.is_set():
            try:
                first = self.queue.get(timeout=0.1)
            except queue.Empty:
                # Idle after large images: give their freed memory back to the system (the
                # handlers drop the last references a moment after the answers).
                if time.monotonic() < trim_until:
                    return_freed_memory()
                continue
            jobs = [first]
            deadline = time.monotonic() + self.config.max_wait_ms / 1000
            while len(jobs) < self.config.max_batch_size:
                remaining = deadline - time.monotonic()
                try:
                    jobs.append(
                        self.queue.get(timeout=max(remaining, 0))
                        if remaining > 0
                        else self.queue.get_nowait()
                    )
                except queue.Empty:
                    break
            if sum(j.reservation.pixels for j in jobs if j.reservation) >= TRIM_AFTER_PIXELS:
                trim_until = time.monotonic() + 2.0
            self._process(jobs)
            del first, jobs  # hold no image while waiting for the next request

    def _process(self, jobs: list[Job]) -> None:
        live = self._live(jobs)
        plain = [j for j in live if not j.stream]
        if plain:
            self.batches += 1
            self._answer_batch(plain)
        for job in (j for j in live if j.stream):
            self._answer_stream(job)

    @staticmethod
    def _live(jobs: list[Job]) -> list[Job]:
        """The jobs whose clients still wait; the others' pixels go back to the budget."""
        for job in jobs:
            if job.cancel.cancelled:
                job.release()
        return [j for j in jobs if not j.cancel.cancelled]

    def _answer_batch(self, jobs: list[Job]) -> None:
        group = CancelToken()
        watcher = _GroupCancel(group, [j.cancel for j in jobs])
        watcher.start()
        try:
            answers = self.engine.batch([j.request for j in jobs], cancel=group)
        except Exception as exc:
            failure: Exception | None = exc
        else:
            failure = None
        finally:
            watcher.stop()
        if failure is not None:
            if len(jobs) == 1:
                jobs[0].finish("error", failure)
                return
            # Whatever failed (a request nothing caught before the batch, or memory), it must
            # not fail the neighbours: answer the two halves apart, down to the culprit alone.
            self.splits += 1
            half = len(jobs) // 2
            for part in (jobs[:half], jobs[half:]):
                if live := self._live(part):
                    self._answer_batch(live)
            return
        for job, answer in zip(jobs, answers, strict=True):
            self.answered += 1
            job.finish("answer", answer)

    def _answer_stream(self, job: Job) -> None:
        try:
            streamed = self.engine.stream(job.request, cancel=job.cancel)
            with streamed:
                for delta in streamed:
                    job.emit("delta", delta)
                answer = streamed.answer
        except Exception as exc:
            job.finish("error", exc)
            return
        self.answered += 1
        self.cancelled += answer.finish_reason == "cancelled"
        job.finish("answer", answer)


class _GroupCancel:
    """Cancels a batch once every one of its clients has gone."""

    def __init__(self, group: CancelToken, members: list[CancelToken]) -> None:
        self.group = group
        self.members = members
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            if all(m.cancelled for m in self.members):
                self.group.cancel()
                return

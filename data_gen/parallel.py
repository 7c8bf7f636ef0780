"""An ordered, bounded, chunked process-pool map: results in input order, little held in memory.

``concurrent.futures.Executor.map`` submits its whole input at once (Python < 3.14), which would
hold every pending job of a long export in memory. Here at most ``window`` chunks are in flight;
the caller's items stay in this process and only the jobs (small picklable descriptions) travel.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
J = TypeVar("J")
R = TypeVar("R")


def default_workers() -> int:
    """All the cores this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def _pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: forking this process (which may run tqdm's monitor thread and holds an
    # SQLite connection) is unsafe; spawn would re-import everything per worker.
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["overlays", "data_gen.images"])
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


def die_with_parent(parent: int) -> None:
    """Make this worker exit as soon as process ``parent`` is gone, even after ``kill -9``.

    A pool's workers wait on a queue whose write end they hold themselves, so nothing would
    ever end them: each would keep its decoded images (hundreds of MB) forever.
    """
    if sys.platform.startswith("linux"):
        # The kernel kills us when our parent exits; under forkserver that parent is the
        # server, which exits when the process that started it is gone.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if not process_alive(parent):
        os._exit(1)
    threading.Thread(target=_exit_when_gone, args=(parent,), daemon=True).start()


_PR_SET_PDEATHSIG = 1


def process_alive(pid: int) -> bool:
    """True while a process ``pid`` exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_when_gone(parent: int) -> None:
    # A pidfd becomes readable when the process ends (zombie included); elsewhere, poll.
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(parent)
        except ProcessLookupError:
            os._exit(1)
        except OSError:  # no pidfd support in this kernel
            fd = None
        if fd is not None:
            select.select([fd], [], [])
            os._exit(1)
    while process_alive(parent):
        time.sleep(0.5)
    os._exit(1)


def ordered_map(
    items: Iterable[T],
    job_of: Callable[[T], J | None],
    run: Callable[[list[J | None]], list[R | None]],
    *,
    workers: int = 1,
    chunk: int = 8,
) -> Generator[tuple[T, R | None], None, None]:
    """Yield ``(item, result)`` in input order; ``result`` is None when ``job_of`` gave None.

    ``run`` takes a list of jobs and returns their results (it must be a picklable top-level
    function when ``workers > 1``). With ``workers <= 1`` everything runs in this process.
    """
    if workers <= 1:
        batch: list[T] = []
        for item in items:
            batch.append(item)
            if len(batch) >= chunk:
                yield from zip(batch, run([job_of(i) for i in batch]), strict=True)
                batch = []
        if batch:
            yield from zip(batch, run([job_of(i) for i in batch]), strict=True)
        return
    window = 3 * workers
    pending: deque[tuple[list[T], Future[list[R | None]] | None]] = deque()
    with _pool(workers) as pool:
        try:
            batch = []
            jobs: list[J | None] = []

            def submit() -> None:
                if any(j is not None for j in jobs):
                    pending.append((batch, pool.submit(run, list(jobs))))
                else:
                    pending.append((batch, None))

            for item in items:
                batch.append(item)
                jobs.append(job_of(item))
                if len(batch) >= chunk:
                    submit()
                    batch, jobs = [], []
                    while len(pending) > window:
                        yield from _drain(pending.popleft())
            if batch:
                submit()
            while pending:
                yield from _drain(pending.popleft())
        except BaseException:
            for _, future in pending:
                if future is not None:
                    future.cancel()
            raise


def _drain(entry: tuple[list[T], Future[list[R | None]] | None]) -> Iterator[tuple[T, R | None]]:
    batch, future = entry
    if future is None:
        yield from ((item, None) for item in batch)
    else:
        yield from zip(batch, future.result(), strict=True)

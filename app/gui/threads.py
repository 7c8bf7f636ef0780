"""Run plain functions and generators off the GUI thread (the superqt ``thread_worker`` habit).

The work is a function without Qt; a :class:`Worker` runs it on a thread pool and reports
``yielded`` (each value a generator yields), ``returned`` (its result), ``errored`` (the
exception) and ``finished`` (always, last). Cancellation is cooperative: :meth:`Worker.quit`
stops a generator at its next yield; a function checks the ``abort`` event it may accept.
"""

from __future__ import annotations

import inspect
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


class Box:
    """Carries a value through a queued ``Signal(object)``. PySide6 mis-counts references of
    ``None`` sent that way across threads (a crash after many calls), so values travel boxed."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


# Workers must outlive their run(); Qt only holds the C++ side.
_RUNNING: set[Worker] = set()
_LOCK = threading.Lock()


class WorkerSignals(QObject):
    """Signals of a worker, emitted from the pool thread and delivered on the GUI thread.
    Each carries a :class:`Box`."""

    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    finished = Signal()


class Worker(QRunnable):
    """One call of ``fn(*args, **kwargs)`` on a pool thread.

    If ``fn`` accepts a keyword ``abort`` it receives a :class:`threading.Event` set by
    :meth:`quit`. Connect to :attr:`signals` before :meth:`start`.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.abort = threading.Event()
        self.signals = WorkerSignals()
        self.error: BaseException | None = None
        self.done = threading.Event()
        try:
            if "abort" in inspect.signature(fn).parameters:
                self.kwargs["abort"] = self.abort
        except (TypeError, ValueError):
            pass

    def start(self, pool: QThreadPool | None = None) -> Worker:
        with _LOCK:
            _RUNNING.add(self)
        (pool or QThreadPool.globalInstance()).start(self)
        return self

    def quit(self) -> None:
        """Ask the work to stop (at its next yield, or when it checks ``abort``)."""
        self.abort.set()

    @property
    def aborted(self) -> bool:
        return self.abort.is_set()

    def run(self) -> None:  # runs on the pool thread
        sig = self.signals
        try:
            sig.started.emit()
            result = self.fn(*self.args, **self.kwargs)
            if inspect.isgenerator(result):
                result = self._drain(result)
            if not self.abort.is_set() or result is not None:
                sig.returned.emit(Box(result))
        except Exception as exc:  # reported to the GUI, which shows it and goes on
            self.error = exc
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            sig.errored.emit(Box(exc))
        finally:
            self.done.set()
            sig.finished.emit()
            with _LOCK:
                _RUNNING.discard(self)

    def _drain(self, gen: Any) -> Any:
        try:
            while True:
                if self.abort.is_set():
                    gen.close()
                    return None
                self.signals.yielded.emit(Box(next(gen)))
        except StopIteration as stop:
            return stop.value


class _Relay(QObject):
    """Delivers a worker's signals to plain callables on behalf of ``owner``.

    It is a child of the owner: when the owner is deleted (a closed window), Qt deletes the
    relay and drops its connections, so a late result never reaches a dead object.
    """

    def __init__(
        self,
        owner: QObject,
        on_yield: Callable[[Any], Any] | None,
        on_return: Callable[[Any], Any] | None,
        on_error: Callable[[Any], Any] | None,
        on_finish: Callable[[], Any] | None,
    ) -> None:
        super().__init__(owner)
        self._calls = (on_yield, on_return, on_error, on_finish)

    @Slot(object)
    def yielded(self, box: Box) -> None:
        if self._calls[0] is not None:
            self._calls[0](box.value)

    @Slot(object)
    def returned(self, box: Box) -> None:
        if self._calls[1] is not None:
            self._calls[1](box.value)

    @Slot(object)
    def errored(self, box: Box) -> None:
        if self._calls[2] is not None:
            self._calls[2](box.value)

    @Slot()
    def finished(self) -> None:
        try:
            if self._calls[3] is not None:
                self._calls[3]()
        finally:
            self.deleteLater()


def run_in_thread(
    fn: Callable[..., Any],
    *args: Any,
    owner: QObject,
    pool: QThreadPool | None = None,
    on_yield: Callable[[Any], Any] | None = None,
    on_return: Callable[[Any], Any] | None = None,
    on_error: Callable[[Any], Any] | None = None,
    on_finish: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Worker:
    """Start ``fn`` on ``pool`` (default: the global pool); the callbacks run on the GUI
    thread while ``owner`` is alive."""
    worker = Worker(fn, *args, **kwargs)
    relay = _Relay(owner, on_yield, on_return, on_error, on_finish)
    worker.signals.yielded.connect(relay.yielded)
    worker.signals.returned.connect(relay.returned)
    worker.signals.errored.connect(relay.errored)
    worker.signals.finished.connect(relay.finished)
    return worker.start(pool)


def serial_pool(name: str) -> QThreadPool:
    """A pool with one thread: its jobs run one at a time, in submission order."""
    pool = QThreadPool()
    pool.setMaxThreadCount(1)
    pool.setObjectName(name)
    return pool

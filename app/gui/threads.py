"""Run a plain function or generator off the GUI thread (superqt ``thread_worker`` style).

The work is a function without Qt; a :class:`Worker` runs it on a thread pool and reports on
the GUI thread, in this order: ``started``; ``yielded`` for each value a generator yields; then
exactly one of ``returned`` (its result), ``errored`` (the exception it raised) or ``aborted``
(it was stopped by :meth:`Worker.quit`); and ``finished``, always last.

Cancellation is cooperative: :meth:`Worker.quit` stops a generator at its next yield (it is
closed, so its ``finally`` blocks run; a value produced after the request is not delivered)
and keeps work that has not started from starting; a plain function, which has no yield to
stop at, runs to its end.
"""

from __future__ import annotations

import inspect
import threading
import traceback
from collections.abc import Callable, Generator
from typing import Any, Generic, Never, TypeVar, overload

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

Y = TypeVar("Y")  # what the work yields
R = TypeVar("R")  # what the work returns


class Box:
    """Carries a value through a queued ``Signal(object)``. PySide6 mis-counts references of
    ``None`` sent that way across threads (a crash after many calls), so values travel boxed."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


# Workers must outlive their run(); Qt only holds the C++ side.
_RUNNING: set[Worker[Any, Any]] = set()
_LOCK = threading.Lock()


class WorkerSignals(QObject):
    """Signals of a worker, emitted from the pool thread and delivered on the GUI thread.
    ``yielded``, ``returned`` and ``errored`` carry a :class:`Box`."""

    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    aborted = Signal()
    finished = Signal()


class Worker(QRunnable, Generic[Y, R]):
    """One call of ``fn(*args, **kwargs)`` on a pool thread; a generator function yields ``Y``
    values and returns ``R``. Connect to :attr:`signals` before :meth:`start`."""

    @overload
    def __init__(
        self: Worker[Y, R], fn: Callable[..., Generator[Y, Any, R]], *args: Any, **kwargs: Any
    ) -> None: ...

    @overload
    def __init__(
        self: Worker[Never, R], fn: Callable[..., R], *args: Any, **kwargs: Any
    ) -> None: ...

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.signals = WorkerSignals()
        self._quit = threading.Event()

    def start(self, pool: QThreadPool | None = None) -> Worker[Y, R]:
        with _LOCK:
            _RUNNING.add(self)
        (pool or QThreadPool.globalInstance()).start(self)
        return self

    def quit(self) -> None:
        """Ask the work to stop: at its next yield, or before it starts. Thread-safe."""
        self._quit.set()

    @property
    def abort_requested(self) -> bool:
        return self._quit.is_set()

    def run(self) -> None:  # runs on the pool thread
        sig = self.signals
        try:
            sig.started.emit()
            if self._quit.is_set():
                sig.aborted.emit()
                return
            result = self.fn(*self.args, **self.kwargs)
            if inspect.isgenerator(result):
                stopped, result = self._drain(result)
                if stopped:
                    sig.aborted.emit()
                    return
            sig.returned.emit(Box(result))
        except Exception as exc:  # reported to the GUI, which shows it and goes on
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            sig.errored.emit(Box(exc))
        finally:
            sig.finished.emit()
            with _LOCK:
                _RUNNING.discard(self)

    def _drain(self, gen: Generator[Any, Any, Any]) -> tuple[bool, Any]:
        """Run ``gen`` to its end: (False, its return value), or (True, None) once stopped."""
        try:
            while True:
                if self._quit.is_set():
                    gen.close()
                    return True, None
                value = next(gen)
                if self._quit.is_set():  # asked to stop while it worked: drop what came late
                    gen.close()
                    return True, None
                self.signals.yielded.emit(Box(value))
        except StopIteration as stop:
            return False, stop.value


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
        on_abort: Callable[[], Any] | None,
        on_finish: Callable[[], Any] | None,
    ) -> None:
        super().__init__(owner)
        self._calls = (on_yield, on_return, on_error, on_abort, on_finish)

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
    def aborted(self) -> None:
        if self._calls[3] is not None:
            self._calls[3]()

    @Slot()
    def finished(self) -> None:
        try:
            if self._calls[4] is not None:
                self._calls[4]()
        finally:
            self.deleteLater()


@overload
def run_in_thread(
    fn: Callable[..., Generator[Y, Any, R]],
    *args: Any,
    owner: QObject,
    pool: QThreadPool | None = None,
    on_yield: Callable[[Y], Any] | None = None,
    on_return: Callable[[R], Any] | None = None,
    on_error: Callable[[Exception], Any] | None = None,
    on_abort: Callable[[], Any] | None = None,
    on_finish: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Worker[Y, R]: ...


@overload
def run_in_thread(
    fn: Callable[..., R],
    *args: Any,
    owner: QObject,
    pool: QThreadPool | None = None,
    on_yield: None = None,
    on_return: Callable[[R], Any] | None = None,
    on_error: Callable[[Exception], Any] | None = None,
    on_abort: Callable[[], Any] | None = None,
    on_finish: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Worker[Never, R]: ...


def run_in_thread(
    fn: Callable[..., Any],
    *args: Any,
    owner: QObject,
    pool: QThreadPool | None = None,
    on_yield: Callable[[Any], Any] | None = None,
    on_return: Callable[[Any], Any] | None = None,
    on_error: Callable[[Exception], Any] | None = None,
    on_abort: Callable[[], Any] | None = None,
    on_finish: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Worker[Any, Any]:
    """Start ``fn`` on ``pool`` (default: the global pool); the callbacks run on the GUI
    thread while ``owner`` is alive."""
    worker: Worker[Any, Any] = Worker(fn, *args, **kwargs)
    relay = _Relay(owner, on_yield, on_return, on_error, on_abort, on_finish)
    worker.signals.yielded.connect(relay.yielded)
    worker.signals.returned.connect(relay.returned)
    worker.signals.errored.connect(relay.errored)
    worker.signals.aborted.connect(relay.aborted)
    worker.signals.finished.connect(relay.finished)
    return worker.start(pool)


def serial_pool(name: str) -> QThreadPool:
    """A pool with one thread: its jobs run one at a time, in submission order."""
    pool = QThreadPool()
    pool.setMaxThreadCount(1)
    pool.setObjectName(name)
    return pool

"""The typed worker of app.gui.threads (superqt ``thread_worker`` style): its signals come in
one strict order, ``aborted`` is not an error, and cancellation is cooperative."""

from __future__ import annotations

import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from app.gui.files import FileListModel
from app.gui.threads import Worker, run_in_thread, serial_pool


def _record(worker: Worker[Any, Any]) -> list[str]:
    """Every signal the worker emits, as text, in the order the GUI thread received them."""
    seen: list[str] = []
    s = worker.signals
    s.started.connect(lambda: seen.append("started"))
    s.yielded.connect(lambda box: seen.append(f"yielded {box.value}"))
    s.returned.connect(lambda box: seen.append(f"returned {box.value}"))
    s.errored.connect(lambda box: seen.append(f"errored {type(box.value).__name__}"))
    s.aborted.connect(lambda: seen.append("aborted"))
    s.finished.connect(lambda: seen.append("finished"))
    return seen


def count_to(n: int) -> Generator[int, None, str]:
    yield from range(n)
    return f"counted {n}"


def test_a_generator_yields_then_returns_then_finishes(qtbot: Any) -> None:
    worker = Worker(count_to, 1)
    seen = _record(worker)
    s = worker.signals
    with qtbot.waitSignals([s.started, s.yielded, s.returned, s.finished], order="strict"):
        worker.start()
    assert seen == ["started", "yielded 0", "returned counted 1", "finished"]

    worker = Worker(count_to, 3)
    seen = _record(worker)
    with qtbot.waitSignal(worker.signals.finished):
        worker.start()
    assert seen[1:4] == ["yielded 0", "yielded 1", "yielded 2"]
    assert seen[4:] == ["returned counted 3", "finished"]


def test_a_function_returns_none_and_an_error_is_errored_not_returned(qtbot: Any) -> None:
    worker: Worker[Any, None] = Worker(lambda: None)
    seen = _record(worker)
    s = worker.signals
    with qtbot.waitSignals([s.started, s.returned, s.finished], order="strict"):
        worker.start()
    assert seen == ["started", "returned None", "finished"]

    def fail() -> int:
        raise ValueError("bad input")

    worker = Worker(fail)
    seen = _record(worker)
    errors: list[BaseException] = []
    s = worker.signals
    s.errored.connect(lambda box: errors.append(box.value))
    with qtbot.waitSignals([s.started, s.errored, s.finished], order="strict"):
        worker.start()
    (error,) = errors
    assert isinstance(error, ValueError) and "bad input" in error.__traceback_text__
    assert seen == ["started", "errored ValueError", "finished"]


def test_quit_stops_a_generator_at_its_next_yield_and_reports_aborted(qtbot: Any) -> None:
    step, closed = threading.Event(), threading.Event()

    def slow() -> Generator[int, None, str]:
        try:
            for i in range(100):
                yield i
                assert step.wait(5), "the test never let the generator go on"
                step.clear()
            return "all"
        finally:
            closed.set()

    worker = Worker(slow)
    seen = _record(worker)
    worker.signals.yielded.connect(lambda _: (worker.quit(), step.set()))
    s = worker.signals
    with qtbot.waitSignals([s.started, s.yielded, s.aborted, s.finished], order="strict"):
        worker.start()
    assert seen == ["started", "yielded 0", "aborted", "finished"]
    assert closed.is_set() and worker.abort_requested


def test_quit_before_the_work_starts_means_it_never_runs(qtbot: Any) -> None:
    pool, gate, ran = serial_pool("test"), threading.Event(), []
    blocker_job = Worker(gate.wait, 5).start(pool)  # holds the pool's only thread
    worker = Worker(lambda: ran.append("ran"))
    seen = _record(worker)
    worker.start(pool)
    worker.quit()
    s = worker.signals
    with qtbot.waitSignals([s.started, s.aborted, s.finished], order="strict"):
        gate.set()
    assert seen == ["started", "aborted", "finished"] and ran == []
    assert pool.waitForDone(5000) and not blocker_job.abort_requested


def test_run_in_thread_delivers_abort_to_its_callback_only(qtbot: Any) -> None:
    owner, calls = QObject(), []
    go = threading.Event()

    def work() -> Generator[int, None, int]:
        yield 1
        go.wait(5)
        yield 2
        return 3

    worker = run_in_thread(
        work,
        owner=owner,
        on_yield=lambda v: (calls.append(f"yield {v}"), worker.quit(), go.set()),
        on_return=lambda v: calls.append(f"return {v}"),
        on_error=lambda e: calls.append("error"),
        on_abort=lambda: calls.append("abort"),
        on_finish=lambda: calls.append("finish"),
    )
    qtbot.waitUntil(lambda: "finish" in calls, timeout=5000)
    assert calls == ["yield 1", "abort", "finish"]


def test_a_new_scan_stops_the_previous_one(qtbot: Any, tmp_path: Path) -> None:
    count = 3
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        for i in range(count):
            (folder / f"{folder.name}{i}.png").write_bytes(b"")
    holder = QWidget()  # a parentless model crashes at teardown under pytest-qt
    qtbot.addWidget(holder)
    model = FileListModel(holder)
    running = model.scan(first)
    with qtbot.waitSignal(model.scan_finished, timeout=5000) as done:
        model.scan(second)
    assert running.abort_requested and done.args == [count]
    assert [p.parent for p in model.paths] == [second] * count

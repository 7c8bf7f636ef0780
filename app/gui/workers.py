"""The app's only path to the model: load an engine, stream answers, cancel — off the GUI thread.

The work itself is plain functions (:func:`load_engine`, :func:`stream_answer`) over the
``vip_model`` engine interface; :class:`EngineHost` runs them on its own thread and reports the
state the status bar shows: ``none``, ``loading``, ``ready``, ``generating``, ``error``.
The local transformers engine and the remote client of our server are interchangeable here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.gui.threads import Worker, run_in_thread, serial_pool
from vip_model.engine import Answer, CancelToken, Engine, EngineInfo, Request
from vip_model.engine_spec import EngineSpec, build_engine

#: How often streamed text is handed to the GUI (seconds): fewer, larger repaints.
STREAM_INTERVAL_S = 0.03


def load_engine(spec: EngineSpec) -> Generator[str, None, tuple[Engine, EngineInfo]]:
    """Yield progress messages while the engine starts; return it with its info.

    A hub id is only read from the local cache: the app never starts a multi-GB download on
    its own (the error says how to get the model).
    """
    if spec.remote:
        yield f"connecting to {spec.server_url}…"
        # Fail fast: the person is waiting and can retry.
        from vip_model.client import RemoteEngine

        remote = build_engine(replace(spec, retries=1))
        assert isinstance(remote, RemoteEngine)
        try:
            remote.health()
            info = remote.info()
        except BaseException:
            remote.close()
            raise
        return remote, info
    yield "importing torch and transformers…"
    from vip_model.hf import HFEngine

    yield f"loading {spec.label}…"
    if spec.local_files_only is None:
        local = Path(spec.model).expanduser().is_dir()
        spec = replace(spec, local_files_only=None if local else True)
    engine = build_engine(spec, lazy=True)
    assert isinstance(engine, HFEngine)
    engine.load()
    return engine, engine.info()


def build_tiny_model(folder: Path) -> Generator[str, None, Path]:
    """Build the tiny random model (for trying the interface) into ``folder``; return it."""
    yield "building the tiny random model…"
    from vip_model.tiny import make_tiny_model

    if folder.is_dir() and (folder / "config.json").is_file():
        return folder
    return make_tiny_model(folder, "tiny", overwrite=True).path


def stream_answer(
    engine: Engine, request: Request, cancel: CancelToken
) -> Generator[tuple[str, int], None, Answer]:
    """Yield ``(text piece, pieces so far)`` grouped every few ms; return the Answer.

    On cancel the partial text is kept: the returned answer has ``finish_reason="cancelled"``.
    """
    parts: list[str] = []
    pending: list[str] = []
    last = time.perf_counter()
    answer: Answer | None = None
    streamed = engine.stream(request, cancel)
    try:
        for delta in streamed:
            parts.append(delta)
            pending.append(delta)
            now = time.perf_counter()
            if now - last >= STREAM_INTERVAL_S:
                yield "".join(pending), len(parts)
                pending.clear()
                last = now
            if cancel.cancelled:
                break
        if pending:
            yield "".join(pending), len(parts)
        answer = streamed.answer if streamed.done else None
    finally:
        streamed.close()
    text = "".join(parts)
    if answer is None:
        return Answer(text=text, finish_reason="cancelled", completion_tokens=len(parts))
    if answer.finish_reason == "cancelled" and len(text) > len(answer.text):
        return replace(answer, text=text)
    return answer


class AskJob:
    """One streaming answer in progress. :meth:`stop` cancels it cooperatively."""

    def __init__(self, cancel: CancelToken) -> None:
        self.worker: Worker[tuple[str, int], Answer] | None = None
        self.cancel = cancel
        self.started = time.perf_counter()
        self.first: float | None = None
        self.text = ""
        self.pieces = 0

    def stop(self) -> None:
        self.cancel.cancel()


class EngineHost(QObject):
    """Holds the current engine and runs model work on one background thread."""

    state_changed = Signal(str, str)  # state, detail
    progress = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = serial_pool("model")
        self.engine: Engine | None = None
        self.info: EngineInfo | None = None
        self.spec: EngineSpec | None = None
        self.state = "none"
        self.detail = "no model loaded"
        self.job: AskJob | None = None
        self._load_id = 0
        self._owned = True

    def _set(self, state: str, detail: str) -> None:
        self.state, self.detail = state, detail
        self.state_changed.emit(state, detail)

    @property
    def ready(self) -> bool:
        return self.engine is not None and self.job is None

    def load(self, spec: EngineSpec) -> None:
        """Start (re)loading; an answer in progress is stopped, the previous engine closed."""
        self.stop()
        self._load_id += 1
        load_id = self._load_id
        old, self.engine, self.info, self.spec = self.engine, None, None, spec
        if not self._owned:
            old, self._owned = None, True
        if not spec.remote and not spec.model:
            self._set("none", "no model configured")
            return
        self._set("loading", f"loading {spec.label}")

        def work() -> Generator[str, None, tuple[Engine, EngineInfo]]:
            if old is not None:
                old.close()
            return (yield from load_engine(spec))

        run_in_thread(
            work,
            owner=self,
            pool=self._pool,
            on_yield=lambda msg: self.progress.emit(str(msg)),
            on_return=lambda result: self._loaded(load_id, result),
            on_error=lambda exc: self._failed(load_id, exc),
        )

    def adopt(self, engine: Engine, spec: EngineSpec, *, owned: bool = False) -> None:
        """Use an engine that is already running (embedding, tests). Unless ``owned``, it is
        not closed by :meth:`close`."""
        self._load_id += 1
        self.engine, self.spec, self.info = engine, spec, engine.info()
        self._owned = owned
        self._set("ready", spec.label)

    def build_tiny(self, folder: Path, on_built: Callable[[Path], Any]) -> None:
        self._set("loading", "building the tiny random model")
        run_in_thread(
            build_tiny_model,
            folder,
            owner=self,
            pool=self._pool,
            on_yield=lambda msg: self.progress.emit(str(msg)),
            on_return=on_built,
            on_error=lambda exc: self._failed(self._load_id, exc),
        )

    def _loaded(self, load_id: int, result: tuple[Engine, EngineInfo]) -> None:
        engine, info = result
        if load_id != self._load_id:  # superseded while loading
            run_in_thread(engine.close, owner=self, pool=self._pool)
            return
        self.engine, self.info, self._owned = engine, info, True
        where = f" on {info.device}" if info.device else ""
        self._set("ready", f"{self.spec.label if self.spec else info.model}{where}")

    def _failed(self, load_id: int, exc: BaseException) -> None:
        if load_id == self._load_id:
            self._set("error", str(exc) or type(exc).__name__)

    def ask(
        self,
        request: Request,
        on_text: Callable[[str], Any],
        on_answer: Callable[[Answer], Any],
        on_error: Callable[[BaseException], Any],
    ) -> AskJob | None:
        """Stream an answer; None (and nothing started) when no engine is ready."""
        engine = self.engine
        if engine is None or self.job is not None:
            return None
        cancel = CancelToken()
        job = AskJob(cancel)
        self.job = job

        def text(item: tuple[str, int]) -> None:
            piece, count = item
            now = time.perf_counter()
            if job.first is None:
                job.first, job.pieces = now, count
            job.text += piece
            elapsed = now - job.first
            rate = (count - job.pieces) / elapsed if elapsed > 0.05 else 0.0
            self._set("generating", f"{rate:.1f} tokens/s" if rate else "first tokens…")
            on_text(piece)

        def answered(answer: Answer) -> None:
            rate = answer.timings.tokens_per_s
            self.detail = f"{rate:.1f} tokens/s" if rate else self.detail
            on_answer(answer)

        def finish() -> None:
            self.job = None
            if self.engine is not None and self.state != "error":
                self._set("ready", self.spec.label if self.spec else "ready")

        self._set("generating", "starting…")
        job.worker = run_in_thread(
            stream_answer,
            engine,
            request,
            cancel,
            owner=self,
            pool=self._pool,
            on_yield=text,
            on_return=answered,
            on_error=on_error,
            on_finish=finish,
        )
        return job

    def run(
        self,
        fn: Callable[..., Generator[Any, None, Any]],
        *args: Any,
        detail: str,
        on_yield: Callable[[Any], Any],
        on_return: Callable[[Any], Any],
        on_error: Callable[[BaseException], Any],
        on_finish: Callable[[], Any] | None = None,
    ) -> AskJob | None:
        """Run ``fn(engine, *args, cancel)`` (a generator) on the model thread as the one job
        in progress, as :meth:`ask` runs an answer: :meth:`stop` cancels it. None (and nothing
        started) when no engine is ready or another job runs."""
        engine = self.engine
        if engine is None or self.job is not None:
            return None
        cancel = CancelToken()
        job = AskJob(cancel)
        self.job = job

        def finish() -> None:
            self.job = None
            if self.engine is not None and self.state != "error":
                self._set("ready", self.spec.label if self.spec else "ready")
            if on_finish is not None:
                on_finish()

        self._set("generating", detail)
        job.worker = run_in_thread(
            fn,
            engine,
            *args,
            cancel,
            owner=self,
            pool=self._pool,
            on_yield=on_yield,
            on_return=on_return,
            on_error=on_error,
            on_finish=finish,
        )
        return job

    def working(self, detail: str) -> None:
        """Say what the job in progress is doing (the status bar shows it)."""
        if self.job is not None:
            self._set("generating", detail)

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()

    @property
    def busy(self) -> bool:
        """Whether model work (a load, a generation, a close) still runs."""
        return self._pool.activeThreadCount() > 0

    def close(self, timeout_ms: int = 5000) -> None:
        """Cancel what runs, close the engine (at exit); wait at most ``timeout_ms``."""
        self.stop()
        self._load_id += 1
        engine, self.engine = self.engine, None
        if engine is not None and self._owned:
            run_in_thread(engine.close, owner=self, pool=self._pool)
        self._pool.waitForDone(timeout_ms)

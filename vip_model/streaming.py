"""Token plumbing between ``generate`` and the caller: token queues, clocks, cancellation,
and the incremental detokenizer that turns token ids into safe-to-show text deltas."""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from typing import Any

import torch
from transformers import StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from vip_model.engine import CancelToken


class TokenClock(BaseStreamer):
    """Records when generated tokens arrive (per decoding step) without decoding anything.

    ``generate`` first puts the prompt, then one tensor per step: ``(batch,)`` or ``(1, n)``.
    """

    def __init__(self) -> None:
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.steps = 0
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        now = time.perf_counter()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.steps += 1
        self.on_tokens(value)

    def on_tokens(self, value: torch.Tensor) -> None:
        """Hook for subclasses: the tokens of one step."""

    def end(self) -> None:
        pass

    def decode_rate(self, tokens: int) -> float:
        """Tokens per second after the first one (0 when fewer than two tokens)."""
        if tokens < 2 or self.first_at is None or self.last_at is None:
            return 0.0
        elapsed = self.last_at - self.first_at
        return (tokens - 1) / elapsed if elapsed > 0 else 0.0


class TokenQueue(TokenClock):
    """A :class:`TokenClock` that hands each step's token ids to another thread.

    Why not ``TextIteratorStreamer``: it decodes in the generation thread and restarts its
    decoding after every newline, and with Llama's decoder (which strips the first leading space
    of a decode) the pieces then no longer add up to the decoded answer. Here the consumer
    decodes the whole answer each time (:class:`Detokenizer`), so they always do.
    """

    def __init__(self) -> None:
        super().__init__()
        self.queue: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()

    def on_tokens(self, value: torch.Tensor) -> None:
        self.queue.put(value.reshape(-1).tolist())

    def end(self) -> None:
        self.queue.put(None)


class CancelCriteria(StoppingCriteria):
    """Stops every sequence once any of the tokens is cancelled (checked after each token)."""

    def __init__(self, *tokens: CancelToken | None) -> None:
        self.tokens = [t for t in tokens if t is not None]

    @property
    def cancelled(self) -> bool:
        return any(t.cancelled for t in self.tokens)

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        return torch.full(  # type: ignore[return-value]
            (input_ids.shape[0],), self.cancelled, dtype=torch.bool, device=input_ids.device
        )


class Detokenizer:
    """Generated ids -> text deltas whose concatenation is exactly the final answer text.

    The answer text is the decoded ids (special tokens skipped) with leading whitespace dropped,
    cut before the first stop string, and right-stripped. While streaming, text that may still
    change is held back: trailing whitespace (it may turn out to be the end), a trailing
    replacement character (an incomplete UTF-8 sequence), and a tail that could begin a stop
    string.
    """

    def __init__(self, tokenizer: Any, stop_strings: Sequence[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop_strings = tuple(s for s in stop_strings if s)
        self.ids: list[int] = []
        self.emitted = ""
        self.hit_stop_string = False

    def _text(self) -> str:
        text: str = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip()
        for stop in self.stop_strings:
            at = text.find(stop)
            if at >= 0:
                text = text[:at]
                self.hit_stop_string = True
        return text

    def _held_back(self, text: str) -> str:
        safe = text
        while safe != (trimmed := safe.rstrip().rstrip("\ufffd")):
            safe = trimmed
        for stop in self.stop_strings:
            for k in range(min(len(stop) - 1, len(safe)), 0, -1):
                if safe.endswith(stop[:k]):
                    safe = safe[:-k]
                    break
        return safe

    def _advance(self, text: str) -> str:
        # The decode of more ids extends the previous one except in the held-back tail; should a
        # decoder ever rewrite earlier text, nothing more is shown rather than a wrong sum.
        if not text.startswith(self.emitted):
            return ""
        delta = text[len(self.emitted) :]
        self.emitted = text
        return delta

    def feed(self, ids: Sequence[int]) -> str:
        """Add generated ids; return the new text that is safe to show (maybe empty)."""
        if self.hit_stop_string:
            return ""
        self.ids.extend(ids)
        text = self._text()
        return self._advance(text.rstrip() if self.hit_stop_string else self._held_back(text))

    def finish(self) -> str:
        """The last delta: everything held back that belongs to the answer."""
        return self._advance(self._text().rstrip())

    @property
    def text(self) -> str:
        return self.emitted


__all__ = ["CancelCriteria", "Detokenizer", "TokenClock", "TokenQueue"]

"""The transformers engine: one ViP-LLaVA resident in this process, answering requests.

Input preparation follows training (docs/VIP_FACTS.md §1, §3): the prompts are drawn on the
full-resolution image (``overlays.render``), the result is padded to a square with the CLIP mean
(``overlays.pad_to_square``), and only then does the CLIP processor resize it — a square is never
centre-cropped, so marks near the long edges survive.

Follow-up turns on the same marked image reuse the KV cache of the conversation so far
(:class:`PrefixCache`): generation only computes the tokens after the longest common prefix.
Greedy answers are identical to a from-scratch run (tested).
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from transformers import DynamicCache, StoppingCriteriaList

import overlays
from overlays import ImageTooLarge, Prompt
from vip_model.engine import (
    Answer,
    CancelToken,
    EngineInfo,
    FinishReason,
    GenerationSettings,
    Request,
    Streamed,
    Timings,
)
from vip_model.errors import InvalidRequest, ModelError
from vip_model.kv_cache import DigestMemo, PrefixCache
from vip_model.loading import DEFAULT_MODEL, Loaded, LoadOptions, load, map_oom
from vip_model.streaming import CancelCriteria, Detokenizer, TokenClock, TokenQueue
from vip_model.templates import get_template
from vip_model.tokens import encode_pieces


def model_input_image(image: Image.Image, prompts: Sequence[Prompt] = ()) -> Image.Image:
    """The picture handed to the processor: prompts drawn at full resolution, padded square."""
    return overlays.pad_to_square(overlays.render(image, prompts))


@dataclass
class _Prepared:
    request: Request
    input_ids: list[int]
    image_end: int  # index just after the last image token: a reusable cache covers it
    key: str | None
    pixels: torch.Tensor | None = None


@dataclass
class _Generated:
    ids: list[int]
    prompt_tokens: int
    cached_tokens: int
    clock: TokenClock
    cancelled: bool
    finished_at: float = field(default_factory=time.perf_counter)


class HFEngine:
    """ViP-LLaVA through transformers, loaded once and kept resident. Thread-safe: requests
    from several threads are served one ``generate`` at a time (use :meth:`batch` to group)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "auto",
        dtype: str = "auto",
        load_4bit: bool = False,
        load_8bit: bool = False,
        attn_implementation: str | None = None,
        local_files_only: bool | None = None,
        cache_dir: str | None = None,
        prefix_cache: bool = True,
        max_batch_size: int = 8,
        max_pixels: int = overlays.MAX_PIXELS,
        static_cache: bool = False,
        lazy: bool = False,
    ) -> None:
        self.options = LoadOptions(
            model=model,
            device=device,
            dtype=dtype,
            load_4bit=load_4bit,
            load_8bit=load_8bit,
            attn_implementation=attn_implementation,
            local_files_only=local_files_only,
            cache_dir=cache_dir,
        )
        if max_batch_size < 1:
            raise InvalidRequest("max_batch_size must be at least 1")
        self.max_batch_size = max_batch_size
        self.max_pixels = max_pixels
        # A static KV cache has fixed shapes, so that on CUDA ``generate`` compiles the decoding
        # step (torch.compile). It is allocated per call and cannot be carried to the next turn:
        # the prefix cache is off with it.
        self.static_cache = static_cache
        self.prefix_cache = PrefixCache(1 if prefix_cache and not static_cache else 0)
        self._digests = DigestMemo()
        self._loaded: Loaded | None = None
        self._closed = False
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()
        if not lazy:
            self.load()

    # ------------------------------------------------------------------ lifecycle

    def load(self) -> float:
        """Load the model if it is not resident yet; returns the seconds this call spent."""
        if self._loaded is not None:
            return 0.0
        with self._load_lock:
            if self._closed:
                raise ModelError("this engine was closed: create a new one")
            if self._loaded is not None:
                return 0.0
            self._loaded = load(self.options)
            return self._loaded.load_s

    @property
    def loaded(self) -> Loaded:
        """The resident model and processor (loads them if needed)."""
        self.load()
        loaded = self._loaded
        if loaded is None:  # closed by another thread meanwhile
            raise ModelError("this engine was closed: create a new one")
        return loaded

    def close(self) -> None:
        with self._load_lock, self._gen_lock:
            self._closed = True
            self._loaded = None
            self.prefix_cache.clear()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __enter__(self) -> HFEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> EngineInfo:
        lo = self._loaded
        base = EngineInfo(
            engine="transformers",
            model=self.options.model,
            quantization=self.options.quantization,
            prefix_cache=self.prefix_cache.entries > 0,
            max_batch_size=self.max_batch_size,
        )
        if lo is None:
            return base
        return dataclasses.replace(
            base,
            loaded=True,
            device=lo.device,
            dtype=lo.dtype,
            quantization=lo.quantization,
            attn_implementation=lo.attn_implementation,
            load_s=lo.load_s,
            image_size=lo.image_size,
            image_tokens=lo.image_tokens,
            vision_feature_layer=lo.vision_feature_layer,
            config_corrected=lo.config_corrected,
        )

    # ------------------------------------------------------------------ public answering API

    def stream(self, request: Request, cancel: CancelToken | None = None) -> Streamed:
        """Start answering ``request``; iterate the result for text deltas, then ``.answer``.

        Loading and input checks happen now (their errors raise here); generation runs in a
        background thread as the result is iterated.
        """
        load_s = self.load()
        started = time.perf_counter()
        prep = self._prepare(request)
        cancel = cancel if cancel is not None else CancelToken()
        return Streamed(self._stream(prep, cancel, started, load_s), cancel)

    def ask(self, request: Request, cancel: CancelToken | None = None) -> Answer:
        """Answer ``request`` in the calling thread."""
        load_s = self.load()
        started = time.perf_counter()
        prep = self._prepare(request)
        gen = self._generate_one(prep, TokenClock(), (cancel,))
        detok = self._detokenizer(request)
        detok.feed(gen.ids)
        detok.finish()
        return self._answer(prep, gen, detok, started, load_s)

    def batch(self, requests: Sequence[Request], cancel: CancelToken | None = None) -> list[Answer]:
        """Answer ``requests`` with batched ``generate`` calls (left padding), up to
        ``max_batch_size`` at a time. Requests with different settings or stop strings go in
        different batches. The prefix cache is not used. Timings are those of the batch."""
        load_s = self.load()
        # Batches do not use the prefix cache: no need to hash their images for a key.
        preps = [self._prepare(r, keyed=False) for r in requests]
        groups: dict[tuple[GenerationSettings, tuple[str, ...]], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.settings, get_template(r.template).stop_strings), []).append(i)
        answers: list[Answer | None] = [None] * len(preps)
        for indices in groups.values():
            for at in range(0, len(indices), self.max_batch_size):
                chunk = indices[at : at + self.max_batch_size]
                chunk_started = time.perf_counter()
                for i, gen in zip(
                    chunk, self._generate_many([preps[i] for i in chunk], cancel), strict=True
                ):
                    detok = self._detokenizer(preps[i].request)
                    detok.feed(gen.ids)
                    detok.finish()
                    answers[i] = self._answer(preps[i], gen, detok, chunk_started, load_s)
                load_s = 0.0
        return [a for a in answers if a is not None]

    def input_ids(self, request: Request) -> list[int]:
        """The token ids the model reads for ``request`` (image placeholders expanded)."""
        return self._prepare(request).input_ids

    def pixel_values(self, request: Request) -> torch.Tensor:
        """The processor's output for the marked, padded image of ``request``: (1, 3, S, S)."""
        return self._pixel_values(self._prepare(request))

    # ------------------------------------------------------------------ preparation

    def _prepare(self, request: Request, keyed: bool = True) -> _Prepared:
        if not isinstance(request, Request):
            raise InvalidRequest(f"expected a Request, got {type(request).__name__}")
        w, h = request.image.size
        if w * h > self.max_pixels:
            raise ImageTooLarge(
                f"the image is {w}×{h} = {w * h / 1e6:.1f} MP, over the limit of "
                f"{self.max_pixels / 1e6:g} MP: downscale it"
            )
        lo = self.loaded
        tokenizer = lo.processor.tokenizer
        # Built here rather than by the processor: the original token layout whatever the
        # tokenizer's legacy flag, user text never read as control tokens (vip_model.tokens),
        # and a prefix-cache hit needs no image processing at all.
        image_id = lo.model.config.image_token_id
        pieces = request.conversation_template().pieces(request.history, request.question)
        ids = encode_pieces(tokenizer, pieces, image_id, lo.image_tokens)
        limit = lo.model.config.text_config.max_position_embeddings
        if len(ids) + request.settings.max_new_tokens > limit:
            raise InvalidRequest(
                f"the conversation is {len(ids)} tokens; with max_new_tokens "
                f"{request.settings.max_new_tokens} it exceeds the model's {limit}: "
                "start a new conversation or lower max_new_tokens"
            )
        image_end = max(i for i, t in enumerate(ids) if t == image_id) + 1
        key = (
            self._digests.digest(request.image, request.prompts)
            if keyed and self.prefix_cache.entries
            else None
        )
        return _Prepared(request=request, input_ids=ids, image_end=image_end, key=key)

    def _pixel_values(self, prep: _Prepared) -> torch.Tensor:
        if prep.pixels is None:
            image = model_input_image(prep.request.image, prep.request.prompts)
            processor = self.loaded.processor.image_processor
            prep.pixels = processor(images=image, return_tensors="pt")["pixel_values"]
        return prep.pixels

    def _generation_config(
        self, settings: GenerationSettings, stop_strings: tuple[str, ...]
    ) -> Any:
        lo = self.loaded
        tokenizer = lo.processor.tokenizer
        config = copy.deepcopy(lo.model.generation_config)
        config.update(
            max_new_tokens=settings.max_new_tokens,
            num_beams=settings.num_beams,
            repetition_penalty=settings.repetition_penalty,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            stop_strings=list(stop_strings) or None,
        )
        if self.static_cache:
            config.update(cache_implementation="static")
        if settings.greedy:
            # Neutral sampling values: transformers warns about them when do_sample is off.
            config.update(do_sample=False, temperature=1.0, top_p=1.0)
        else:
            config.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
        return config

    def _detokenizer(self, request: Request) -> Detokenizer:
        return Detokenizer(
            self.loaded.processor.tokenizer, get_template(request.template).stop_strings
        )

    # ------------------------------------------------------------------ generation

    def _stream(
        self, prep: _Prepared, cancel: CancelToken, started: float, load_s: float
    ) -> Generator[str, None, Answer]:
        abandoned = CancelToken()
        tokens = TokenQueue()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["gen"] = self._generate_one(prep, tokens, (cancel, abandoned))
            except BaseException as exc:
                box["error"] = exc
            finally:
                tokens.end()  # unblocks the consumer whatever happened

        thread = threading.Thread(target=work, name="vip-generate", daemon=True)
        thread.start()
        try:
            detok = self._detokenizer(prep.request)
            while (ids := tokens.queue.get()) is not None:
                if delta := detok.feed(ids):
                    yield delta
            thread.join()
            if "error" in box:
                raise box["error"]
            if delta := detok.finish():
                yield delta
            return self._answer(prep, box["gen"], detok, started, load_s)
        finally:
            if thread.is_alive():  # the consumer stopped early: stop generating, free the lock
                abandoned.cancel()
                thread.join()

    @torch.inference_mode()
    def _generate_one(
        self, prep: _Prepared, clock: TokenClock, cancels: Sequence[CancelToken | None]
    ) -> _Generated:
        lo = self.loaded
        settings = prep.request.settings
        reuse = prep.key is not None and settings.num_beams == 1
        # Image work outside the lock unless a cache entry will probably make it unnecessary.
        if not (reuse and prep.key in self.prefix_cache):
            self._pixel_values(prep)
        criteria = CancelCriteria(*cancels)
        with self._gen_lock:
            if criteria.cancelled:  # cancelled while waiting for the lock
                return _Generated([], len(prep.input_ids), 0, clock, True)
            hit = (
                self.prefix_cache.take(prep.key, prep.input_ids, prep.image_end)
                if reuse and prep.key
                else None
            )
            cache, cached = hit if hit is not None else (None, 0)
            kwargs: dict[str, Any] = {}
            if hit is None:
                kwargs["pixel_values"] = self._pixel_values(prep).to(
                    lo.model.device, getattr(torch, lo.dtype)
                )
                if reuse:
                    cache = DynamicCache(config=lo.model.config)
            input_ids = torch.tensor([prep.input_ids], device=lo.model.device)
            beams = settings.num_beams > 1
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            try:
                out = lo.model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    past_key_values=cache,
                    generation_config=self._generation_config(
                        settings, get_template(prep.request.template).stop_strings
                    ),
                    stopping_criteria=StoppingCriteriaList([criteria]),
                    streamer=None if beams else clock,  # transformers cannot stream beam search
                    tokenizer=lo.processor.tokenizer,
                    **kwargs,
                )
            except Exception as exc:
                oom = map_oom(exc, "generating")
                if oom is None:
                    raise
                raise oom from None
            sequence: list[int] = out[0].tolist()
            if reuse and cache is not None:
                self.prefix_cache.put(prep.key or "", cache, sequence)
        generated = sequence[len(prep.input_ids) :]
        if beams:
            clock.put(input_ids.cpu())
            clock.put(torch.tensor(generated))
            clock.end()
        return _Generated(generated, len(prep.input_ids), cached, clock, criteria.cancelled)

    @torch.inference_mode()
    def _generate_many(
        self, preps: Sequence[_Prepared], cancel: CancelToken | None
    ) -> list[_Generated]:
        lo = self.loaded
        settings = preps[0].request.settings
        tokenizer = lo.processor.tokenizer
        pixels = torch.cat([self._pixel_values(p) for p in preps])
        width = max(len(p.input_ids) for p in preps)
        input_ids = torch.full((len(preps), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(preps), width), dtype=torch.long)
        for row, p in enumerate(preps):  # left padding: every prompt ends where generation starts
            input_ids[row, width - len(p.input_ids) :] = torch.tensor(p.input_ids)
            mask[row, width - len(p.input_ids) :] = 1
        clock = TokenClock()
        criteria = CancelCriteria(cancel)
        with self._gen_lock:
            if criteria.cancelled:
                return [_Generated([], len(p.input_ids), 0, clock, True) for p in preps]
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            try:
                out = lo.model.generate(
                    input_ids=input_ids.to(lo.model.device),
                    attention_mask=mask.to(lo.model.device),
                    pixel_values=pixels.to(lo.model.device, getattr(torch, lo.dtype)),
                    generation_config=self._generation_config(
                        settings, get_template(preps[0].request.template).stop_strings
                    ),
                    stopping_criteria=StoppingCriteriaList([criteria]),
                    streamer=clock if settings.num_beams == 1 else None,
                    tokenizer=tokenizer,
                )
            except Exception as exc:
                oom = map_oom(exc, "generating a batch")
                if oom is None:
                    raise
                raise oom from None
        results = []
        for row, p in enumerate(preps):
            ids = _trim(out[row, width:].tolist(), tokenizer.eos_token_id, tokenizer.pad_token_id)
            results.append(_Generated(ids, len(p.input_ids), 0, clock, criteria.cancelled))
        return results

    def _answer(
        self, prep: _Prepared, gen: _Generated, detok: Detokenizer, started: float, load_s: float
    ) -> Answer:
        eos = self.loaded.processor.tokenizer.eos_token_id
        settings = prep.request.settings
        reason: FinishReason
        if detok.hit_stop_string or (gen.ids and gen.ids[-1] == eos):
            reason = "stop"
        elif len(gen.ids) >= settings.max_new_tokens:
            reason = "length"
        elif gen.cancelled:
            reason = "cancelled"
        else:
            reason = "stop"
        total = gen.finished_at - started
        first = gen.clock.first_at
        return Answer(
            text=detok.text,
            finish_reason=reason,
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=len(gen.ids),
            cached_tokens=gen.cached_tokens,
            timings=Timings(
                load_s=load_s,
                ttft_s=(first - started) if first is not None else total,
                total_s=total,
                tokens_per_s=gen.clock.decode_rate(len(gen.ids)),
            ),
            model=self.options.model,
        )


def _trim(ids: list[int], eos: int, pad: int) -> list[int]:
    """A batch row's generated ids: up to and including the first eos, without end padding."""
    if eos in ids:
        return ids[: ids.index(eos) + 1]
    while ids and ids[-1] == pad:
        ids = ids[:-1]
    return ids


__all__ = ["HFEngine", "model_input_image"]

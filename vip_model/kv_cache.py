"""Reusing the KV cache of a conversation's prefix across turns on the same marked image.

A follow-up question on the same image repeats everything before it: the system text, the
576 image tokens, the earlier turns. Their keys and values depend only on those tokens and on the
image's pixel values, so the cache of the previous turn, cropped to the longest token prefix
it shares with the new prompt, is exactly what a from-scratch run would compute first.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Sequence

from PIL import Image
from transformers import DynamicCache

import overlays
from overlays import Prompt


def image_digest(image: Image.Image, prompts: Sequence[Prompt]) -> str:
    """Identity of a marked image: its pixels and its prompts (what the image tokens encode)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    h.update(overlays.dumps(prompts).encode())
    return h.hexdigest()


class DigestMemo:
    """The digest of the last image seen, remembered for as long as that very object lives.

    Hashing a 12 MP photo takes ~80 ms, more than a follow-up turn's prefill on a GPU; the
    turns of one conversation share one image object (``Request.follow_up``), so it is hashed
    once. The price: an image must not be drawn on after a request was made from it.
    """

    def __init__(self) -> None:
        self._last: tuple[weakref.ref[Image.Image], str, str] | None = None

    def digest(self, image: Image.Image, prompts: Sequence[Prompt]) -> str:
        prompts_json = overlays.dumps(prompts)
        last = self._last
        if last is not None and last[0]() is image and last[1] == prompts_json:
            return last[2]
        digest = image_digest(image, prompts)
        self._last = (weakref.ref(image), prompts_json, digest)
        return digest


class PrefixCache:
    """KV caches of the last conversations, keyed by :func:`image_digest`.

    An entry holds a ``DynamicCache`` and the token ids it covers. :meth:`take` removes the
    entry and crops its cache to the longest common prefix with the new ids: ``generate``
    extends it in place and :meth:`put` stores it back, so no copy is ever made. Not
    thread-safe: the engine calls it under its generation lock.
    """

    def __init__(self, entries: int = 1) -> None:
        self.entries = entries
        self._store: OrderedDict[str, tuple[DynamicCache, list[int]]] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._store

    def take(
        self, key: str, ids: Sequence[int], must_cover: int
    ) -> tuple[DynamicCache, int] | None:
        """The cache cropped to the prefix it shares with ``ids`` (at least ``must_cover``
        tokens, and never all of ``ids``: the last one must be computed), else None."""
        entry = self._store.pop(key, None)
        if entry is None:
            return None
        cache, cached_ids = entry
        common = 0
        for a, b in zip(cached_ids, ids, strict=False):
            if a != b:
                break
            common += 1
        keep = min(common, len(ids) - 1, cache.get_seq_length())
        if keep < must_cover:
            return None
        excess = cache.get_seq_length() - keep
        if excess:
            cache.crop(-excess)
        return cache, keep

    def put(self, key: str, cache: DynamicCache, ids: list[int]) -> None:
        if self.entries <= 0:
            return
        self._store[key] = (cache, ids[: cache.get_seq_length()])
        self._store.move_to_end(key)
        while len(self._store) > self.entries:
            self._store.popitem(last=False)

    def clear(self) -> None:
        self._store.clear()


__all__ = ["DigestMemo", "PrefixCache", "image_digest"]

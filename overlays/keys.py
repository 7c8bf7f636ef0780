"""The one check of a JSON object's keys (STYLE.md habit 7: unknown keys are an error, a typo
must never be dropped silently). Shared by prompt documents (here), engine requests and settings
(``vip_model``) and the desktop app's settings; each caller passes its own error class so the
message reaches the user through that layer's usual path.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

#: At most this many offending names are quoted, each cut to ``_NAME_CHARS``: the keys may come
#: from a hostile request, and the message must stay one readable line.
_SHOWN = 5
_NAME_CHARS = 40


def expect_keys(
    data: Any,
    allowed: Collection[str],
    what: str,
    *,
    required: Collection[str] = (),
    error: type[Exception] = ValueError,
) -> dict[str, Any]:
    """``data`` itself if it is a dict whose keys are all ``allowed`` and include ``required``.

    Otherwise raises ``error`` with one line naming ``what``, the offending keys and the allowed
    ones, e.g. ``settings: unknown key(s) 'top_k'; allowed: max_new_tokens, seed``.
    """
    if not isinstance(data, dict):
        raise error(f"{what} must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed), key=str)
    if unknown:
        raise error(
            f"{what}: unknown key(s) {_names(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    missing = sorted(set(required) - set(data))
    if missing:
        raise error(f"{what}: missing key(s) {_names(missing)}")
    return data


def _names(keys: list[Any]) -> str:
    shown = [repr(_short(str(k))) for k in keys[:_SHOWN]]
    if len(keys) > _SHOWN:
        shown.append(f"and {len(keys) - _SHOWN} more")
    return ", ".join(shown)


def _short(name: str) -> str:
    return name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1] + "…"

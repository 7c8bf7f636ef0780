"""The one unknown-keys check (``overlays.keys.expect_keys``), shared by every typed dict we read:
one message shape, whichever layer reads the dict, raised as that layer's own error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import overlays as ov
from app.gui.settings import Settings, SettingsError
from vip_model.engine import GenerationSettings
from vip_model.errors import InvalidRequest


def _read_prompts(data: dict[str, Any]) -> object:
    return ov.prompt_from_dict({"kind": "point", "center": [1, 2], **data})


@pytest.mark.parametrize(
    ("read", "error", "what"),
    [
        (_read_prompts, ov.InvalidPrompt, "point prompt"),
        (GenerationSettings.from_dict, InvalidRequest, "settings"),
        (lambda d: GenerationSettings().replace(**d), InvalidRequest, "settings"),
        (Settings.from_dict, SettingsError, "settings"),
    ],
    ids=["prompt document", "engine settings", "engine settings replace", "desktop settings"],
)
def test_every_reader_names_the_unknown_key_and_the_allowed_ones(
    read: Callable[[dict[str, Any]], object], error: type[Exception], what: str
) -> None:
    with pytest.raises(error) as info:
        read({"zz_typo": 1, "x" * 100: 2})
    message = str(info.value)
    assert message.startswith(f"{what}: unknown key(s) 'xxx"), message
    assert "…', 'zz_typo'; allowed: " in message  # a hostile name is cut short, never echoed whole
    assert "\n" not in message and len(message) < 400

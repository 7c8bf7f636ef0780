"""Colours and stroke styles of visual prompts, and the training-distribution style sampler."""

from __future__ import annotations

import numbers
import random
from dataclasses import dataclass
from typing import Final

from overlays.errors import InvalidPrompt

RGB = tuple[int, int, int]

#: The named colours ViP-LLaVA was trained with, in the order the original generator lists them.
PALETTE: Final[dict[str, RGB]] = {
    "red": (255, 0, 0),
    "lime": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "fuchsia": (255, 0, 255),
    "aqua": (0, 255, 255),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
    "gold": (255, 215, 0),
}
_NAME_OF: Final[dict[RGB, str]] = {rgb: name for name, rgb in PALETTE.items()}

#: The side of the model's square input; widths are given in units of this scale.
MODEL_SIDE: Final[int] = 336

#: The CLI/eval "constant" style: red, alpha 128, width 3 (docs/VIP_FACTS.md §1).
DEFAULT_ALPHA: Final[int] = 128
DEFAULT_WIDTH: Final[float] = 3.0
#: The widest stroke, in model units (training drew 1..12; the desktop app offers up to 64).
#: A mask contour of width w is a (2w·s+1)² dilation: unbounded, one request could exhaust memory.
MAX_WIDTH: Final[float] = 64.0


def parse_color(value: str | RGB | list[int]) -> str | RGB:
    """Normalise a colour: a palette name, ``"R,G,B"``, ``"#rrggbb"`` or an RGB triple.

    Returns the palette name when the colour is one of the palette's, else an RGB tuple.
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PALETTE:
            return text
        try:
            if text.startswith("#") and len(text) == 7:
                rgb = (int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16))
            else:
                parts = [int(p) for p in text.split(",")]
                if len(parts) != 3:
                    raise ValueError
                rgb = (parts[0], parts[1], parts[2])
        except ValueError:
            names = ", ".join(PALETTE)
            raise InvalidPrompt(
                f"unknown colour {value!r}: use a palette name ({names}), R,G,B or #rrggbb"
            ) from None
    else:
        try:
            parts = list(value)
        except TypeError:
            raise InvalidPrompt(
                f"colour {value!r} must be a palette name, R,G,B or #rrggbb"
            ) from None
        if len(parts) != 3:
            raise InvalidPrompt(f"colour {value!r} must have exactly three components R,G,B")
        # numpy integers (a pixel read from an array) are integers too.
        if not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in parts):
            raise InvalidPrompt(f"colour {value!r}: each component must be an integer 0..255")
        rgb = (int(parts[0]), int(parts[1]), int(parts[2]))
    if not all(0 <= c <= 255 for c in rgb):
        raise InvalidPrompt(f"colour {value!r}: each component must be an integer 0..255")
    return _NAME_OF.get(rgb, rgb)


@dataclass(frozen=True)
class Style:
    """How a prompt is painted.

    ``width`` is in model units: the pixel width is ``max(int(width * s), 1)`` with
    ``s = max(W, H) / 336``, so a mark looks the same to the model at any resolution.
    """

    color: str | RGB = "red"
    alpha: int = DEFAULT_ALPHA
    width: float = DEFAULT_WIDTH

    def __post_init__(self) -> None:
        color = parse_color(self.color)
        object.__setattr__(self, "color", color)
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Integral):
            raise InvalidPrompt(f"alpha {self.alpha!r} must be an integer 0..255")
        if not 0 <= self.alpha <= 255:
            raise InvalidPrompt(f"alpha {self.alpha} is out of range: use 0..255 (default 128)")
        object.__setattr__(self, "alpha", int(self.alpha))
        if isinstance(self.width, bool) or not isinstance(self.width, numbers.Real):
            raise InvalidPrompt(
                f"width {self.width!r} must be a positive finite number (default 3)"
            )
        width = float(self.width)
        if not width > 0 or width != width or width == float("inf"):
            raise InvalidPrompt(
                f"width {self.width!r} must be a positive finite number (default 3)"
            )
        if width > MAX_WIDTH:
            raise InvalidPrompt(
                f"width {width:g} is more than {MAX_WIDTH:g}: widths are in model units, "
                f"1/{MODEL_SIDE} of the image's longer side (default 3)"
            )
        object.__setattr__(self, "width", width)

    @property
    def rgb(self) -> RGB:
        return PALETTE[self.color] if isinstance(self.color, str) else self.color

    @property
    def color_name(self) -> str | None:
        """The palette name, or None for an unnamed colour (then phrases name no colour)."""
        return self.color if isinstance(self.color, str) else None

    @property
    def rgba(self) -> tuple[int, int, int, int]:
        return (*self.rgb, self.alpha)

    def with_color(self, color: str | RGB) -> Style:
        return Style(color=color, alpha=self.alpha, width=self.width)


def scale_of(image_size: tuple[int, int]) -> float:
    """The scale factor ``s = max(W, H) / 336`` of an image."""
    return max(image_size) / MODEL_SIDE


def pixels(units: float, scale: float) -> int:
    """Model units to whole pixels, as the original code did: ``max(int(units * s), 1)``."""
    return max(int(units * scale), 1)


# Training ranges per kind, in model units (docs/VIP_FACTS.md §1). Point: radius; others: width.
TRAINING_WIDTHS: Final[dict[str, tuple[float, float]]] = {
    "rectangle": (2, 8),
    "ellipse": (2, 8),
    "triangle": (2, 8),
    "point": (5, 20),
    "scribble": (2, 12),
    "mask": (0, 2),
    "contour": (1, 2),
    "arrow": (1, 6),
}


def sample_style(kind: str, rng: random.Random, named_fraction: float = 0.5) -> Style:
    """A style drawn from the training distribution of ``kind``.

    Half the time (``named_fraction``) a palette colour, else a random RGB that phrases will not
    name. Alpha is ``randint(96, 255)`` for outlines and ``randint(48, 128)`` for filled masks.
    Widths are uniform over the training range in model units.
    """
    if kind not in TRAINING_WIDTHS:
        raise InvalidPrompt(
            f"unknown prompt kind {kind!r}: use one of {', '.join(TRAINING_WIDTHS)}"
        )
    if rng.random() < named_fraction:
        color: str | RGB = rng.choice(list(PALETTE))
    else:
        color = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
    alpha = rng.randint(48, 128) if kind == "mask" else rng.randint(96, 255)
    low, high = TRAINING_WIDTHS[kind]
    width = max(rng.uniform(low, high), 1.0)
    return Style(color=color, alpha=alpha, width=width)

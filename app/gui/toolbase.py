"""What every tool shares: the context of an event, the edits a tool returns, the base class.
Qt-free (see :mod:`app.gui.tools`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import overlays as ov
from app.gui import geometry as geo

Pt = tuple[float, float]


@dataclass(frozen=True)
class ToolContext:
    """What a tool needs to know about the canvas at the time of an event."""

    image_size: tuple[int, int]
    style: ov.Style
    prompts: Sequence[ov.Prompt] = ()
    selected: int | None = None
    #: Image pixels that correspond to a few screen pixels at the current zoom.
    tolerance: float = 4.0
    point_radius: float = 8.0
    brush_radius: float = 10.0
    #: "Add to mask": brush strokes join the selected mask even away from it.
    add_to_mask: bool = False
    #: Every selected index (``selected`` is the current one among them).
    selection: tuple[int, ...] = ()
    #: Shift is held: moves go straight, boxes are squares, arrows turn by 45°.
    constrain: bool = False
    #: Ctrl or Shift is held at a press: a click adds to the selection or takes out of it.
    toggle: bool = False

    def selected_indices(self) -> tuple[int, ...]:
        if self.selection:
            return self.selection
        return () if self.selected is None else (self.selected,)


@dataclass(frozen=True)
class Edit:
    """A finished action: add a prompt, replace prompt ``index`` (``text`` names the edit on
    the undo stack), select ``index``, select ``indices`` (``index`` the current one), toggle
    ``index`` in the selection, replace several prompts in one step (``prompts``), or say why
    nothing was done (``notice``, in ``text``)."""

    op: Literal[
        "add", "replace", "select", "select_many", "toggle", "replace_many", "notice", "assist"
    ]
    prompt: ov.Prompt | None = None
    index: int | None = None
    text: str = ""
    indices: tuple[int, ...] = ()
    prompts: tuple[tuple[int, ov.Prompt], ...] = ()


@dataclass
class Tool:
    """Base tool: does nothing. ``name`` is the id used by actions and shortcuts."""

    name: str = "none"
    preview: ov.Prompt | None = None
    guide: list[Pt] = field(default_factory=list)
    #: Index of the prompt being moved or resized (hidden from the composite meanwhile).
    editing: int | None = None
    #: The rubber band being dragged to select (x1, y1, x2, y2), image pixels.
    band: geo.Box | None = None

    @property
    def busy(self) -> bool:
        return (
            self.preview is not None
            or bool(self.guide)
            or self.editing is not None
            or self.band is not None
        )

    def moving(self) -> dict[int, ov.Prompt]:
        """The prompts being moved or reshaped as they are now, by index (hidden from the
        composite and drawn as vectors meanwhile)."""
        if self.editing is not None and self.preview is not None:
            return {self.editing: self.preview}
        return {}

    def press(self, ctx: ToolContext, pt: Pt, *, alt: bool = False) -> list[Edit]:
        return []

    def move(self, ctx: ToolContext, pt: Pt, *, dragging: bool) -> list[Edit]:
        return []

    def release(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        return []

    def double_click(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        return []

    def finish(self, ctx: ToolContext) -> list[Edit]:
        """Enter: close what is in progress (polygons)."""
        return []

    def cancel(self) -> None:
        """Esc: drop what is in progress."""
        self.preview = None
        self.guide = []
        self.editing = None
        self.band = None

    def undo_vertex(self, ctx: ToolContext) -> None:
        """Backspace: remove the last placed vertex."""
        if self.guide:
            self.guide.pop()
            self.preview = None


def attempt(build: Callable[[], ov.Prompt]) -> ov.Prompt | None:
    """The prompt ``build`` makes, or None when it would be degenerate."""
    try:
        return build()
    except ov.InvalidPrompt:
        return None

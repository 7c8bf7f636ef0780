"""The select tool: select (click, Ctrl/Shift+click, rubber band), move one prompt or a group,
resize by a box handle, and edit vertices (drag, add on an edge, delete). Qt-free.

Shift during a drag constrains it: a move or a vertex goes straight (horizontal or vertical).
The person's gestures map to edits here; the canvas turns them into undo commands (one per
gesture: a whole drag is one step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import overlays as ov
from app.gui import geometry as geo
from app.gui import vertices as vx
from app.gui.toolbase import Edit, Pt, Tool, ToolContext, attempt

Mode = Literal["", "move", "handle", "vertex", "band"]


@dataclass
class SelectTool(Tool):
    """Click to select; drag a selected prompt to move it (all of a multi-selection move
    together), drag a box handle to resize, drag a vertex handle to move that vertex."""

    mode: Mode = ""
    origin: Pt | None = None
    handle: str | None = None
    start: ov.Prompt | None = None
    #: (prompt index, vertex) of the vertex last pressed: Delete/Backspace removes it.
    vertex: tuple[int, vx.Vertex] | None = None
    #: Group move: each prompt as the drag started, and as it is now.
    starts: dict[int, ov.Prompt] = field(default_factory=dict)
    moved: dict[int, ov.Prompt] = field(default_factory=dict)
    #: A rubber band started with Ctrl/Shift adds to the selection it started with.
    additive: bool = False
    kept: tuple[int, ...] = ()
    #: A selected prompt Ctrl/Shift+clicked: it leaves the selection if no drag follows.
    pending: int | None = None
    #: A shape of a multi-selection pressed without Ctrl/Shift: alone selected if not dragged.
    solo: int | None = None

    def moving(self) -> dict[int, ov.Prompt]:
        return dict(self.moved) if self.moved else super().moving()

    # -- press ------------------------------------------------------------------------------

    def press(self, ctx: ToolContext, pt: Pt, *, alt: bool = False) -> list[Edit]:
        self._reset()
        self.origin = pt
        current = (
            ctx.selected if ctx.selected is not None and ctx.selected < len(ctx.prompts) else None
        )
        # Ctrl+click toggles even on a handle; Shift+press on a handle grabs it (constrained).
        if current is not None and (ctx.constrain or not ctx.toggle):
            prompt = ctx.prompts[current]
            if alt and vx.has_vertices(prompt):  # Alt+click on an edge adds a vertex there
                edits = self.add_vertex(ctx, pt)
                if edits:
                    return edits
            reach = ctx.tolerance * 1.5
            vertex = vx.vertex_at(prompt, pt, reach) if vx.has_vertices(prompt) else None
            if vertex is not None:
                self.mode, self.vertex = "vertex", (current, vertex)
                self.editing, self.start = current, prompt
                return []
            handle = geo.handle_at(prompt, pt, reach)
            if handle is not None:
                self.mode, self.handle = "handle", handle
                self.editing, self.start = current, prompt
                return []
        self.vertex = None
        index = geo.hit_test(ctx.prompts, pt, ctx.tolerance, ctx.image_size)
        selection = ctx.selected_indices()
        if ctx.toggle:
            if index is None:
                self.mode, self.additive, self.kept = "band", True, selection
                return []
            # Ctrl/Shift+click: a shape not selected joins at once; a selected one leaves on
            # release unless the press became a drag (a Shift-constrained group move).
            group = selection if index in selection else (*selection, index)
            self.mode, self.pending = "move", index if index in selection else None
            self.starts = {i: ctx.prompts[i] for i in group if i < len(ctx.prompts)}
            return [] if index in selection else [Edit("toggle", index=index)]
        if index is None:
            self.mode = "band"
            return [Edit("select", index=None)] if selection else []
        self.mode = "move"
        if index in selection and len(selection) > 1:
            self.starts = {i: ctx.prompts[i] for i in selection if i < len(ctx.prompts)}
            self.solo = index  # a click with no drag selects it alone, on release
            return [Edit("select_many", index=index, indices=selection)]
        self.editing, self.start = index, ctx.prompts[index]
        return (
            [] if index == ctx.selected and len(selection) == 1 else [Edit("select", index=index)]
        )

    # -- drag -------------------------------------------------------------------------------

    def move(self, ctx: ToolContext, pt: Pt, *, dragging: bool) -> list[Edit]:
        if not dragging or self.origin is None:
            return []
        if self.mode == "band":
            self.band = geo.box_from_drag(self.origin, pt)
            return []
        if self.mode == "vertex" and self.start is not None and self.vertex is not None:
            vertex = self.vertex[1]
            at = vx.point_of(self.start, vertex)
            target = vx.axis_lock(at, pt) if ctx.constrain and at is not None else pt
            target = geo.clamp(target, ctx.image_size)
            self.preview = vx.move(self.start, vertex, target) or self.preview
            return []
        if self.mode == "handle" and self.start is not None and self.handle is not None:
            self.preview = geo.drag_handle(self.start, self.handle, pt) or self.preview
            return []
        if self.mode == "move":
            end = vx.axis_lock(self.origin, pt) if ctx.constrain else pt
            dx, dy = end[0] - self.origin[0], end[1] - self.origin[1]
            if self.starts:
                moved = {i: _translated(p, dx, dy) for i, p in self.starts.items()}
                if all(p is not None for p in moved.values()):
                    self.moved = {i: p for i, p in moved.items() if p is not None}
            elif self.start is not None:
                start = self.start
                self.preview = attempt(lambda: geo.translate(start, dx, dy)) or self.preview
        return []

    def release(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        mode, band, additive, kept = self.mode, self.band, self.additive, self.kept
        moved, preview, index = dict(self.moved), self.preview, self.editing
        pending, solo = self.pending, self.solo
        self._reset()
        if mode == "band":
            if band is None:
                return []
            inside = tuple(i for i, p in enumerate(ctx.prompts) if _within(geo.bounds(p), band))
            if additive:
                inside = tuple(sorted({*kept, *inside}))
            return [Edit("select_many", indices=inside)]
        n = len(ctx.prompts)  # an undo during the drag may have taken prompts away
        if moved:
            changed = tuple((i, p) for i, p in moved.items() if i < n and p != ctx.prompts[i])
            return [Edit("replace_many", prompts=changed, text="move")] if changed else []
        if pending is not None:
            return [Edit("toggle", index=pending)]
        if solo is not None:
            return [Edit("select", index=solo)]
        if preview is None or index is None or index >= n or preview == ctx.prompts[index]:
            return []
        text = {"vertex": "move point", "handle": "resize"}.get(mode, "move")
        return [Edit("replace", preview, index, text=text)]

    def double_click(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        """Double-click on an edge of the selected prompt adds a vertex there."""
        return self.add_vertex(ctx, pt)

    def cancel(self) -> None:
        super().cancel()
        self._reset()
        self.vertex = None

    def _reset(self) -> None:
        self.preview, self.editing, self.band = None, None, None
        self.mode, self.origin, self.handle, self.start = "", None, None, None
        self.starts, self.moved, self.additive, self.kept = {}, {}, False, ()
        self.pending, self.solo = None, None

    # -- vertices ---------------------------------------------------------------------------

    def add_vertex(self, ctx: ToolContext, pt: Pt) -> list[Edit]:
        """A new vertex on the selected prompt's edge nearest ``pt`` (within reach)."""
        index = ctx.selected
        if index is None or index >= len(ctx.prompts):
            return []
        prompt = ctx.prompts[index]
        found = vx.edge_at(prompt, pt, ctx.tolerance * 1.5) if vx.has_vertices(prompt) else None
        if found is None:
            return []
        vertex, foot = found
        try:
            updated = vx.insert(prompt, vertex, foot)
        except vx.VertexLimit as exc:
            return [Edit("notice", text=str(exc))]
        self.vertex = (index, vertex)
        return [Edit("replace", updated, index, text="add point")]

    def selected_vertex(self, ctx: ToolContext) -> tuple[int, vx.Vertex] | None:
        """The vertex Delete would remove, if it still exists on the current prompt."""
        if self.vertex is None:
            return None
        index, vertex = self.vertex
        if index != ctx.selected or index >= len(ctx.prompts):
            return None
        return self.vertex if vx.point_of(ctx.prompts[index], vertex) is not None else None

    def delete_vertex(self, ctx: ToolContext) -> list[Edit]:
        """Delete/Backspace: remove the selected vertex (refused below the kind's minimum)."""
        chosen = self.selected_vertex(ctx)
        if chosen is None:
            return []
        index, vertex = chosen
        try:
            updated = vx.delete(ctx.prompts[index], vertex)
        except vx.VertexLimit as exc:
            return [Edit("notice", text=str(exc))]
        self.vertex = None
        return [Edit("replace", updated, index, text="delete point")]

    def pick_vertex(self, ctx: ToolContext, pt: Pt) -> tuple[int, vx.Vertex] | None:
        """Select the vertex of the current prompt under ``pt`` (right-click menu)."""
        index = ctx.selected
        if index is None or index >= len(ctx.prompts):
            return None
        vertex = vx.vertex_at(ctx.prompts[index], pt, ctx.tolerance * 1.5)
        self.vertex = (index, vertex) if vertex is not None else None
        return self.vertex


def _translated(prompt: ov.Prompt, dx: float, dy: float) -> ov.Prompt | None:
    try:
        return geo.translate(prompt, dx, dy)
    except ov.InvalidPrompt:
        return None


def _within(box: geo.Box, band: geo.Box) -> bool:
    return band[0] <= box[0] and band[1] <= box[1] and box[2] <= band[2] and box[3] <= band[3]

"""The checked, not yet written, content of an import, and the checks every format shares.

An entry that fails a check raises :class:`InvalidEntry`; the format parser records it in
:attr:`ImportPlan.invalid` with where it is and goes on. Nothing here touches the log.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from PIL import Image
from shapely.geometry import Polygon

import overlays as ov
from data_gen.errors import ImportFailed
from data_gen.qalog.log import file_sha256
from overlays import Prompt, Region, RegionRef


@dataclass(frozen=True)
class PlannedRegion:
    region: Region
    label: str | None
    external_id: str | None


@dataclass(frozen=True)
class PlannedTurn:
    question: str
    answer: str
    refs: tuple[RegionRef, ...]


@dataclass
class PlannedConversation:
    external_id: str
    regions: list[PlannedRegion]
    prompts: tuple[Prompt, ...]
    turns: list[PlannedTurn]


@dataclass
class PlannedImage:
    """An image to register. ``data``: the bytes of an image embedded in the annotation file
    (LabelMe ``imageData``), written to the log's ``imported-images`` folder on commit."""

    path: Path
    size: tuple[int, int]
    sha256: str
    regions: list[PlannedRegion] = field(default_factory=list)
    conversations: list[PlannedConversation] = field(default_factory=list)
    data: bytes | None = None
    extension: str = ""


@dataclass
class ImportPlan:
    """A checked import, ready to commit: what to write and what was refused."""

    format: str
    file: Path
    sha256: str
    images: dict[str, PlannedImage] = field(default_factory=dict)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (where, why)
    notes: list[tuple[str, str]] = field(default_factory=list)  # imported, with a change
    warnings: list[tuple[str, str]] = field(default_factory=list)  # imported, worth a look
    ignored: int = 0  # LabelMe shapes labelled __ignore__, left out as labelme2coco does
    strict: bool = False  # what would be a warning is an invalid entry

    @property
    def region_count(self) -> int:
        own = sum(len(i.regions) for i in self.images.values())
        return own + sum(len(c.regions) for i in self.images.values() for c in i.conversations)

    @property
    def turn_count(self) -> int:
        return sum(len(c.turns) for i in self.images.values() for c in i.conversations)


@dataclass
class ImportReport:
    """What an import wrote (or would write, with ``dry_run``) and what it refused."""

    format: str
    file: str
    import_id: int | None
    images: int
    sessions: int
    regions: int
    turns: int
    invalid: list[tuple[str, str]]
    notes: list[tuple[str, str]]
    dry_run: bool = False
    warnings: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0

    def lines(self, limit: int = 20) -> list[str]:
        verb = "would import" if self.dry_run else "imported"
        head = f"{verb} {self.regions} regions"
        if self.turns:
            head += f" and {self.turns} turns"
        head += f" on {self.images} images from {self.file} ({self.format})"
        if self.import_id is not None:
            head += f" as import #{self.import_id}"
        out = [head]
        if self.invalid:
            out.append(f"  {len(self.invalid)} invalid entries skipped:")
            out += [f"    {where}: {why}" for where, why in self.invalid[:limit]]
            if len(self.invalid) > limit:
                out.append(f"    … and {len(self.invalid) - limit} more")
        if self.notes:
            out.append(f"  {len(self.notes)} entries imported with a change:")
            out += [f"    {where}: {why}" for where, why in self.notes[:limit]]
        if self.warnings:
            out.append(f"  warning: {len(self.warnings)} images imported from outside the folder:")
            out += [f"    {where}: {why}" for where, why in self.warnings[:limit]]
        if self.ignored:
            out.append(f"  {self.ignored} shapes labelled __ignore__ left out (as labelme2coco)")
        return out


class InvalidEntry(Exception):
    """One entry cannot be imported; the message says why."""


def number(value: Any, what: str) -> float:
    """A finite number, else :class:`InvalidEntry`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidEntry(f"{what} must be a finite number, got {value!r}")
    return float(value)


def ref_id(value: Any, what: str) -> int | str:
    """An id that other entries refer to: a number or a string (not a list, not an object)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidEntry(f"{what} must be a number or a string, got {value!r}")
    return value


def numbers(value: Any, count: int | None, what: str) -> list[float]:
    """A list of finite numbers (of length ``count`` when given)."""
    if not isinstance(value, list) or (count is not None and len(value) != count):
        size = f"{count} numbers" if count else "a list of numbers"
        raise InvalidEntry(f"{what} must be {size}, got {value!r}")
    return [number(v, what) for v in value]


def flat_rings(flat_polygons: Sequence[Sequence[float]], what: str) -> list[tuple[ov.Pt, ...]]:
    """Flat ``[x0, y0, x1, y1, …]`` polygons to point rings (3+ points each)."""
    if not isinstance(flat_polygons, list | tuple):
        raise InvalidEntry(f"{what} must be a list of flat polygons [[x0, y0, x1, y1, …]]")
    rings = []
    for i, flat in enumerate(flat_polygons):
        if not isinstance(flat, list | tuple):
            raise InvalidEntry(
                f"{what} polygon {i} must be a list [x0, y0, x1, y1, …], got {flat!r}"
            )
        values = numbers(list(flat), None, f"{what} polygon {i}")
        if len(values) < 6 or len(values) % 2:
            raise InvalidEntry(f"{what} polygon {i} needs an even count of 6+ numbers (3+ points)")
        rings.append(ov.points_from_flat(values))
    return rings


def repaired_rings(rings: Sequence[tuple[ov.Pt, ...]]) -> tuple[tuple[ov.Pt, ...], ...] | None:
    """Valid simple rings covering the same area (self-touching outlines are common)."""
    out: list[tuple[ov.Pt, ...]] = []
    for ring in rings:
        fixed = shapely.make_valid(Polygon(ring))
        parts = getattr(fixed, "geoms", [fixed])
        for part in parts:
            if isinstance(part, Polygon) and part.area > 0:
                out.append(tuple((float(x), float(y)) for x, y in part.exterior.coords[:-1]))
    return tuple(out) or None


def checked_region(
    box: Sequence[float] | None,
    rings: Sequence[tuple[ov.Pt, ...]] | None,
    size: tuple[int, int],
    notes: list[str],
) -> Region:
    """A region clipped to the image; a broken polygon is repaired, else the box is kept."""
    polygons: tuple[tuple[ov.Pt, ...], ...] | None = tuple(rings) if rings else None
    try:
        if box is None:
            if not polygons:
                raise InvalidEntry("no box and no polygon")
            region = Region.from_polygons(polygons)
        else:
            region = Region(box=tuple(box), polygons=polygons)  # type: ignore[arg-type]
    except ov.InvalidPrompt as exc:
        if not polygons or "polygon" not in str(exc):
            raise InvalidEntry(str(exc)) from None
        repaired = repaired_rings(polygons)
        try:
            if box is None:
                if repaired is None:
                    raise ov.InvalidPrompt("nothing left of the polygon")
                region = Region.from_polygons(repaired)
            else:
                region = Region(box=tuple(box), polygons=repaired)  # type: ignore[arg-type]
            notes.append("self-intersecting polygon repaired")
        except ov.InvalidPrompt:
            if box is None:
                raise InvalidEntry(f"{exc}; it could not be repaired") from None
            region = Region(box=tuple(box))  # type: ignore[arg-type]
            notes.append(f"polygon dropped ({exc}), box kept")
    try:
        fitted = ov.fit_region(region, size)
    except ov.PromptOutsideImage:
        raise InvalidEntry(
            f"box {fmt(region.box)} lies outside the {size[0]}×{size[1]} image"
        ) from None
    if fitted.box != region.box:
        notes.append(f"box {fmt(region.box)} clipped to the image")
    return fitted


def fmt(values: Iterable[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


class ImageFiles:
    """Image files checked once each: exists, decodes in full, within the pixel limit, of the
    declared size; hashed for the log. ``root`` is the annotation's folder: a path that leads
    out of it (absolute, or through ``..``) is a warning, or invalid with ``strict``."""

    def __init__(self, plan: ImportPlan, root: Path) -> None:
        self.plan = plan
        self.root = Path(os.path.abspath(root))
        self.refused: dict[Path, str] = {}

    def get(self, path: Path, declared: tuple[Any, Any] | None = None) -> PlannedImage:
        written = Path(os.path.normpath(os.path.abspath(path)))  # as written: no symlinks followed
        path = path.resolve()
        key = str(path)
        if key in self.plan.images:
            image = self.plan.images[key]
        elif path in self.refused:
            raise InvalidEntry(self.refused[path])
        else:
            try:
                self._outside(written)
                if not path.is_file():
                    what = "no such file" if not path.exists() else "not a regular file"
                    raise InvalidEntry(f"{path}: {what}")
                size = verified_size(path, path.name)
                sha = file_sha256(path)
            except OSError as exc:
                self.refused[path] = f"{path}: {exc.strerror or exc}"
                raise InvalidEntry(self.refused[path]) from None
            except InvalidEntry as exc:
                self.refused[path] = str(exc)
                raise
            image = PlannedImage(path, size, sha)
            self.plan.images[key] = image
        _check_declared(image, declared)
        return image

    def embedded(self, data: bytes, name: str, declared: tuple[Any, Any] | None) -> PlannedImage:
        """An image whose bytes are in the annotation file itself (LabelMe ``imageData``)."""
        sha = hashlib.sha256(data).hexdigest()
        key = f"embedded:{sha}"
        image = self.plan.images.get(key)
        if image is None:
            size = verified_size(data, f"{name} (imageData)")
            suffix = _suffix(data)
            image = PlannedImage(Path(name), size, sha, data=data, extension=suffix)
            self.plan.images[key] = image
        _check_declared(image, declared)
        return image

    def _outside(self, written: Path) -> None:
        if written.is_relative_to(self.root):
            return
        where = f"outside {self.root}, the folder of the annotations"
        if self.plan.strict:
            raise InvalidEntry(f"{written} is {where} (refused with --strict)")
        why = f"{where}: check the path (refused with --strict)"
        if (str(written), why) not in self.plan.warnings:
            self.plan.warnings.append((str(written), why))


def verified_size(data: Path | bytes, name: str) -> tuple[int, int]:
    """(W, H) after EXIF orientation of an image that decodes in full within the pixel limit:
    a truncated file or a decompression bomb is refused here, not found later by a trainer."""
    try:
        return ov.verify_image(data)
    except ov.ImageError as exc:
        raise InvalidEntry(str(exc).replace("the embedded image", name)) from None


def _suffix(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as im:
        kind = (im.format or "png").lower()
    return {"jpeg": ".jpg", "mpo": ".jpg", "tiff": ".tif"}.get(kind, f".{kind}")


def _check_declared(image: PlannedImage, declared: tuple[Any, Any] | None) -> None:
    if declared is not None and None not in declared and tuple(declared) != image.size:
        raise InvalidEntry(
            f"{image.path.name} is {image.size[0]}×{image.size[1]} (EXIF orientation applied) "
            f"but the file says {declared[0]}×{declared[1]}: its coordinates would not match"
        )


def load_json(path: Path) -> Any:
    """A whole JSON file; :class:`ImportFailed` when it cannot be read or parsed."""
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"{path}: not valid JSON ({exc})") from None

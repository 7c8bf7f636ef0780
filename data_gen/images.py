"""Images of an export: raw originals placed (copy, link or absolute path) and rendered images.

Every image is checked against what the log recorded: a file that is missing, does not decode
in full, or whose bytes are no longer the logged ones (sha256) is refused with a reason, and the
export goes on without it.
Photos with an EXIF orientation get an upright copy, because coordinates in the log refer to
the upright image and trainers open files without applying EXIF.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from PIL import Image

import overlays as ov

ImageMode = Literal["copy", "link", "absolute"]
IMAGE_MODES: tuple[str, ...] = ("copy", "link", "absolute")
RenderedFormat = Literal["auto", "png", "jpeg"]
RENDERED_FORMATS: tuple[str, ...] = ("auto", "png", "jpeg")
JPEG_QUALITY = 95


def save_jpeg(image: Image.Image, target: str | os.PathLike[str] | IO[bytes]) -> None:
    # Full-resolution chroma (4:4:4): the default 4:2:0 would blur the colour of thin marks.
    image.save(target, format="JPEG", quality=JPEG_QUALITY, subsampling=0)


class ImageRefused(Exception):
    """An image cannot be used for this sample; the message is the reason shown in the summary."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def safe_stem(path: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem).strip("._") or "image"
    return stem[:40]


def orientation(source: str | os.PathLike[str] | bytes) -> int:
    """The EXIF orientation tag (1 = upright) read from the header only."""
    with warnings.catch_warnings():  # the pixel limit is ours (overlays.MAX_PIXELS)
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return int(im.getexif().get(0x0112, 1) or 1)


@dataclass(frozen=True)
class CheckedImage:
    """An image file's bytes, verified to be the logged image, and its pixels when asked for."""

    data: bytes
    size: tuple[int, int]  # EXIF orientation applied
    orientation: int
    image: Image.Image | None  # RGB, upright


def checked_image(
    path: str, sha256: str, size: tuple[int, int], *, pixels: bool = False
) -> CheckedImage:
    """Read and decode ``path`` in full and check it still is the logged image.

    A damaged or oversized file is "image unreadable"; another size or other bytes than the
    logged ones (sha256) is "image changed since it was logged". Raises :class:`ImageRefused`,
    never anything else for a bad file. The RGB pixels are kept with ``pixels`` or when the
    file needs an upright copy (EXIF orientation).
    """
    source = Path(path)
    if not source.exists():
        raise ImageRefused("image unreadable", f"{path}: no such file")
    if not source.is_file():  # a FIFO would block the read forever
        raise ImageRefused("image unreadable", f"{path}: not a regular file")
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ImageRefused("image unreadable", f"{path}: {exc.strerror or exc}") from None
    try:
        # One full decode when pixels are needed, else the cheaper check of every byte.
        image = ov.load_image(data) if pixels else None
        actual = image.size if image is not None else ov.verify_image(data)
        turn = orientation(data)
        if image is None and turn != 1:
            image = ov.load_image(data)
    except ov.ImageError as exc:
        raise ImageRefused("image unreadable", f"{path}: {exc}") from None
    except Exception as exc:  # Pillow's plugins raise many kinds on hostile files
        raise ImageRefused("image unreadable", f"{path}: {exc}") from None
    if actual != tuple(size):
        raise ImageRefused(
            "image changed since it was logged",
            f"{path} is {actual[0]}×{actual[1]}, the log says {size[0]}×{size[1]}",
        )
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ImageRefused(
            "image changed since it was logged",
            f"{path}: its bytes are no longer the logged image's (sha256 differs)",
        )
    return CheckedImage(data, actual, turn, image)


@dataclass(frozen=True)
class Placed:
    """Where a sample's image is, as written in the dataset (relative to the output or absolute)."""

    path: str
    how: str  # "copied", "linked", "absolute", "upright copy", "rendered"


def concrete_format(path: str, fmt: RenderedFormat) -> Literal["png", "jpeg"]:
    """``auto``: JPEG for JPEG photos (no worse than the source), PNG for everything else."""
    if fmt == "auto":
        return "jpeg" if Path(path).suffix.lower() in (".jpg", ".jpeg") else "png"
    return fmt


def rendered_name(path: str, sha256: str, prompts_json: str, fmt: Literal["png", "jpeg"]) -> str:
    digest = hashlib.sha256(f"{sha256}\n{prompts_json}".encode()).hexdigest()[:16]
    return f"{safe_stem(path)}-{digest}.{'png' if fmt == 'png' else 'jpg'}"


class Job:
    """What a worker is given: an image to render, or an original to check and place."""


@dataclass(frozen=True)
class RenderJob(Job):
    """Draw ``prompts_json`` on ``source`` and save it at ``dest`` (what travels to a worker)."""

    source: str
    size: tuple[int, int]
    sha256: str
    prompts_json: str
    dest: str
    fmt: Literal["png", "jpeg"]
    want_bytes: bool = False


@dataclass(frozen=True)
class RenderResult:
    """What a worker did with a job: an error, or the image's bytes and/or where it was put."""

    error: tuple[str, str] | None = None  # (reason, detail)
    data: bytes | None = None
    placed: Placed | None = None


def render_one(job: RenderJob, decoded: dict[str, Any] | None = None) -> RenderResult:
    """Load, check, render and save one image. Never raises for a bad image.

    ``decoded`` keeps the last source decoded by this worker: the jobs of one conversation's
    augmented variants are consecutive and share their photo.
    """
    cache = decoded if decoded is not None else {}
    key = (job.source, job.sha256)
    if cache.get("key") != key:
        try:
            checked = checked_image(job.source, job.sha256, job.size, pixels=True)
            cache.update(key=key, image=checked.image, error=None)
        except ImageRefused as exc:
            cache.update(key=key, image=None, error=(exc.reason, exc.detail))
    if cache["image"] is None:
        return RenderResult(error=cache["error"])
    original = cache["image"]
    image = original.copy()  # rendering draws in place; the decoded original is reused
    try:
        ov.render(image, ov.loads(job.prompts_json), inplace=True)
    except ov.OverlayError as exc:
        return RenderResult(error=("prompt outside its image", f"{job.source}: {exc}"))
    buffer = io.BytesIO()
    if job.fmt == "png":
        image.save(buffer, format="PNG", compress_level=1)
    else:
        save_jpeg(image, buffer)
    data = buffer.getvalue()
    Path(job.dest).write_bytes(data)
    return RenderResult(data=data if job.want_bytes else None)


@dataclass(frozen=True)
class PlaceJob(Job):
    """Check an original image and place it under ``root/subdir`` (what travels to a worker);
    with ``want_bytes`` its bytes come back instead (formats that embed images)."""

    source: str
    size: tuple[int, int]
    sha256: str
    root: str
    subdir: str
    mode: ImageMode
    want_bytes: bool = False


def place_one(job: PlaceJob) -> RenderResult:
    """Check one original image in full, then copy, link or refer to it; a photo with an EXIF
    orientation gets an upright copy. Never raises for a bad image."""
    try:
        checked = checked_image(job.source, job.sha256, job.size)
        if job.want_bytes:
            placed = Placed(Path(job.source).name, "original embedded")
            return RenderResult(data=_upright_bytes(checked), placed=placed)
        return RenderResult(placed=_place(checked, job))
    except ImageRefused as exc:
        return RenderResult(error=(exc.reason, exc.detail))


def _upright_bytes(checked: CheckedImage) -> bytes:
    if checked.image is None:  # upright already
        return checked.data
    buffer = io.BytesIO()
    save_jpeg(checked.image, buffer)
    return buffer.getvalue()


def _place(checked: CheckedImage, job: PlaceJob) -> Placed:
    folder = Path(job.root) / job.subdir
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{safe_stem(job.source)}-{job.sha256[:12]}"
    if checked.image is not None:  # turned by its EXIF orientation: an upright copy
        target = folder / f"{name}.jpg"
        save_jpeg(checked.image, target)
        return Placed(f"{job.subdir}/{target.name}", "upright copy")
    if job.mode == "absolute":
        return Placed(str(Path(job.source).resolve()), "absolute")
    target = folder / f"{name}{Path(job.source).suffix.lower()}"
    try:
        if job.mode == "link":
            os.symlink(Path(job.source).resolve(), target)
        else:
            target.write_bytes(checked.data)  # the bytes just verified, not a second read
    except OSError as exc:
        raise ImageRefused("image unreadable", f"{job.source}: {exc.strerror or exc}") from None
    return Placed(f"{job.subdir}/{target.name}", "linked" if job.mode == "link" else "copied")


def render_batch(jobs: list[Job | None]) -> list[RenderResult | None]:
    """:func:`render_one` or :func:`place_one` over a chunk (the unit a worker receives)."""
    decoded: dict[str, Any] = {}
    out: list[RenderResult | None] = []
    for job in jobs:
        if job is None:
            out.append(None)
        elif isinstance(job, PlaceJob):
            out.append(place_one(job))
        else:
            assert isinstance(job, RenderJob)
            out.append(render_one(job, decoded))
    return out

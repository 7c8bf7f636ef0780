"""Named exceptions of the overlays package. Messages say what is wrong and how to fix it."""

from __future__ import annotations


class OverlayError(Exception):
    """Base class of every error raised by `overlays`."""


class InvalidPrompt(OverlayError, ValueError):
    """A visual prompt is malformed: degenerate, non-finite, or of an unknown form."""


class InvalidTrack(InvalidPrompt):
    """A track (a prompt through time) is malformed: mixed kinds, a bad frame index or format."""


class PromptOutsideImage(InvalidPrompt):
    """A visual prompt lies entirely outside the image it is drawn on."""


class ImageError(OverlayError):
    """Base class for images that cannot be used."""


class ImageUnreadable(ImageError):
    """The file is missing, not an image, or damaged."""


class ImageTooLarge(ImageError):
    """The image has more pixels than the configured limit."""


class VideoError(OverlayError):
    """Base class for videos that cannot be used."""


class VideoUnreadable(VideoError):
    """The file is missing, not a regular file, damaged, truncated or has no video stream."""


class VideoTooLarge(VideoError):
    """The video's frames have more pixels than the configured limit."""


class FrameOutOfRange(VideoError, ValueError):
    """A frame index or a time lies outside the clip."""

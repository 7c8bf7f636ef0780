"""Visual prompts as data and their rendering onto pixels, faithful to ViP-LLaVA's training.

Pure: no Qt, no torch. See ``CONTEXT.md`` for the vocabulary.
"""

from typing import TYPE_CHECKING, Any

from overlays.errors import (
    FrameOutOfRange,
    ImageError,
    ImageTooLarge,
    ImageUnreadable,
    InvalidPrompt,
    InvalidTrack,
    OverlayError,
    PromptOutsideImage,
    VideoError,
    VideoTooLarge,
    VideoUnreadable,
)
from overlays.fitting import (
    FAR_OUTSIDE,
    fit_region,
    fit_to_image,
)
from overlays.generate import generate, generate_sampled
from overlays.image_io import MAX_PIXELS, image_size, load_image, to_rgb, verify_image
from overlays.phrases import (
    SHAPE_WORDS,
    RegionRef,
    assign_distinct_colors,
    compose_question,
    distinct_colors,
    find_refs,
    mark_phrase,
    next_free_color,
    referring_phrase,
    rewrite_question,
)
from overlays.prompts import (
    KINDS,
    MAX_PROMPT_VERTICES,
    PROMPT_TYPES,
    Arrow,
    Box,
    Contour,
    Ellipse,
    Mask,
    Point,
    Prompt,
    Pt,
    Rectangle,
    Region,
    Scribble,
    Triangle,
    box_from_normalized,
    box_from_xywh,
    flat_from_points,
    points_from_flat,
    region_mask,
)
from overlays.render import (
    PAD_COLOR,
    Op,
    compile_prompt,
    model_view,
    pad_to_square,
    render,
    render_reference,
)
from overlays.serialize import SCHEMA, dumps, from_document, loads, prompt_from_dict, prompt_to_dict
from overlays.style import PALETTE, Style, parse_color, sample_style, scale_of
from overlays.tracks import TRACK_FORMAT, FrameSource, Track, interpolate
from overlays.video_names import VIDEO_SUFFIXES, is_video_path

if TYPE_CHECKING:
    from overlays.video_io import VideoInfo, VideoReader, sample_times, write_video

# The video names load PyAV (~80 ms) on first use, not with every `import overlays`.
_VIDEO_NAMES = frozenset({"VideoInfo", "VideoReader", "sample_times", "write_video"})


def __getattr__(name: str) -> Any:
    if name in _VIDEO_NAMES:
        from overlays import video_io

        return getattr(video_io, name)
    raise AttributeError(f"module 'overlays' has no attribute {name!r}")


__all__ = [
    "FAR_OUTSIDE",
    "KINDS",
    "MAX_PIXELS",
    "MAX_PROMPT_VERTICES",
    "PAD_COLOR",
    "PALETTE",
    "PROMPT_TYPES",
    "SCHEMA",
    "SHAPE_WORDS",
    "TRACK_FORMAT",
    "VIDEO_SUFFIXES",
    "Arrow",
    "Box",
    "Contour",
    "Ellipse",
    "FrameOutOfRange",
    "FrameSource",
    "ImageError",
    "ImageTooLarge",
    "ImageUnreadable",
    "InvalidPrompt",
    "InvalidTrack",
    "Mask",
    "Op",
    "OverlayError",
    "Point",
    "Prompt",
    "PromptOutsideImage",
    "Pt",
    "Rectangle",
    "Region",
    "RegionRef",
    "Scribble",
    "Style",
    "Track",
    "Triangle",
    "VideoError",
    "VideoInfo",
    "VideoReader",
    "VideoTooLarge",
    "VideoUnreadable",
    "assign_distinct_colors",
    "box_from_normalized",
    "box_from_xywh",
    "compile_prompt",
    "compose_question",
    "distinct_colors",
    "dumps",
    "find_refs",
    "fit_region",
    "fit_to_image",
    "flat_from_points",
    "from_document",
    "generate",
    "generate_sampled",
    "image_size",
    "interpolate",
    "is_video_path",
    "load_image",
    "loads",
    "mark_phrase",
    "model_view",
    "next_free_color",
    "pad_to_square",
    "parse_color",
    "points_from_flat",
    "prompt_from_dict",
    "prompt_to_dict",
    "referring_phrase",
    "region_mask",
    "render",
    "render_reference",
    "rewrite_question",
    "sample_style",
    "sample_times",
    "scale_of",
    "to_rgb",
    "verify_image",
    "write_video",
]

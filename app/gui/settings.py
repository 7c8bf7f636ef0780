"""The desktop app's typed settings, persisted per user as JSON. Qt-free.

One dataclass with defaults; unknown keys are an error (a typo must not silently reset a value).
The file lives in the user's config folder (``$VIPSTUDIO_GUI_SETTINGS`` overrides the path) and
is written safely: temp file, fsync, replace, mode 0600 because it may hold a server token.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from data_gen.safe_write import atomic_write
from overlays.keys import expect_keys
from vip_model.engine import GenerationSettings
from vip_model.engine_spec import QUANTIZATIONS as _QUANTIZATIONS
from vip_model.engine_spec import EngineSpec
from vip_model.errors import InvalidRequest
from vip_model.loading import DEFAULT_MODEL
from vip_model.templates import TEMPLATES as _TEMPLATES

DEVICES: Final = ("auto", "cpu", "cuda", "mps")
QUANTIZATIONS: Final = _QUANTIZATIONS
THEMES: Final = ("system", "light", "dark")
TEMPLATES: Final = tuple(_TEMPLATES)
#: Box → mask methods: GrabCut (offline, no model) or SAM / SAM 2 from ``sam_model``.
ASSIST_METHODS: Final = ("grabcut", "sam")


class SettingsError(ValueError):
    """The settings file or a value in it is invalid; the message names the key."""


@dataclass(frozen=True)
class Generation(GenerationSettings):
    """The engine's generation settings (one definition of the limits), with an invalid value
    reported as :class:`SettingsError`."""

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except InvalidRequest as exc:
            raise SettingsError(str(exc)) from None


@dataclass(frozen=True)
class Settings:
    """Everything the app remembers between runs.

    ``model`` is a hub id or a local folder; ``server_url`` (when set) makes the app use the
    remote engine of that server instead of loading a model. ``db_path`` empty means the log's
    default location. ``model`` set to ``""`` means: do not load any model at start.
    """

    model: str = DEFAULT_MODEL
    device: str = "auto"
    quantization: str = "none"
    template: str = "llava_v1"
    server_url: str = ""
    server_token: str = ""
    db_path: str = ""
    theme: str = "system"
    generation: Generation = field(default_factory=Generation)
    autosave_ms: int = 400
    thumbnails: bool = True
    last_folder: str = ""
    last_image: str = ""  # the image shown last: a restart reopens it (its draft with it)
    #: Image folder → its labels file (one label per line), remembered per folder.
    label_files: dict[str, str] = field(default_factory=dict)
    recent: tuple[str, ...] = ()  # File → Open Recent: images and folders, newest first
    include_subfolders: bool = False  # a folder lists the images of its subfolders too
    assist_method: str = "grabcut"
    sam_model: str = ""  # a local SAM / SAM 2 checkpoint folder (never downloaded)

    def __post_init__(self) -> None:
        _check_choice("device", self.device, DEVICES)
        _check_choice("quantization", self.quantization, QUANTIZATIONS)
        _check_choice("template", self.template, TEMPLATES)
        _check_choice("theme", self.theme, THEMES)
        _check_choice("assist_method", self.assist_method, ASSIST_METHODS)
        texts = ("model", "server_url", "server_token", "db_path", "last_folder", "last_image")
        for name in (*texts, "sam_model"):
            if not isinstance(getattr(self, name), str):
                raise SettingsError(f"{name} must be text, got {getattr(self, name)!r}")
        url = self.server_url.strip()
        if url and not url.startswith(("http://", "https://")):
            raise SettingsError(
                f"server_url {url!r} must start with http:// or https:// (or be empty)"
            )
        _check_range("autosave_ms", self.autosave_ms, 50, 60_000, integer=True)
        if not isinstance(self.label_files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.label_files.items()
        ):
            raise SettingsError("label_files must map folders to labels files (text to text)")
        if not isinstance(self.thumbnails, bool):
            raise SettingsError(f"thumbnails must be true or false, got {self.thumbnails!r}")
        if not isinstance(self.include_subfolders, bool):
            raise SettingsError(
                f"include_subfolders must be true or false, got {self.include_subfolders!r}"
            )
        if not isinstance(self.recent, list | tuple) or not all(
            isinstance(p, str) for p in self.recent
        ):
            raise SettingsError(f"recent must be a list of paths, got {self.recent!r}")
        object.__setattr__(self, "recent", tuple(self.recent))  # JSON gives a list
        if not isinstance(self.generation, Generation):
            raise SettingsError("generation must be a Generation")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Settings:
        """Settings from a dict; missing keys take defaults, unknown keys raise SettingsError."""
        expect_keys(data, {f.name for f in fields(cls)}, "settings", error=SettingsError)
        values = dict(data)
        if "generation" in values:
            gen = values["generation"]
            allowed = {f.name for f in fields(Generation)}
            expect_keys(gen, allowed, "settings.generation", error=SettingsError)
            values["generation"] = _build(Generation, gen)
        return _build(cls, values)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def engine_spec(self) -> EngineSpec:
        """The engine these settings describe (built by :func:`vip_model.engine_spec.build_engine`,
        as the CLI's options are)."""
        return EngineSpec(
            model=self.model.strip(),
            device=self.device,
            quantization=self.quantization,
            server_url=self.server_url.strip(),
            server_token=self.server_token,
        )


def default_path() -> Path:
    """Where the settings live (``$VIPSTUDIO_GUI_SETTINGS`` overrides it)."""
    env = os.environ.get("VIPSTUDIO_GUI_SETTINGS")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("vipstudio", appauthor=False)) / "gui.json"


def load(path: Path) -> Settings:
    """The settings stored at ``path``; defaults when there is no file yet.

    Raises :class:`SettingsError` for an unreadable or invalid file (the caller decides whether
    to fall back to defaults; the file is never overwritten here).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise SettingsError(f"cannot read the settings {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"the settings {path} are not valid JSON ({exc.msg}, line {exc.lineno}): "
            "fix or delete the file"
        ) from None
    try:
        return Settings.from_dict(data)
    except SettingsError as exc:
        raise SettingsError(f"the settings {path}: {exc}") from None


def save(settings: Settings, path: Path) -> None:
    """Write ``settings`` safely (temp file, fsync, replace), readable by the user only."""
    with atomic_write(path, permissions=0o600) as fh:
        json.dump(settings.to_dict(), fh, indent=2, sort_keys=True)
        fh.write("\n")


def remember_label_file(path: Path, folder: str, file: str) -> None:
    """Store that ``folder``'s labels are in ``file``, in the settings at ``path`` (as they are
    on disk; a file that cannot be read is left alone)."""
    try:
        on_disk = load(path)
    except SettingsError:
        return
    update(path, label_files={**on_disk.label_files, folder: file})


def update(path: Path, **changes: Any) -> None:
    """Write ``changes`` into the settings file at ``path``, keeping everything else it holds
    (another window may have changed it). A file that cannot be read is never overwritten; a
    file that cannot be written is left as it is (the values stay in use for this run)."""
    try:
        on_disk = load(path)
    except SettingsError:
        return
    if all(getattr(on_disk, k) == v for k, v in changes.items()):
        return
    with contextlib.suppress(OSError):
        save(on_disk.with_changes(**changes), path)


def _build(cls: Any, values: dict[str, Any]) -> Any:
    try:
        return cls(**values)
    except TypeError as exc:  # a wrong type deep inside a comparison
        raise SettingsError(str(exc)) from None


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f"{name} {value!r} is not one of {', '.join(choices)}")


def _check_range(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> None:
    ok = isinstance(value, int) or (not integer and isinstance(value, float))
    if isinstance(value, bool) or not ok:
        kind = "an integer" if integer else "a number"
        raise SettingsError(f"{name} must be {kind}, got {value!r}")
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {value!r}")

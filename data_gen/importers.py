"""Bringing existing annotations in: COCO, LabelMe and ViP-LLaVA files → regions in the log.

An import happens in two steps. :func:`plan_import` reads the file, checks every entry and
every image (exists, readable, of the declared size, boxes on it) and hashes the images, without
touching the log; invalid entries are collected with the reason. :func:`commit_plan` then writes
everything in one transaction: a failure leaves nothing behind, and the log is write-locked
only for the inserts.

What is written: the images; per image (COCO, LabelMe) or per entry (ViP-LLaVA) a session with
source ``import``; each box/polygon as a *region* (table ``regions``, with its class name); for
ViP-LLaVA files, whose entries carry conversations, also the turns (source ``import``), with
``<bboxN>`` turned into a drawn mark ("within the red rectangle").
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from data_gen.errors import ImportFailed
from data_gen.images import safe_stem
from data_gen.import_coco import plan_coco
from data_gen.import_labelme import labelme_files, plan_labelme_file
from data_gen.import_plan import (
    ImportPlan,
    ImportReport,
    PlannedConversation,
    PlannedImage,
    PlannedRegion,
    PlannedTurn,
)
from data_gen.import_vip import plan_vip
from data_gen.qalog.log import LogError, NewTurn, QALog, file_sha256
from data_gen.safe_write import atomic_write

IMPORT_FORMATS: tuple[str, ...] = ("coco", "labelme", "vip-llava")
IMPORT_MODEL = "import:{format}"
IMPORT_TEMPLATE = "llava_v1"
#: Beside the log: images that came inside annotation files (LabelMe ``imageData``).
EMBEDDED_DIR = "imported-images"

__all__ = [
    "IMPORT_FORMATS",
    "ImportPlan",
    "ImportReport",
    "PlannedConversation",
    "PlannedImage",
    "PlannedRegion",
    "PlannedTurn",
    "commit_plan",
    "import_file",
    "plan_import",
]


def plan_import(
    format: str, file: str | Path, images_dir: str | Path | None = None, *, strict: bool = False
) -> ImportPlan:
    """Read and check ``file`` without touching the log. Raises :class:`ImportFailed`.

    ``strict``: an image path leading out of the annotations' folder makes its entries invalid
    (else it is imported with a warning).
    """
    if format not in IMPORT_FORMATS:
        raise ImportFailed(f"unknown import format {format!r}: use {', '.join(IMPORT_FORMATS)}")
    path = Path(file)
    if not path.exists():
        raise ImportFailed(f"{path}: no such file")
    folder = Path(images_dir) if images_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise ImportFailed(f"--images-dir {folder}: no such folder")
    if format == "labelme":
        files = labelme_files(path)
        digest = hashlib.sha256(b"".join(file_sha256(f).encode() for f in files)).hexdigest()
        plan = ImportPlan(format, path, digest, strict=strict)
        for f in files:
            plan_labelme_file(plan, f, folder)
        return plan
    if path.is_dir():
        raise ImportFailed(f"{path} is a folder: give the {format} JSON file")
    plan = ImportPlan(format, path, file_sha256(path), strict=strict)
    base = folder if folder is not None else path.parent
    if format == "coco":
        plan_coco(plan, base)
    else:
        plan_vip(plan, base)
    return plan


def commit_plan(log: QALog, plan: ImportPlan) -> ImportReport:
    """Write a plan in one transaction (all or nothing); returns what was written.

    A plan with nothing to write records no import either (``import_id`` None): the file may be
    fixed and imported again without ``again``.
    """
    sessions = 0
    model = IMPORT_MODEL.format(format=plan.format)
    images = [i for i in plan.images.values() if i.regions or i.conversations]
    if not images:
        return _report(plan, None, 0, 0, dry_run=False)
    try:
        for image in images:
            if image.data is not None:
                image.path = _keep_embedded(log, image)
    except OSError as exc:
        raise ImportFailed(
            f"nothing was imported: cannot write an embedded image ({exc})"
        ) from None
    try:
        with log.batch() as batch:
            import_id = batch.add_import(plan.format, plan.file, plan.sha256)
            for image in images:
                row = batch.add_image(image.path, image.size, image.sha256)
                if image.regions:
                    session = batch.start_session(row.id, source="import")
                    sessions += 1
                    for r in image.regions:
                        batch.add_region(
                            row.id,
                            r.region,
                            label=r.label,
                            session_id=session,
                            import_id=import_id,
                            external_id=r.external_id,
                        )
                for conv in image.conversations:
                    session = batch.start_session(row.id, source="import")
                    sessions += 1
                    for r in conv.regions:
                        batch.add_region(
                            row.id,
                            r.region,
                            session_id=session,
                            import_id=import_id,
                            external_id=f"{conv.external_id}#{r.external_id}",
                        )
                    for turn in conv.turns:
                        batch.add_turn(
                            NewTurn(
                                session_id=session,
                                prompts=conv.prompts,
                                question=turn.question,
                                answer=turn.answer,
                                model=model,
                                template=IMPORT_TEMPLATE,
                                source="import",
                                question_refs=turn.refs,
                                tags=[f"import:{plan.format}"],
                            )
                        )
    except LogError as exc:
        raise ImportFailed(f"nothing was imported: {exc}") from None
    return _report(plan, import_id, len(images), sessions)


def _keep_embedded(log: QALog, image: PlannedImage) -> Path:
    """Where an image embedded in an annotation file is kept: the log's ``imported-images``
    folder, named by content (importing the same picture twice writes it once)."""
    target = (
        Path(log.path).parent
        / EMBEDDED_DIR
        / (f"{safe_stem(str(image.path))}-{image.sha256[:12]}{image.extension}")
    )
    if not (target.is_file() and file_sha256(target) == image.sha256):
        with atomic_write(target, "wb") as fh:
            fh.write(image.data or b"")
    return target


def _report(
    plan: ImportPlan, import_id: int | None, images: int, sessions: int, dry_run: bool | None = None
) -> ImportReport:
    return ImportReport(
        format=plan.format,
        file=str(plan.file),
        import_id=import_id,
        images=images,
        sessions=sessions,
        regions=plan.region_count,
        turns=plan.turn_count,
        invalid=list(plan.invalid),
        notes=list(plan.notes),
        dry_run=import_id is None if dry_run is None else dry_run,
        warnings=list(plan.warnings),
        ignored=plan.ignored,
    )


def import_file(
    log: QALog,
    format: str,
    file: str | Path,
    *,
    images_dir: str | Path | None = None,
    dry_run: bool = False,
    strict: bool = False,
    again: bool = False,
) -> ImportReport:
    """Check then import ``file``; invalid entries are skipped and listed in the report.

    ``strict``: any invalid entry aborts the whole import. ``again``: import a file whose
    content was imported before (refused by default, to avoid duplicate regions).
    """
    plan = plan_import(format, file, images_dir, strict=strict)
    if strict and plan.invalid:
        where, why = plan.invalid[0]
        raise ImportFailed(
            f"nothing was imported: {len(plan.invalid)} invalid entries (first: {where}: {why}); "
            "fix them or import without --strict to skip them"
        )
    if not again and not dry_run:
        earlier = log.find_imports(plan.sha256)
        if earlier:
            first = earlier[0]
            raise ImportFailed(
                f"{plan.file} was already imported (import #{first['id']} on "
                f"{first['created_at'][:10]}): pass --again to import it a second time"
            )
    if dry_run:
        images = sum(1 for i in plan.images.values() if i.regions or i.conversations)
        sessions = sum((1 if i.regions else 0) + len(i.conversations) for i in plan.images.values())
        return _report(plan, None, images, sessions)
    return commit_plan(log, plan)

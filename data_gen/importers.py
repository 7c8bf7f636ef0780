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

from app.log import LogError, NewTurn, QALog, file_sha256
from data_gen.errors import ImportFailed
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

IMPORT_FORMATS: tuple[str, ...] = ("coco", "labelme", "vip-llava")
IMPORT_MODEL = "import:{format}"
IMPORT_TEMPLATE = "llava_v1"

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


def plan_import(format: str, file: str | Path, images_dir: str | Path | None = None) -> ImportPlan:
    """Read and check ``file`` without touching the log. Raises :class:`ImportFailed`."""
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
        plan = ImportPlan(format, path, digest)
        for f in files:
            plan_labelme_file(plan, f, folder)
        return plan
    if path.is_dir():
        raise ImportFailed(f"{path} is a folder: give the {format} JSON file")
    plan = ImportPlan(format, path, file_sha256(path))
    base = folder if folder is not None else path.parent
    if format == "coco":
        plan_coco(plan, base)
    else:
        plan_vip(plan, base)
    return plan


def commit_plan(log: QALog, plan: ImportPlan) -> ImportReport:
    """Write a plan in one transaction (all or nothing); returns what was written."""
    sessions = 0
    model = IMPORT_MODEL.format(format=plan.format)
    images = [i for i in plan.images.values() if i.regions or i.conversations]
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


def _report(plan: ImportPlan, import_id: int | None, images: int, sessions: int) -> ImportReport:
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
        dry_run=import_id is None,
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
    plan = plan_import(format, file, images_dir)
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

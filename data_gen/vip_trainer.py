"""What ViP-LLaVA's own trainer does with a ``vip-llava`` record, and which id path we choose.

The trainer (mu-cai/ViP-LLaVA, ``llava/train/train.py`` → ``visual_prompt_organizer.vip_processor``)
reads the record id as ``DATASET-SUBTYPE-…`` and draws prompts only when DATASET is one of its
own (:data:`TRAINER_DATASETS`). Two of those fit a logged conversation:

- ``refcocog-gpt4v-…``: draws ONE region (any of the 8 kinds, with its segmentation), replaces
  ``<bbox>`` in every turn by "within the red rectangle" and prepends ``<image>\\n`` itself.
- ``vg_rel-gpt4v-…``: needs TWO or more regions (it reads ``predefined_shapes[1]``), replaces
  ``<bbox0>``, ``<bbox1>``…, draws only rectangles and ellipses on the boxes and drops the
  segmentations; the text keeps its own ``<image>\\n``.
- any other DATASET: nothing is drawn and the text is used as is.

The trainer swallows any error in there and trains on a random other record instead, so a record
that does not fit its path is invisible in training: we choose the path per record by its region
count, and with an explicit ``--id-prefix`` we refuse (skip with a reason) what it cannot carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from data_gen.errors import InvalidSelection

#: ``visual_prompt_config``'s keys: the DATASET parts the trainer hands to ``vip_processor``.
TRAINER_DATASETS: frozenset[str] = frozenset(
    {"refcocog", "vcr", "vg_rel", "flickr30k", "v7w", "pointQA_twice"}
)
ONE_REGION = "refcocog-gpt4v"
REGIONS = "vg_rel-gpt4v"
#: Records without a region: a DATASET the trainer does not know, so nothing is drawn.
NO_REGION = "vipstudio"
#: Prompt kinds the ``vg_rel`` path draws (whatever the person drew).
VG_REL_KINDS: tuple[str, ...] = ("rectangle", "ellipse")


@dataclass(frozen=True)
class TrainerPath:
    """One way through the trainer: the id prefix and the region counts it can carry."""

    prefix: str
    min_regions: int
    max_regions: int | None  # None: no upper bound
    token: str  # how the text names region N: "<bbox>" or "<bbox{N}>"
    image_in_text: bool  # the text carries "<image>\n" (else the trainer prepends it)
    note: str  # what the trainer does with it, for the export summary

    def carries(self, regions: int) -> bool:
        return regions >= self.min_regions and (
            self.max_regions is None or regions <= self.max_regions
        )

    def refusal(self, regions: int) -> str:
        """Why a record with ``regions`` regions cannot take this path (a summary reason)."""
        wants = (
            f"exactly {self.min_regions}"
            if self.max_regions == self.min_regions
            else f"{self.min_regions} or more"
        )
        return (
            f"vip-llava id prefix {self.prefix}: takes records with {wants} region(s), "
            f"this one has {regions} (drop --id-prefix to choose per record)"
        )


_ONE = TrainerPath(ONE_REGION, 1, 1, "<bbox>", False, "one region, drawn as any of the 8 kinds")
_MANY = TrainerPath(
    REGIONS, 2, None, "<bbox{n}>", True, "2+ regions, boxes drawn as rectangles or ellipses"
)


def plain_path(prefix: str = NO_REGION) -> TrainerPath:
    """A prefix the trainer does not know: no region, nothing drawn, text as is."""
    return TrainerPath(prefix, 0, 0, "", True, "no region, nothing drawn")


def path_for(regions: int) -> TrainerPath:
    """The path that draws every one of ``regions`` and replaces every reference to them."""
    if regions == 0:
        return plain_path()
    return _ONE if regions == 1 else _MANY


def override_path(prefix: str) -> TrainerPath:
    """The path an explicit ``--id-prefix`` forces; prefixes the trainer would misread fail."""
    parts = prefix.split("-")
    if parts[0] not in TRAINER_DATASETS:
        return plain_path(prefix)
    for path in (_ONE, _MANY):
        if parts[:2] == path.prefix.split("-"):
            return path
    raise InvalidSelection(
        f"--id-prefix {prefix!r}: the ViP-LLaVA trainer reads {parts[0]!r} as one of its "
        f"datasets and expects fields we do not write; use {ONE_REGION} (one region), "
        f"{REGIONS} (two or more), a name of your own (nothing drawn), or leave it out "
        "(chosen per record)"
    )


def describe(prefix: str) -> str:
    """What the trainer does with records of id ``prefix`` (for the export summary)."""
    for path in (_ONE, _MANY):
        if prefix == path.prefix:
            return path.note
    return plain_path(prefix).note

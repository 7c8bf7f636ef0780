"""The Q&A log's schema: one SQL script per version, applied in order by `data_gen.qalog.log`."""

from __future__ import annotations

# `PRAGMA application_id` of every ViP Studio log: the ASCII bytes "ViPS". A non-empty SQLite file
# without it is another program's and is never changed (log_open); logs written before the
# mark existed are recognised by their tables (LEGACY_TABLES) and stamped when opened writable.
APPLICATION_ID = 0x56695053

# Each entry upgrades the schema by one version; the list index + 1 is the version reached.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        added_at TEXT NOT NULL
    );
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        image_id INTEGER NOT NULL REFERENCES images(id),
        source TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX sessions_image ON sessions(image_id);
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        image_id INTEGER NOT NULL REFERENCES images(id),
        idx INTEGER NOT NULL,
        prompts TEXT NOT NULL,
        question TEXT NOT NULL,
        question_refs TEXT NOT NULL DEFAULT '[]',
        answer TEXT NOT NULL,
        model TEXT NOT NULL,
        template TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}',
        timings TEXT NOT NULL DEFAULT '{}',
        prompt_tokens INTEGER,
        answer_tokens INTEGER,
        finish_reason TEXT,
        source TEXT NOT NULL,
        request_id TEXT UNIQUE,
        review TEXT NOT NULL DEFAULT 'unreviewed'
            CHECK (review IN ('unreviewed', 'accepted', 'edited', 'rejected')),
        corrected_answer TEXT,
        reviewed_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX turns_session ON turns(session_id, idx);
    CREATE INDEX turns_image ON turns(image_id);
    CREATE INDEX turns_review ON turns(review);
    CREATE TABLE turn_tags (
        turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (turn_id, tag)
    );
    CREATE TABLE drafts (
        image_id INTEGER PRIMARY KEY REFERENCES images(id),
        prompts TEXT NOT NULL,
        question TEXT NOT NULL DEFAULT '',
        session_id INTEGER REFERENCES sessions(id),
        updated_at TEXT NOT NULL
    );
    """,
    # 2: imported regions (data_gen.importers): boxes/polygons with class names brought in from
    # COCO, LabelMe or ViP-LLaVA files, waiting for Q&A (`ask --batch`); one row per import.
    """
    CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        format TEXT NOT NULL,
        file TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX imports_sha ON imports(sha256);
    CREATE TABLE regions (
        id INTEGER PRIMARY KEY,
        image_id INTEGER NOT NULL REFERENCES images(id),
        session_id INTEGER REFERENCES sessions(id),
        import_id INTEGER REFERENCES imports(id),
        label TEXT,
        region TEXT NOT NULL,
        external_id TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX regions_image ON regions(image_id);
    CREATE INDEX regions_import ON regions(import_id);
    """,
    # 3: video (issue 14). A video turn is asked about one frame: its `images` row is that frame
    # ("<video path>#frame=<i>", hashed over its decoded pixels), so image-only readers keep
    # working; the turn also names its video, frame index and time. `video_tracks` keeps a
    # region's keyframes and tracked boxes (overlays.tracks.Track JSON) per video and session.
    """
    CREATE TABLE videos (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        fps REAL NOT NULL,
        frame_count INTEGER NOT NULL,
        duration REAL NOT NULL,
        codec TEXT NOT NULL,
        variable_frame_rate INTEGER NOT NULL DEFAULT 0,
        added_at TEXT NOT NULL
    );
    ALTER TABLE turns ADD COLUMN video_id INTEGER REFERENCES videos(id);
    ALTER TABLE turns ADD COLUMN frame_index INTEGER;
    ALTER TABLE turns ADD COLUMN frame_time REAL;
    CREATE INDEX turns_video ON turns(video_id, frame_index) WHERE video_id IS NOT NULL;
    CREATE TABLE video_tracks (
        id INTEGER PRIMARY KEY,
        video_id INTEGER NOT NULL REFERENCES videos(id),
        session_id INTEGER REFERENCES sessions(id),
        region_index INTEGER NOT NULL,
        track TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX video_tracks_video ON video_tracks(video_id, session_id, region_index);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

# The tables (and key columns of `turns`) by which an unmarked log of each schema version, as
# earlier ViP Studio versions wrote it, is recognised.
LEGACY_TABLES: dict[int, frozenset[str]] = {
    1: frozenset({"images", "sessions", "turns", "turn_tags", "drafts"}),
    2: frozenset({"images", "sessions", "turns", "turn_tags", "drafts", "imports", "regions"}),
}
LEGACY_TURN_COLUMNS = frozenset(
    {"session_id", "image_id", "idx", "prompts", "question", "answer", "model", "review"}
)

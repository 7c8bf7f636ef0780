"""The Q&A log: one SQLite file holding images, sessions, turns, drafts, imports and regions.

Beneath every front door (CLI, batch, desktop app) and read by the dataset code; it imports
neither ``app``, click nor Qt (``tests/test_import_contract.py``).

- ``log``: :class:`~data_gen.qalog.log.QALog`, every read and write, one transaction each
  (``record_turn``: a turn with its new image and session, in one).
- ``log_types``: rows, errors and the vocabularies (sources, reviews).
- ``log_schema``: the schema, its migrations and the ``application_id`` mark.
- ``log_open``: opening a file safely (ours, foreign, read-only, damaged, newer).
- ``log_batch``: batched writes (imports, ``ask --batch``).
- ``log_video``: videos, video turns (frame index and time) and region tracks; their read API.
"""

"""The Q&A log, and turning it into instruction-tuning datasets and annotations into it. No Qt.

- ``qalog``: the Q&A log itself, beneath every front door; ``safe_write``: safe file writes.
- ``records``: selection, conversations (grouping, dedup, split by image).
- ``export`` (+ ``export_vip``, ``export_llava``, ``export_llama_factory``, ``export_hf``,
  ``export_swift``):
  :func:`data_gen.export.export` writes one format, streamed, into a staged folder.
- ``augment``: regions redrawn with other prompt kinds, texts rewritten (``refs``).
- ``importers``: COCO, LabelMe, ViP-LLaVA files → regions (and turns) in the log;
  ``queries``: `ask --batch` questions for imported regions.
- ``report``: statistics and a PNG of them.

Submodules are imported on demand (the Parquet writer pulls in pyarrow).
"""

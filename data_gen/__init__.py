"""Turning the Q&A log into instruction-tuning datasets, and annotations into the log. No Qt.

- ``records``: selection, conversations (grouping, dedup, split by image).
- ``export`` (+ ``export_vip``, ``export_llava``, ``export_llama_factory``, ``export_hf``):
  :func:`data_gen.export.export` writes one format, streamed, into a staged folder.
- ``augment``: regions redrawn with other prompt kinds, texts rewritten (``refs``).
- ``importers``: COCO, LabelMe, ViP-LLaVA files → regions (and turns) in the log;
  ``queries``: `ask --batch` questions for imported regions.
- ``report``: statistics and a PNG of them.

Submodules are imported on demand (the Parquet writer pulls in pyarrow).
"""

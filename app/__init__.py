"""The front doors of ViP Studio: the `vipstudio` command line, `ask --batch` and the desktop app.

The Q&A log they share lives beneath them, in :mod:`data_gen.qalog`; nothing outside `app`
imports `app`.
"""

"""The ViP Studio application: the `vipstudio` command line, the Q&A log and the desktop app."""

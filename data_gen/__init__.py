"""Turning the Q&A log into instruction-tuning datasets. No Qt."""

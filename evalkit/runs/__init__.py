"""The run directory: what a generation run wrote, in the one format every later stage reads."""

from evalkit.runs.store import ImageRecord, Run, open_run

__all__ = ["ImageRecord", "Run", "open_run"]

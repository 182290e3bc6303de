"""A run's results: the run folder (chunk files, the run's identity, final files) and its summary."""

from dip_lightning.results.store import COLUMNS, RunFolder, read_csv, write_atomically, write_csv
from dip_lightning.results.summary import summarize

__all__ = ["COLUMNS", "RunFolder", "read_csv", "summarize", "write_atomically", "write_csv"]

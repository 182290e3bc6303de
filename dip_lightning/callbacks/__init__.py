"""Callbacks that turn finished chunks into result files and W&B media."""

from dip_lightning.callbacks.results import ResultsWriter
from dip_lightning.callbacks.wandb_media import WandbMediaLogger

__all__ = ["ResultsWriter", "WandbMediaLogger"]

"""Lightning callbacks: results files, W&B media, progress and curves of the reconstruction."""

from dip_lightning.callbacks.progress import CurveLogger, IterationProgressBar
from dip_lightning.callbacks.results import ResultsWriter
from dip_lightning.callbacks.wandb_media import WandbMediaLogger

__all__ = ["CurveLogger", "IterationProgressBar", "ResultsWriter", "WandbMediaLogger"]

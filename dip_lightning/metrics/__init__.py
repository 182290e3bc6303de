"""Reconstruction quality metrics."""

from dip_lightning.metrics.nmse import NormalizedMeanSquaredError, normalized_mse
from dip_lightning.metrics.quality import image_quality

__all__ = ["NormalizedMeanSquaredError", "image_quality", "normalized_mse"]

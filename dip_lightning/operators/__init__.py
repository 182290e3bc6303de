"""Measurement operators (forward models) with ``A`` / ``A_adjoint``, batched over images."""

from dip_lightning.operators.base import ImageShape, Operator
from dip_lightning.operators.compressive_sensing import CompressiveSensing
from dip_lightning.operators.phase_retrieval import PhaseRetrieval

__all__ = ["CompressiveSensing", "ImageShape", "Operator", "PhaseRetrieval"]

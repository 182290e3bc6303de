"""Measurement operators (forward models) with ``A`` / ``A_adjoint``, batched over images."""

from dip_lightning.operators.base import ImageShape, Operator
from dip_lightning.operators.compressive_sensing import CompressiveSensing

__all__ = ["CompressiveSensing", "ImageShape", "Operator"]

"""Measurement operators (forward models) with ``A`` / ``A_adjoint``, batched over images."""

from dip_lightning.operators.base import ImageShape, Operator
from dip_lightning.operators.coded_diffraction import CodedDiffraction
from dip_lightning.operators.compressive_sensing import CompressiveSensing
from dip_lightning.operators.denoising import Denoising
from dip_lightning.operators.inpainting import Inpainting
from dip_lightning.operators.phase_retrieval import MagnitudeMeasurements, PhaseRetrieval
from dip_lightning.operators.structured import StructuredCompressiveSensing
from dip_lightning.operators.super_resolution import SuperResolution

__all__ = ["CodedDiffraction", "CompressiveSensing", "Denoising", "ImageShape", "Inpainting", "MagnitudeMeasurements",
           "Operator", "PhaseRetrieval", "StructuredCompressiveSensing", "SuperResolution"]

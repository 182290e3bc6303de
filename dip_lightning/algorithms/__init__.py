"""Reconstruction algorithms as LightningModules."""

from dip_lightning.algorithms.base import ChunkResult, ReconstructionModule
from dip_lightning.algorithms.net_gd import NetGD
from dip_lightning.algorithms.net_pgd import NetPGD

__all__ = ["ChunkResult", "NetGD", "NetPGD", "ReconstructionModule"]

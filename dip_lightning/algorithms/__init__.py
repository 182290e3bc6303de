"""Reconstruction methods as LightningModules: untrained priors (Net-GD, Net-PGD) and baselines."""

from dip_lightning.algorithms.amplitude_flow import AmplitudeFlow
from dip_lightning.algorithms.base import ChunkResult, ReconstructionModule
from dip_lightning.algorithms.classical import ClassicalRestoration
from dip_lightning.algorithms.lasso import Lasso
from dip_lightning.algorithms.net_gd import NetGD
from dip_lightning.algorithms.net_pgd import NetPGD
from dip_lightning.algorithms.total_variation import TVMinimization
from dip_lightning.algorithms.untrained_prior import UntrainedPriorModule

__all__ = ["AmplitudeFlow", "ChunkResult", "ClassicalRestoration", "Lasso", "NetGD", "NetPGD", "ReconstructionModule", "TVMinimization",
           "UntrainedPriorModule"]

"""Reconstruction methods as LightningModules: untrained priors (Net-GD, Net-PGD) and baselines."""

from dip_lightning.algorithms.amplitude_flow import AmplitudeFlow, SparseAmplitudeFlow
from dip_lightning.algorithms.base import ReconstructionModule
from dip_lightning.algorithms.classical import (
    BicubicUpsampling,
    BiharmonicInpainting,
    ClassicalRestoration,
    NLMeansDenoiser,
    TVDenoiser,
    WaveletDenoiser,
)
from dip_lightning.algorithms.lasso import Lasso
from dip_lightning.algorithms.net_gd import NetGD
from dip_lightning.algorithms.net_pgd import NetPGD
from dip_lightning.algorithms.restarts import Restarts
from dip_lightning.algorithms.retry import Retry
from dip_lightning.algorithms.splitting import NetGDTV
from dip_lightning.algorithms.total_variation import TVMinimization
from dip_lightning.algorithms.trackers import EarlyStopping, MagnitudeSmoothing
from dip_lightning.algorithms.untrained_prior import UntrainedPriorModule

__all__ = ["AmplitudeFlow", "BicubicUpsampling", "BiharmonicInpainting", "ClassicalRestoration", "EarlyStopping",
           "Lasso", "MagnitudeSmoothing", "NLMeansDenoiser", "NetGD", "NetGDTV", "NetPGD", "ReconstructionModule", "Restarts", "Retry",
           "SparseAmplitudeFlow", "TVDenoiser", "TVMinimization", "UntrainedPriorModule", "WaveletDenoiser"]

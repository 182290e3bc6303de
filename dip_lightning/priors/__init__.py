"""Untrained generators x = G(w; z), batched as independent networks: the Deep Decoder and the DIP skip network.
The baselines' hand-crafted regularizers are in :mod:`dip_lightning.regularizers`."""

from dip_lightning.priors.deep_decoder import DeepDecoder
from dip_lightning.priors.skip_network import SkipNetwork
from dip_lightning.priors.untrained import PriorFactory, UntrainedPrior

__all__ = ["DeepDecoder", "PriorFactory", "SkipNetwork", "UntrainedPrior"]

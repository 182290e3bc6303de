"""Image priors: untrained generators (Deep Decoder, DIP skip network) and the baselines' hand-crafted priors."""

from dip_lightning.priors.deep_decoder import DeepDecoder
from dip_lightning.priors.skip_network import SkipNetwork
from dip_lightning.priors.sparsifying import DCT2d, OrthonormalTransform, Wavelet2d, make_transform
from dip_lightning.priors.total_variation import gradient, gradient_adjoint, total_variation
from dip_lightning.priors.untrained import PriorFactory, UntrainedPrior

__all__ = ["DCT2d", "DeepDecoder", "OrthonormalTransform", "PriorFactory", "SkipNetwork", "UntrainedPrior",
           "Wavelet2d", "gradient", "gradient_adjoint", "make_transform", "total_variation"]

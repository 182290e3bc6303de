"""Image priors: the untrained Deep Decoder, and the hand-crafted priors of the baselines."""

from dip_lightning.priors.deep_decoder import DeepDecoder
from dip_lightning.priors.sparsifying import DCT2d, OrthonormalTransform, Wavelet2d, make_transform
from dip_lightning.priors.total_variation import gradient, gradient_adjoint, total_variation

__all__ = ["DCT2d", "DeepDecoder", "OrthonormalTransform", "Wavelet2d", "gradient", "gradient_adjoint",
           "make_transform", "total_variation"]

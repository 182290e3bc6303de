"""Hand-crafted image regularizers of the baselines: sparsity in an orthonormal basis (DCT, wavelets) and total
variation. The untrained networks, the learned-free priors of the method itself, are in :mod:`dip_lightning.priors`."""

from dip_lightning.regularizers.sparsifying import DCT2d, OrthonormalTransform, Wavelet2d, make_transform
from dip_lightning.regularizers.total_variation import gradient, gradient_adjoint, total_variation

__all__ = ["DCT2d", "OrthonormalTransform", "Wavelet2d", "gradient", "gradient_adjoint", "make_transform",
           "total_variation"]

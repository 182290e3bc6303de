"""Net-GD: gradient descent on the decoder weights through the measurement model."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from dip_lightning.algorithms.untrained_prior import UntrainedPriorModule
from dip_lightning.chunks import Chunk
from dip_lightning.errors import DipLightningError


class NetGD(UntrainedPriorModule):
    r"""Net-GD (Jagatap & Hegde, 2019, Algorithm 1), for every image of the chunk at once:

    .. math:: \min_{w_b} \; \frac{1}{m} \| y_b - \mathcal{A}(G(w_b; z_b)) \|_2^2 ,

    one optimizer step per outer iteration, the loss summed over the chunk's images. With a
    denoising, inpainting or super-resolution operator and the skip network this is the Deep
    Image Prior (Ulyanov et al., 2018); with the Deep Decoder, Heckel & Hand (2019).

    Args:
        curvature_lr: an upper bound on the learning rate in units of :math:`1/L`, where
            :math:`L = 2 \|A\|_2^2 / m` is the curvature of the data loss in image space (the
            Lipschitz constant of its gradient, :math:`\|A\|_2^2` by power iteration): the optimizer
            runs with ``min(lr, curvature_lr / L)``. For Gaussian compressive sensing L grows about
            fivefold from f = 0.25 to f = 0.1 (MNIST: 0.090 and 0.436), so a learning rate fast at
            one ratio diverges at the other; the configured lr then bounds the rate where L is small,
            since too large a step also collapses a network to a blank image whatever L is
            (``docs/results/speed/``). ``null``: the configured lr at every ratio.
        **kwargs: see :class:`UntrainedPriorModule`.
    """

    algorithm = "net-gd"

    def __init__(self, *args: Any, curvature_lr: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if curvature_lr is not None and not curvature_lr > 0:
            raise DipLightningError(f"curvature_lr must be positive or null, got {curvature_lr} (--model.curvature_lr)")
        self.curvature_lr = curvature_lr
        self._curvature: float | None = None

    def lr_bound(self) -> float:
        if self.curvature_lr is None:
            return math.inf
        if self._curvature is None:
            self._curvature = 2 * self.operator.norm_squared(iterations=100, margin=1.0) / self.operator.m
        return self.curvature_lr / self._curvature

    def outer_step(self, chunk: Chunk) -> Tensor:
        return self.data_fitting_step(chunk)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "curvature_lr": self.curvature_lr}

"""Net-GD: gradient descent on the decoder weights through the measurement model."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from dip_lightning.algorithms.untrained_prior import UntrainedPriorModule
from dip_lightning.chunks import Chunk


class NetGD(UntrainedPriorModule):
    r"""Net-GD (Jagatap & Hegde, 2019, Algorithm 1), for every image of the chunk at once:

    .. math:: \min_{w_b} \; \frac{1}{m} \| y_b - \mathcal{A}(G(w_b; z_b)) \|_2^2 ,

    one optimizer step per outer iteration, the loss summed over the chunk's images. With a
    denoising, inpainting or super-resolution operator and the skip network this is the Deep
    Image Prior (Ulyanov et al., 2018); with the Deep Decoder, Heckel & Hand (2019).

    Args:
        relative_lr: give the optimizer's learning rate in units of :math:`1/L`, where
            :math:`L = 2 \|A\|_2^2 / m` is the curvature of the data loss in image space (the
            Lipschitz constant of its gradient, :math:`\|A\|_2^2` by power iteration): the optimizer
            runs with lr / L. For Gaussian compressive sensing L grows about fivefold from f = 0.25 to
            f = 0.1 (MNIST: 0.090 and 0.436), so a plain learning rate fast at one ratio diverges at
            the other, where a relative one suits both (``docs/results/speed/``).
        **kwargs: see :class:`UntrainedPriorModule`.
    """

    algorithm = "net-gd"

    def __init__(self, *args: Any, relative_lr: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.relative_lr = relative_lr
        self._curvature: float | None = None

    def lr_scale(self) -> float:
        if not self.relative_lr:
            return 1.0
        if self._curvature is None:
            self._curvature = 2 * self.operator.norm_squared(iterations=100, margin=1.0) / self.operator.m
        return 1.0 / self._curvature

    def outer_step(self, chunk: Chunk) -> Tensor:
        loss, outputs = self.fitting_step(chunk, chunk.decoder_measurements, through_operator=True)
        self.track(chunk, outputs)
        return loss

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "relative_lr": self.relative_lr}

"""Net-GD: gradient descent on the decoder weights through the measurement model."""

from __future__ import annotations

from torch import Tensor

from dip_lightning.algorithms.untrained_prior import UntrainedPriorModule
from dip_lightning.chunks import Chunk


class NetGD(UntrainedPriorModule):
    r"""Net-GD (Jagatap & Hegde, 2019, Algorithm 1), for every image of the chunk at once:

    .. math:: \min_{w_b} \; \frac{1}{m} \| y_b - \mathcal{A}(G(w_b; z_b)) \|_2^2 ,

    one optimizer step per outer iteration, the loss summed over the chunk's images. With a
    denoising, inpainting or super-resolution operator and the skip network this is the Deep
    Image Prior (Ulyanov et al., 2018); with the Deep Decoder, Heckel & Hand (2019).
    """

    algorithm = "net-gd"

    def outer_step(self, chunk: Chunk) -> Tensor:
        loss, outputs = self.fitting_step(chunk, chunk.decoder_measurements, through_operator=True)
        self.track(chunk, outputs)
        return loss

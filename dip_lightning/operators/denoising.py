"""Denoising: the identity operator with additive Gaussian noise."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape, Operator


class Denoising(Operator):
    """y = x + noise_sigma * e, e ~ N(0, I): ``A`` is the identity (m = n), flattened to (B, n).

    The noise of each image is drawn from ``(seed, dataset index)`` alone (see
    :meth:`~dip_lightning.operators.Operator.measure`), so every method and every run sees the
    same noisy image. ``noise_sigma`` is on the [0, 1] pixel scale: 25/255 is sigma = 25 on 0..255.
    When the noisy images are the user's own (:class:`~dip_lightning.data.ObservedImages`),
    nothing is added; ``noise_sigma`` then informs the methods that use a noise level (the data
    loss below, the wavelet and NL-means baselines) and may be ``null`` (the baselines estimate it).

    Photos are stored clipped to [0, 1]: a pixel saved as 0 (or 1) had a noisy value at or
    beyond that bound, not at it, and fitting it as a value of 0 biases every dark (bright) region
    upwards (downwards). With a known sigma the data loss therefore treats values exactly at a bound
    as censored (the Tobit likelihood, scaled like the squared error it replaces), per pixel::

        (x - y)^2                                   0 < y < 1
        -2 sigma^2 log Phi(-x / sigma)              y = 0   (the noisy value was <= 0)
        -2 sigma^2 log Phi((x - 1) / sigma)         y = 1   (it was >= 1)

    Simulated noisy values are never exactly 0 or 1, so for them this is the squared error.
    """

    name = "denoise"
    orthonormal_rows = True

    def __init__(self, image_shape: ImageShape, noise_sigma: float | None = 25 / 255, seed: int = 0) -> None:
        if noise_sigma is not None and not noise_sigma > 0:
            raise DipLightningError(
                f"denoising needs noise: noise_sigma must be positive, got {noise_sigma}; "
                "e.g. --model.operator.noise_sigma 0.098 (sigma = 25 on the 0..255 scale)"
            )
        super().__init__(image_shape, math.prod(image_shape), noise_sigma, seed)

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return self.image_shape

    def shape_hint(self) -> str:
        return "the noisy images are reconstructed at their own size, so this should not happen; please report it"

    @torch.no_grad()
    def measure(self, x: Tensor, index: Tensor) -> Tensor:
        if self.noise_sigma is None:
            raise DipLightningError(
                "simulating noisy images needs a noise level: pass --model.operator.noise_sigma (e.g. 0.098); "
                "to denoise your own noisy photos, use --data dip_lightning.data.ObservedImages"
            )
        return super().measure(x, index)

    def data_loss(self, x: Tensor, y: Tensor) -> Tensor:
        fitted = self.forward(x)
        squared = (fitted - y).pow(2)
        if not self.noise_sigma:
            return squared.mean(dim=1)
        sigma = self.noise_sigma
        low = -2 * sigma**2 * torch.special.log_ndtr(-fitted / sigma)
        high = -2 * sigma**2 * torch.special.log_ndtr((fitted - 1) / sigma)
        return torch.where(y == 0, low, torch.where(y == 1, high, squared)).mean(dim=1)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return x.flatten(1)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        return y.reshape(y.shape[0], *self.image_shape)

    def norm_squared(self, iterations: int = 0, margin: float = 1.0) -> float:
        return 1.0

    def preview(self, y: Tensor) -> Tensor:
        return self.A_adjoint(y)  # the noisy image

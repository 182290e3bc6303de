"""Compressive phase retrieval: magnitudes of Gaussian measurements."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dip_lightning.operators.compressive_sensing import CompressiveSensing


class PhaseRetrieval(CompressiveSensing):
    """y = |A x| (+ noise), with the same seeded Gaussian A (entries N(0, 1/m), m = round(ratio * n)).

    ``ratio`` may exceed 1. ``A`` and ``A_adjoint`` are the linear part; ``lift(y, A x)`` is
    ``y * sign(A x)``, the measurement with the current phase estimate, so that Net-PGD's step
    is ``x - eta A^T(A x - y * sign(A x))`` (the paper's Algorithm 2). Real signals are only
    determined up to a global sign: x and -x give the same y.
    """

    name = "cpr"
    max_ratio = math.inf
    problem = "phase retrieval"
    sign_ambiguous = True
    linear = False

    def forward(self, x: Tensor) -> Tensor:
        return self.A(x).abs()

    def lift(self, y: Tensor, Ax: Tensor) -> Tensor:  # noqa: N803
        return y * torch.sign(Ax)

    measurement_gain = 1.0  # E ||A x||^2 / ||x||^2 (rows N(0, I/m)): an estimate's norm is ||y|| / sqrt(gain)

    def magnitudes(self, Ax: Tensor) -> Tensor:  # noqa: N803
        """|A x| per measurement, (B, m), from ``A x`` as :meth:`A` returns it."""
        return Ax.abs()

    def weigh(self, Ax: Tensor, weights: Tensor) -> Tensor:  # noqa: N803
        """``A x`` with measurement j multiplied by ``weights[:, j]`` (B, m)."""
        return Ax * weights

    def row_norms(self) -> Tensor:
        """||a_j||, the norm of each row of A, (m,)."""
        return self.matrix.norm(dim=1)

    @torch.no_grad()
    def spectral_estimate(self, y: Tensor, truncation: float = 9.0, power_iterations: int = 100) -> Tensor:
        """Truncated spectral initialization, batched per image: (B, m) -> (B, C, H, W).

        (Chen & Candes' truncation |y_j| <= 3 * rms(y), i.e. ``truncation = 9`` on y^2.) Like
        every spectral method it needs m well above n to point the right way: on MNIST its nMSE
        is ~1.8 at f = 0.5 and ~0.9 at f = 3, so the decoder fit that follows has to do the work.

        The leading eigenvector of ``A^T diag(y^2 * 1[y^2 <= truncation * mean(y^2)]) A`` by
        power iteration, scaled to the norm the measurements imply (E ||A x||^2 = ||x||^2 for
        N(0, 1/m) entries, so ||x|| ~ ||y||), with its sign chosen so that the image is mostly
        non-negative (images have non-negative pixels).
        """
        power = y.pow(2)
        weights = power * (power <= truncation * power.mean(1, keepdim=True))
        rng = torch.Generator(device="cpu").manual_seed(0)
        z = torch.randn(y.shape[0], self.n, generator=rng).to(y)
        for _ in range(power_iterations):
            z = self.A_adjoint(weights * self.A(z.view(-1, *self.image_shape))).flatten(1)
            z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
        z = z * torch.where(z.sum(1, keepdim=True) < 0, -1.0, 1.0)
        return (z * y.norm(dim=1, keepdim=True)).view(-1, *self.image_shape)

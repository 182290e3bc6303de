"""Phase retrieval: what every magnitude-measuring operator shares, and magnitudes of Gaussian measurements."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dip_lightning.operators.base import Operator
from dip_lightning.operators.compressive_sensing import CompressiveSensing


class MagnitudeMeasurements(Operator):
    """An operator that measures magnitudes, y = |A x| (+ noise), with A linear, real or complex.

    Subclasses say how ``A x`` (as :meth:`A` returns it) gives the m magnitudes (:meth:`magnitudes`)
    and is weighted per measurement (:meth:`weigh`), and what ``measurement_gain``
    E ||A x||^2 / ||x||^2 is; the spectral initialization, Net-PGD's ``lift`` and truncated
    amplitude flow are written once on these. Real signals are determined up to a global sign.
    """

    sign_ambiguous = True
    linear = False
    measurement_gain = 1.0

    def forward(self, x: Tensor) -> Tensor:
        return self.magnitudes(self.A(x))

    def magnitudes(self, Ax: Tensor) -> Tensor:  # noqa: N803
        """|A x| per measurement, (B, m), from ``A x`` as :meth:`A` returns it."""
        return Ax.abs()

    def weigh(self, Ax: Tensor, weights: Tensor) -> Tensor:  # noqa: N803
        """``A x`` with measurement j multiplied by ``weights[:, j]`` (B, m)."""
        return Ax * weights

    def row_norms(self) -> Tensor:
        """||a_j||, the norm of each row of A, (m,)."""
        raise NotImplementedError

    @torch.no_grad()
    def spectral_estimate(self, y: Tensor, truncation: float = 9.0, power_iterations: int = 100) -> Tensor:
        """Truncated spectral initialization, batched per image: (B, m) -> (B, C, H, W).

        (Chen & Candes' truncation |y_j| <= 3 * rms(y), i.e. ``truncation = 9`` on y^2.) Like
        every spectral method it needs m well above n to point the right way: on MNIST its nMSE
        is ~1.8 at f = 0.5 and ~0.9 at f = 3, so the decoder fit that follows has to do the work.

        The leading eigenvector of ``Re(A^H diag(y^2 * 1[y^2 <= truncation * mean(y^2)]) A)`` by
        power iteration, scaled to the norm the measurements imply (||x|| ~ ||y|| / sqrt(gain),
        ``measurement_gain``: 1 for the Gaussian's N(0, 1/m) entries), with its sign chosen so that
        the image is mostly non-negative (images have non-negative pixels).
        """
        power = y.pow(2)
        weights = power * (power <= truncation * power.mean(1, keepdim=True))
        rng = torch.Generator(device="cpu").manual_seed(0)
        z = torch.randn(y.shape[0], self.n, generator=rng).to(y)
        for _ in range(power_iterations):
            z = self.A_adjoint(self.weigh(self.A(z.view(-1, *self.image_shape)), weights)).flatten(1)
            z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
        z = z * torch.where(z.sum(1, keepdim=True) < 0, -1.0, 1.0)
        return (z * (y.norm(dim=1, keepdim=True) / math.sqrt(self.measurement_gain))).view(-1, *self.image_shape)


class PhaseRetrieval(MagnitudeMeasurements, CompressiveSensing):
    """y = |A x| (+ noise), with the same seeded Gaussian A (entries N(0, 1/m), m = round(ratio * n)).

    ``ratio`` may exceed 1. ``A`` and ``A_adjoint`` are the linear part; ``lift(y, A x)`` is
    ``y * sign(A x)``, the measurement with the current phase estimate, so that Net-PGD's step
    is ``x - eta A^T(A x - y * sign(A x))`` (the paper's Algorithm 2). Real signals are only
    determined up to a global sign: x and -x give the same y. E ||A x||^2 = ||x||^2.
    """

    name = "cpr"
    max_ratio = math.inf
    problem = "phase retrieval"

    def lift(self, y: Tensor, Ax: Tensor) -> Tensor:  # noqa: N803
        return y * torch.sign(Ax)

    def row_norms(self) -> Tensor:
        """||a_j||, the norm of each row of A, (m,)."""
        return self.matrix.norm(dim=1)

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
    E ||A x||^2 / ||x||^2 is; the spectral initializations (:mod:`dip_lightning.algorithms.spectral`),
    Net-PGD's ``lift`` and truncated amplitude flow are written once on these. Real signals are determined up to a global sign.
    """

    sign_ambiguous = True
    linear = False
    measures_magnitudes = True
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

    def smoothed_data_loss(self, x: Tensor, y: Tensor, smoothing: Tensor) -> Tensor:
        r"""The data loss with each magnitude smoothed at zero, per image, shape (B,):

        .. math:: \frac{1}{m} \sum_j \Bigl( \sqrt{|(A x_b)_j|^2 + \epsilon_b^2} - y_{bj} \Bigr)^2 ,
                  \quad \epsilon_b = ``smoothing[b]`` \ge 0 .

        :math:`|z|` has a kink at z = 0, where a measurement's sign flips; smoothed, the loss is
        differentiable everywhere and a gradient step can carry an estimate across the places where
        many signs are wrong (the smoothed amplitude flow of Luo, Alghamdi & Lu, 2020). An image with
        :math:`\epsilon_b = 0` gets :meth:`data_loss`'s magnitudes themselves (and their gradient).
        """
        magnitudes = self.magnitudes(self.A(x))
        smoothing = smoothing[:, None]
        # sqrt is only taken where epsilon > 0: its gradient at 0 would turn the masked branch into NaN
        squared = torch.where(smoothing > 0, magnitudes.pow(2) + smoothing.pow(2), torch.ones_like(magnitudes))
        smoothed = torch.where(smoothing > 0, squared.sqrt(), magnitudes)
        return (smoothed - y).pow(2).mean(dim=1)


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

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

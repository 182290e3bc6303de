"""Lasso: l1-regularized least squares in an orthonormal DCT or wavelet basis, solved by FISTA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from dip_lightning.algorithms.base import ReconstructionModule
from dip_lightning.chunks import Chunk
from dip_lightning.errors import DipLightningError
from dip_lightning.regularizers import make_transform


def soft_threshold(c: Tensor, threshold: float) -> Tensor:
    """The proximal map of threshold * ||c||_1: sign(c) max(|c| - threshold, 0)."""
    return torch.sign(c) * (c.abs() - threshold).clamp_min(0)


@dataclass
class FistaState:
    """FISTA's iterates of a chunk besides x: the extrapolated point and the momentum t."""

    extrapolated: Tensor  # (b, C, H, W)
    momentum: Tensor  # ()


class Lasso(ReconstructionModule):
    r"""Compressive sensing with a sparsity prior (the paper's Lasso baseline), per image:

    .. math:: \min_x \; \tfrac12 \| A x - y \|_2^2 + \lambda \| W x \|_1 ,

    W an orthonormal DCT or wavelet transform (:mod:`dip_lightning.regularizers.sparsifying`). Solved
    by FISTA (Beck & Teboulle, 2009) with the fixed step 1 / ||A||^2, one FISTA iteration per
    outer iteration, all images of a chunk at once; it starts from x = 0.

    Args:
        basis: ``dct`` or ``wavelet``.
        weight: the l1 weight lambda. Tuned on MNIST training digits (``scripts/tune_baseline.py``).
        wavelet: the orthogonal wavelet of the ``wavelet`` basis (PyWavelets name).
        **kwargs: operator, chunk_size, iterations, suspect_residual: see
            :class:`~dip_lightning.algorithms.ReconstructionModule`.
    """

    algorithm = "lasso"
    linear_only = True

    def __init__(
        self,
        *args: Any,
        basis: Literal["dct", "wavelet"] = "dct",
        weight: float = 0.01,
        wavelet: str = "db4",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if weight < 0:
            raise DipLightningError(f"weight must be non-negative, got {weight} (--model.weight)")
        self.basis = basis
        self.weight = weight
        self.transform = make_transform(basis, self.operator.image_shape, wavelet)
        self.step = 1.0 / self.operator.norm_squared()

    def initialize(self, chunk: Chunk) -> None:
        chunk.estimate = chunk.zeros()
        chunk.state = FistaState(extrapolated=chunk.estimate.clone(), momentum=torch.ones(()))

    def objective(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-image Lasso objective, (b,)."""
        return 0.5 * (self.operator.A(x) - y).pow(2).sum(1) + self.weight * self.transform(x).abs().sum(1)

    @torch.no_grad()
    def outer_step(self, chunk: Chunk) -> Tensor:
        operator, z, t = self.operator, chunk.state.extrapolated, chunk.state.momentum
        v = z - self.step * operator.A_adjoint(operator.A(z) - chunk.measurements)
        x = self.transform.inverse(soft_threshold(self.transform(v), self.step * self.weight))
        t_next = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        chunk.state = FistaState(extrapolated=x + ((t - 1) / t_next) * (x - chunk.estimate), momentum=t_next)
        chunk.estimate = x
        return self.objective(x, chunk.measurements)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "basis": self.basis, "weight": self.weight}

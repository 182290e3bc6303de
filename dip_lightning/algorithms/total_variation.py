"""Total-variation minimization (a TVAL3-like baseline), solved by Chambolle-Pock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from dip_lightning.algorithms.base import ReconstructionModule
from dip_lightning.chunks import Chunk
from dip_lightning.errors import DipLightningError
from dip_lightning.regularizers.total_variation import (
    GRADIENT_NORM_SQUARED,
    gradient,
    gradient_adjoint,
    total_variation,
)


@dataclass
class PrimalDualState:
    """Chambolle-Pock's iterates of a chunk besides x: the extrapolated x_bar and the two duals."""

    extrapolated: Tensor  # (b, C, H, W)
    data_dual: Tensor  # (b, m)
    tv_dual: Tensor  # (b, 2, C, H, W)


class TVMinimization(ReconstructionModule):
    r"""Compressive sensing with the total-variation prior, per image:

    .. math:: \min_{x \in [0, 1]^n} \; \tfrac12 \| A x - y \|_2^2 + \lambda \, \mathrm{TV}(x),

    TV isotropic (:func:`~dip_lightning.regularizers.total_variation`). With a small lambda this is the
    noiseless TV recovery that TVAL3 solves (min TV(x) s.t. Ax = y), plus the box constraint that
    every pixel lies in [0, 1], which the untrained priors enforce too (their sigmoid output).

    Solved by the primal-dual algorithm of Chambolle & Pock (2011) on K = [A; grad], with steps
    tau = sigma = 1 / ||K||, ||K||^2 <= ||A||^2 + 8; one iteration per outer iteration, for all
    images of a chunk at once. Duals: q for the data term (prox: (q - sigma y) / (1 + sigma)) and
    p for the TV term (prox: projection onto the pixelwise l2 ball of radius lambda).

    Args:
        weight: the TV weight lambda. Tuned on MNIST training digits (``scripts/tune_baseline.py``).
        **kwargs: operator, chunk_size, iterations, suspect_residual: see
            :class:`~dip_lightning.algorithms.ReconstructionModule`.
    """

    algorithm = "tv"

    linear_only = True

    def __init__(self, *args: Any, weight: float = 0.001, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if weight < 0:
            raise DipLightningError(f"weight must be non-negative, got {weight} (--model.weight)")
        self.weight = weight
        self.step = 1.0 / math.sqrt(self.operator.norm_squared() + GRADIENT_NORM_SQUARED)

    def initialize(self, chunk: Chunk) -> None:
        chunk.estimate = chunk.zeros()
        chunk.state = PrimalDualState(extrapolated=chunk.estimate.clone(), data_dual=torch.zeros_like(chunk.measurements),
                                      tv_dual=torch.zeros_like(gradient(chunk.zeros())))

    def objective(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-image objective, (b,)."""
        return 0.5 * (self.operator.A(x) - y).pow(2).sum(1) + self.weight * total_variation(x)

    @torch.no_grad()
    def outer_step(self, chunk: Chunk) -> Tensor:
        operator, sigma = self.operator, self.step
        state = chunk.state
        x_bar, q, p = state.extrapolated, state.data_dual, state.tv_dual
        q = (q + sigma * (operator.A(x_bar) - chunk.measurements)) / (1 + sigma)
        p = p + sigma * gradient(x_bar)
        p = p / (p.pow(2).sum((1, 2), keepdim=True).sqrt() / max(self.weight, 1e-30)).clamp_min(1)
        x = (chunk.estimate - self.step * (operator.A_adjoint(q) + gradient_adjoint(p))).clamp(0, 1)
        state.extrapolated, state.data_dual, state.tv_dual = 2 * x - chunk.estimate, q, p
        chunk.estimate = x
        return self.objective(x, chunk.measurements)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "weight": self.weight}


class AnchoredTV:
    r"""Per image, the x that minimizes

    .. math:: \tfrac12 \| A x - y \|_2^2 + \lambda \, \mathrm{TV}(x) + \tfrac{\rho}{2} \| x - g \|_2^2
              \quad \text{over } x \in [0, 1]^n,

    total variation with a pull of strength rho towards an anchor image g (an untrained prior's estimate: the image
    step of a half-quadratic splitting), by Chambolle-Pock on K = [A; grad] with the quadratic term in the primal
    prox, :math:`x = \Pi_{[0,1]}((u + \tau\rho g) / (1 + \tau\rho))`. rho = 0 is :class:`TVMinimization`'s problem;
    as rho grows x tends to g. Batched over images, each with its own lambda and rho (floats, or (b,) tensors).

    Args:
        operator: the linear measurement model.
    """

    def __init__(self, operator) -> None:
        self.operator = operator
        self.step = 1.0 / math.sqrt(operator.norm_squared() + GRADIENT_NORM_SQUARED)

    @torch.no_grad()
    def solve(self, y: Tensor, anchor: Tensor, weight: float | Tensor, coupling: float | Tensor, iterations: int,
              start: Tensor | None = None) -> Tensor:
        """``iterations`` primal-dual steps from ``start`` (default: the anchor) for measurements ``y`` (b, m) and
        anchors (b, C, H, W); returns x (b, C, H, W)."""
        operator, tau = self.operator, self.step
        weight = torch.as_tensor(weight, dtype=anchor.dtype, device=anchor.device).reshape(-1, 1, 1, 1)
        coupling = torch.as_tensor(coupling, dtype=anchor.dtype, device=anchor.device).reshape(-1, 1, 1, 1)
        x = (anchor if start is None else start).clone()
        x_bar, q, p = x.clone(), torch.zeros_like(y), torch.zeros_like(gradient(x))
        for _ in range(iterations):
            q = (q + tau * (operator.A(x_bar) - y)) / (1 + tau)
            p = p + tau * gradient(x_bar)
            p = p / (p.pow(2).sum((1, 2), keepdim=True).sqrt() / weight.clamp_min(1e-30)[:, None]).clamp_min(1)
            u = x - tau * (operator.A_adjoint(q) + gradient_adjoint(p))
            x_next = ((u + tau * coupling * anchor) / (1 + tau * coupling)).clamp(0, 1)
            x_bar, x = 2 * x_next - x, x_next
        return x

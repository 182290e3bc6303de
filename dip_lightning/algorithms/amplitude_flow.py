"""Truncated amplitude flow for phase retrieval, plain (TAF) or sparse in a basis (SPARTA)."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor

from dip_lightning.algorithms.base import Chunk, ReconstructionModule
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import MagnitudeMeasurements, Operator, PhaseRetrieval
from dip_lightning.priors import make_transform


class AmplitudeFlow(ReconstructionModule):
    r"""Phase retrieval from y = |A x| by truncated amplitude flow, per image.

    Without ``sparsity``: TAF (Wang, Giannakis & Eldar, 2017). With ``sparsity``: SPARTA, sparse
    truncated amplitude flow (Wang, Zhang, Giannakis, Akcakaya & Chen, 2018), here with sparsity
    in an orthonormal basis W (``dct`` or ``wavelet``) instead of the pixel basis, i.e. on the
    coefficients c = W x with the matrix A W^T. Each iteration

    .. math:: z \leftarrow H_k\big(z - \mu\, A_I^\top (A_I z - y_I \odot \operatorname{sign}(A_I z))\big),
              \qquad I = \{ i : |a_i^\top z| \ge y_i / (1 + \gamma) \},

    a gradient step on the amplitude loss (1/2) sum_i (|a_i^T z| - y_i)^2 over the measurements
    whose phase is trusted, then H_k keeps the k largest coefficients of W z (SPARTA only).
    Our A has N(0, 1/m) entries, for which the papers' step (rows N(0, I), loss scaled by 1/m) is
    mu itself; the papers assume m >= n, where ||A||^2 ~ 1. Below that ||A||^2 ~ (1 + sqrt(n/m))^2
    and the step mu diverges, so the step taken is mu / ||A||^2 (the same as the papers' for m >> n).

    Start: the orthogonality-promoting initialization of both papers: the leading eigenvector
    of sum_{i in I0} a_i a_i^T / ||a_i||^2 over the ceil(m/6) largest y_i / ||a_i||, restricted to
    the support estimate (the k largest sum_i y_i^2 (W a_i)_j^2) for SPARTA, scaled to the norm the
    measurements imply (E ||A x||^2 = ||x||^2 for the Gaussian, L ||x||^2 for L coded diffraction masks).
    With :class:`~dip_lightning.operators.CodedDiffraction` (TAF only) the rows are complex and the
    phase estimate is the phase of a_i^T z. Images are only determined up to sign; the metrics pick the sign.

    Args:
        sparsity: SPARTA's k as a fraction of the number of measurements, k = round(sparsity * m)
            (at most n); ``None`` for plain TAF.
        basis: the sparsifying basis of SPARTA: ``dct`` or ``wavelet``.
        step: mu (the papers: 0.6 for TAF, 1 for SPARTA); the step taken is mu / ||A||^2.
        truncation: gamma (the papers: 0.7 for TAF, 1 for SPARTA).
        power_iterations: iterations of the initialization's power method.
        **kwargs: operator, chunk_size, iterations, seed: see
            :class:`~dip_lightning.algorithms.ReconstructionModule`.
    """

    def check_operator(self, operator: Operator) -> None:
        super().check_operator(operator)
        if not isinstance(operator, MagnitudeMeasurements):
            raise DipLightningError(
                f"{type(self).__name__} solves phase retrieval, not {operator.name}; use --model.operator "
                "dip_lightning.operators.PhaseRetrieval (or CodedDiffraction), or another method"
            )

    def __init__(
        self,
        *args: Any,
        sparsity: float | None = None,
        basis: Literal["pixel", "dct", "wavelet"] = "dct",
        step: float = 0.6,
        truncation: float = 0.7,
        power_iterations: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if sparsity is not None and not isinstance(self.operator, PhaseRetrieval):
            raise DipLightningError("SPARTA's support estimate reads the rows of a Gaussian matrix: use it with "
                                    "PhaseRetrieval, or --model.sparsity null (TAF) with coded diffraction")
        if sparsity is not None and sparsity <= 0:
            raise DipLightningError(f"--model.sparsity must be positive (a fraction of m) or null, got {sparsity}")
        if step <= 0:
            raise DipLightningError(f"--model.step must be positive, got {step}")
        self.sparsity = sparsity
        self.basis = basis
        self.step = step
        self.step_size = step / self.operator.norm_squared()
        self.truncation = truncation
        self.power_iterations = power_iterations
        self.k = None if sparsity is None else min(self.operator.n, max(1, round(sparsity * self.operator.m)))
        self.algorithm = "taf" if sparsity is None else f"sparta-{basis}"
        self.transform = None if sparsity is None else make_transform(basis, self.operator.image_shape)

    # ------------------------------------------------------------------------- sparsity
    def keep_largest(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        """H_k in the basis: keep the k largest |coefficients| of every image (or the ``keep`` mask)."""
        if self.transform is None:
            return x
        c = self.transform(x)
        if keep is None:
            keep = self.top_k_mask(c.abs())
        return self.transform.inverse(c * keep)

    def top_k_mask(self, scores: Tensor) -> Tensor:
        mask = torch.zeros_like(scores)
        return mask.scatter_(1, scores.topk(self.k, dim=1).indices, 1.0)

    @torch.no_grad()
    def support_estimate(self, y: Tensor) -> Tensor:
        """(b, n) 0/1 mask of the k largest sum_i y_i^2 (W a_i)_j^2 per image."""
        matrix = self.operator.matrix
        scores = torch.zeros(y.shape[0], self.operator.n, dtype=torch.float64, device=y.device)
        for rows in torch.arange(matrix.shape[0], device=matrix.device).split(4096):
            coefficients = self.transform(matrix[rows].to(y.dtype).view(-1, *self.operator.image_shape)).double().pow(2)
            scores += y[:, rows].double().pow(2) @ coefficients
        return self.top_k_mask(scores.to(y.dtype))

    # ------------------------------------------------------------------------- algorithm
    @torch.no_grad()
    def initialize(self, chunk: Chunk) -> None:
        operator, y = self.operator, chunk.measurements
        row_norms = operator.row_norms().to(y)
        selected = (y / row_norms).topk(math.ceil(operator.m / 6), dim=1).indices
        weights = torch.zeros_like(y).scatter_(1, selected, 1.0) / row_norms.pow(2)
        support = None if self.transform is None else self.support_estimate(y)
        rng = torch.Generator(device="cpu").manual_seed(0)
        z = torch.randn(chunk.size, *operator.image_shape, generator=rng).to(y)
        for _ in range(self.power_iterations):
            z = self.keep_largest(z, support)
            z = z / z.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]
            z = operator.A_adjoint(operator.weigh(operator.A(z), weights))
        z = self.keep_largest(z, support)
        z = z / z.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]
        chunk.estimate = z * (y.norm(dim=1) / math.sqrt(operator.measurement_gain))[:, None, None, None]

    @torch.no_grad()
    def outer_step(self, chunk: Chunk) -> Tensor:
        operator, y, z = self.operator, chunk.measurements, chunk.estimate
        Az = operator.A(z)  # noqa: N806
        trusted = operator.magnitudes(Az) >= y / (1 + self.truncation)
        residual = operator.weigh(Az - operator.lift(y, Az), trusted.to(y))
        chunk.estimate = self.keep_largest(z - self.step_size * operator.A_adjoint(residual))
        return operator.data_loss(chunk.estimate, y)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sparsity": self.sparsity, "k": self.k, "basis": self.basis,
                "step": self.step, "truncation": self.truncation}

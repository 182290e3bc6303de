"""Truncated amplitude flow for phase retrieval, plain (TAF) or sparse in a basis (SPARTA)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from dip_lightning.algorithms.base import ReconstructionModule
from dip_lightning.algorithms.spectral import orthogonality_promoting_estimate
from dip_lightning.chunks import Chunk
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import Operator, PhaseRetrieval
from dip_lightning.regularizers import make_transform


class AmplitudeFlow(ReconstructionModule):
    r"""Phase retrieval from y = |A x| by truncated amplitude flow (TAF; Wang, Giannakis & Eldar, 2017), per image.

    Each iteration

    .. math:: z \leftarrow P\big(z - \mu\, A_I^\top (A_I z - y_I \odot \operatorname{sign}(A_I z))\big),
              \qquad I = \{ i : |a_i^\top z| \ge y_i / (1 + \gamma) \},

    a gradient step on the amplitude loss (1/2) sum_i (|a_i^T z| - y_i)^2 over the measurements
    whose phase is trusted, then P: nothing for TAF, the k largest coefficients in a basis for
    :class:`SparseAmplitudeFlow`. Our A has N(0, 1/m) entries, for which the papers' step (rows
    N(0, I), loss scaled by 1/m) is mu itself; the papers assume m >= n, where ||A||^2 ~ 1. Below that
    ||A||^2 ~ (1 + sqrt(n/m))^2 and the step mu diverges, so the step taken is mu / ||A||^2 (the same
    as the papers' for m >> n).

    Start: the orthogonality-promoting initialization
    (:func:`~dip_lightning.algorithms.spectral.orthogonality_promoting_estimate`), scaled to the norm the
    measurements imply (E ||A x||^2 = ||x||^2 for the Gaussian, L ||x||^2 for L coded diffraction masks).
    With :class:`~dip_lightning.operators.CodedDiffraction` the rows are complex and the phase estimate
    is the phase of a_i^T z. Images are only determined up to sign; the metrics pick the sign.

    Args:
        step: mu (the papers: 0.6 for TAF, 1 for SPARTA); the step taken is mu / ||A||^2.
        truncation: gamma (the papers: 0.7 for TAF, 1 for SPARTA).
        power_iterations: iterations of the initialization's power method.
        **kwargs: operator, chunk_size, iterations: see :class:`~dip_lightning.algorithms.ReconstructionModule`.
    """

    algorithm = "taf"

    def check_operator(self, operator: Operator) -> None:
        super().check_operator(operator)
        if not operator.measures_magnitudes:
            raise DipLightningError(
                f"{type(self).__name__} solves phase retrieval, not {operator.name}; use --model.operator "
                "dip_lightning.operators.PhaseRetrieval (or CodedDiffraction), or another method"
            )

    def __init__(self, *args: Any, step: float = 0.6, truncation: float = 0.7, power_iterations: int = 100,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if step <= 0:
            raise DipLightningError(f"step must be positive, got {step} (--model.step)")
        self.step = step
        self.step_size = step / self.operator.norm_squared()
        self.truncation = truncation
        self.power_iterations = power_iterations

    def project(self, z: Tensor, support: Tensor | None = None) -> Tensor:
        """P, applied after every step and in the initialization's power method (identity for TAF)."""
        return z

    def support_estimate(self, y: Tensor) -> Tensor | None:
        """What :meth:`project` is restricted to during the initialization (nothing for TAF)."""
        return None

    @torch.no_grad()
    def initialize(self, chunk: Chunk) -> None:
        y = chunk.measurements
        support = self.support_estimate(y)
        chunk.estimate = orthogonality_promoting_estimate(self.operator, y, self.power_iterations,
                                                          restrict=lambda z: self.project(z, support))

    @torch.no_grad()
    def outer_step(self, chunk: Chunk) -> Tensor:
        operator, y, z = self.operator, chunk.measurements, chunk.estimate
        Az = operator.A(z)  # noqa: N806
        trusted = operator.magnitudes(Az) >= y / (1 + self.truncation)
        residual = operator.weigh(Az - operator.lift(y, Az), trusted.to(y))
        chunk.estimate = self.project(z - self.step_size * operator.A_adjoint(residual))
        return operator.data_loss(chunk.estimate, y)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "step": self.step, "truncation": self.truncation}


class SparseAmplitudeFlow(AmplitudeFlow):
    r"""SPARTA, sparse truncated amplitude flow (Wang, Zhang, Giannakis, Akcakaya & Chen, 2018), for Gaussian
    phase retrieval, here with sparsity in an orthonormal basis W (``dct`` or ``wavelet``) instead of the pixel
    basis, i.e. on the coefficients c = W x with the matrix A W^T: :class:`AmplitudeFlow` whose projection
    H_k keeps the k largest coefficients of W z, and whose initialization is restricted to the support
    estimate, the k largest :math:`\sum_i y_i^2 (W a_i)_j^2`.

    Args:
        sparsity: k as a fraction of the number of measurements, k = round(sparsity * m) (at most n).
        basis: the sparsifying basis, ``dct`` or ``wavelet``.
        step, truncation, power_iterations, **kwargs: see :class:`AmplitudeFlow` (the paper's step is 1, its
            truncation 1).
    """

    algorithm = "sparta"

    def __init__(self, *args: Any, sparsity: float = 0.05, basis: Literal["pixel", "dct", "wavelet"] = "dct",
                 step: float = 1.0, truncation: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, step=step, truncation=truncation, **kwargs)
        if not isinstance(self.operator, PhaseRetrieval):
            raise DipLightningError("SPARTA's support estimate assumes Gaussian measurements: use it with "
                                    "PhaseRetrieval, or AmplitudeFlow (TAF) with coded diffraction")
        if not sparsity > 0:
            raise DipLightningError(f"sparsity must be positive (a fraction of m), got {sparsity} (--model.sparsity)")
        self.sparsity = sparsity
        self.basis = basis
        self.k = min(self.operator.n, max(1, round(sparsity * self.operator.m)))
        self.transform = make_transform(basis, self.operator.image_shape)

    def project(self, z: Tensor, support: Tensor | None = None) -> Tensor:
        """H_k in the basis: keep the k largest |coefficients| of every image (or those of the ``support`` mask)."""
        c = self.transform(z)
        return self.transform.inverse(c * (self.top_k_mask(c.abs()) if support is None else support))

    def top_k_mask(self, scores: Tensor) -> Tensor:
        mask = torch.zeros_like(scores)
        return mask.scatter_(1, scores.topk(self.k, dim=1).indices, 1.0)

    @torch.no_grad()
    def support_estimate(self, y: Tensor) -> Tensor:
        """(b, n) 0/1 mask of the k largest sum_i y_i^2 (W a_i)_j^2 per image."""
        scores = torch.zeros(y.shape[0], self.operator.n, dtype=torch.float64, device=y.device)
        for rows in torch.arange(self.operator.m, device=y.device).split(4096):
            coefficients = self.transform(self.operator.rows(rows).to(y.dtype)).double().pow(2)
            scores += y[:, rows].double().pow(2) @ coefficients
        return self.top_k_mask(scores.to(y.dtype))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sparsity": self.sparsity, "k": self.k, "basis": self.basis}

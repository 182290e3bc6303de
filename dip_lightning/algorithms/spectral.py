r"""Spectral initializations for phase retrieval y = |A x|: the leading eigenvector of a weighted
:math:`\operatorname{Re}(A^H \operatorname{diag}(w) A)`, per image, by power iteration.

They use the operator only through ``A``, ``A_adjoint`` and what it says about its measurements
(:class:`~dip_lightning.operators.MagnitudeMeasurements`: ``weigh``, ``row_norms``, ``measurement_gain``),
so they work for the dense Gaussian and for coded diffraction patterns alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from dip_lightning.operators import MagnitudeMeasurements


def _unit(z: Tensor) -> Tensor:
    return z / z.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]


@torch.no_grad()
def leading_eigenvector(operator: MagnitudeMeasurements, weights: Tensor, power_iterations: int = 100,
                        restrict: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Unit-norm leading eigenvector of Re(A^H diag(weights) A) per image, (B, m) -> (B, C, H, W).

    ``restrict`` (e.g. SPARTA's projection onto a support) is applied before every product. The
    start is one fixed random image (seed 0) for every image: a start drawn per chunk position would
    make an image's estimate depend on its place in the chunk wherever the power method has not
    fully converged.
    """
    restrict = restrict or (lambda z: z)
    rng = torch.Generator(device="cpu").manual_seed(0)
    start = torch.randn(1, *operator.image_shape, generator=rng).to(weights)
    z = start.expand(weights.shape[0], *operator.image_shape)
    for _ in range(power_iterations):
        z = _unit(restrict(z))
        z = operator.A_adjoint(operator.weigh(operator.A(z), weights))
    return _unit(restrict(z))


def implied_norm(operator: MagnitudeMeasurements, y: Tensor) -> Tensor:
    """||x|| as the measurements imply it, ||y|| / sqrt(E ||A x||^2 / ||x||^2), (B, 1, 1, 1)."""
    return (y.norm(dim=1) / math.sqrt(operator.measurement_gain))[:, None, None, None]


@torch.no_grad()
def truncated_spectral_estimate(operator: MagnitudeMeasurements, y: Tensor, truncation: float = 9.0,
                                power_iterations: int = 100) -> Tensor:
    r"""Truncated spectral initialization (Chen & Candes 2015), batched per image: (B, m) -> (B, C, H, W).

    The weights are :math:`y_j^2\,\mathbb{1}[y_j^2 \le \text{truncation} \cdot \operatorname{mean}(y^2)]`
    (the paper's |y_j| <= 3 rms(y) is ``truncation = 9``); the eigenvector is scaled to
    :func:`implied_norm` and given the sign that makes the image mostly non-negative (images have
    non-negative pixels). Like every spectral method it needs m well above n to point the right way:
    on MNIST its nMSE is ~1.8 at f = 0.5 and ~0.9 at f = 3, so a decoder fit that follows has to do the work.
    """
    power = y.pow(2)
    weights = power * (power <= truncation * power.mean(1, keepdim=True))
    z = leading_eigenvector(operator, weights, power_iterations)
    z = z * torch.where(z.flatten(1).sum(1) < 0, -1.0, 1.0).to(z)[:, None, None, None]
    return z * implied_norm(operator, y)


@torch.no_grad()
def orthogonality_promoting_estimate(operator: MagnitudeMeasurements, y: Tensor, power_iterations: int = 100,
                                     restrict: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    r"""The orthogonality-promoting initialization of truncated amplitude flow (Wang, Giannakis & Eldar 2017):
    the leading eigenvector of :math:`\sum_{j \in I_0} a_j a_j^H / \|a_j\|^2` over the ceil(m / 6)
    measurements with the largest :math:`y_j / \|a_j\|`, scaled to :func:`implied_norm`; (B, m) -> (B, C, H, W).
    Its sign is arbitrary (the problem's own ambiguity)."""
    row_norms = operator.row_norms().to(y)
    selected = (y / row_norms).topk(math.ceil(operator.m / 6), dim=1).indices
    weights = torch.zeros_like(y).scatter_(1, selected, 1.0) / row_norms.pow(2)
    return leading_eigenvector(operator, weights, power_iterations, restrict) * implied_norm(operator, y)

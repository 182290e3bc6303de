"""The total-variation prior: finite differences, their adjoint, and the isotropic TV norm."""

from __future__ import annotations

import torch
from torch import Tensor

# ||gradient||^2 <= 8 in 2-D (4 per direction): the bound primal-dual step sizes use
GRADIENT_NORM_SQUARED = 8.0


def gradient(x: Tensor) -> Tensor:
    """Forward differences with a zero difference across the last row/column (Neumann boundary).

    (B, C, H, W) -> (B, 2, C, H, W): vertical then horizontal differences.
    """
    vertical = torch.zeros_like(x)
    horizontal = torch.zeros_like(x)
    vertical[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    horizontal[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack([vertical, horizontal], 1)


def gradient_adjoint(p: Tensor) -> Tensor:
    """The adjoint of :func:`gradient` (minus the divergence): (B, 2, C, H, W) -> (B, C, H, W)."""
    vertical, horizontal = p[:, 0], p[:, 1]
    out = torch.zeros_like(vertical)
    out[..., :-1, :] -= vertical[..., :-1, :]
    out[..., 1:, :] += vertical[..., :-1, :]
    out[..., :, :-1] -= horizontal[..., :, :-1]
    out[..., :, 1:] += horizontal[..., :, :-1]
    return out


def total_variation(x: Tensor) -> Tensor:
    r"""Isotropic TV per image, :math:`\sum_{ij} \| (\nabla x)_{ij} \|_2` with the norm taken over
    both directions and all channels (colour TV couples the channels); shape (B,)."""
    return gradient(x).pow(2).sum((1, 2)).sqrt().flatten(1).sum(1)

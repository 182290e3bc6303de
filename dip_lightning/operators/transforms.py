"""Fast orthonormal transforms for the structured operators, on the last dimension, differentiable.

PyTorch has FFTs but no DCT; these compute the orthonormal DCT-II and its inverse (the DCT-III)
through one FFT of twice the length, O(N log N) time and O(N) memory, in the input's precision.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _dct_weights(n: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """The orthonormal scales ``w_k`` (sqrt(1/N) for k = 0, sqrt(2/N) otherwise) and the half-sample
    phases ``exp(-i pi k / 2N)``, k = 0 .. N-1."""
    k = torch.arange(n, device=like.device, dtype=like.dtype)
    weights = torch.full((n,), math.sqrt(2.0 / n), device=like.device, dtype=like.dtype)
    weights[0] = math.sqrt(1.0 / n)
    return weights, torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))


def dct(x: Tensor) -> Tensor:
    r"""Orthonormal DCT-II along the last dimension (scipy's ``dct(x, type=2, norm="ortho")``):

    .. math:: X_k = w_k \sum_{j=0}^{N-1} x_j \cos\frac{\pi k (2j + 1)}{2N}
              = w_k \,\mathrm{Re}\big(e^{-i\pi k / 2N}\, \mathrm{FFT}_{2N}(x)_k\big)

    with ``x`` zero-padded to 2N. Shape preserved; real floating input.
    """
    n = x.shape[-1]
    weights, phases = _dct_weights(n, x)
    spectrum = torch.fft.rfft(x, n=2 * n)[..., :n]
    return (spectrum * phases).real * weights


def idct(y: Tensor) -> Tensor:
    r"""The inverse (and adjoint) of :func:`dct`, the orthonormal DCT-III:

    .. math:: x_j = \sum_{k=0}^{N-1} w_k X_k \cos\frac{\pi k (2j + 1)}{2N}
              = 2N\,\mathrm{Re}\big(\mathrm{IFFT}_{2N}(w X e^{i\pi k / 2N})_j\big), \quad j < N.
    """
    n = y.shape[-1]
    weights, phases = _dct_weights(n, y)
    return (torch.fft.ifft((y * weights) * phases.conj(), n=2 * n)[..., :n]).real * (2 * n)

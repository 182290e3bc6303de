"""Linear compressive sensing with a dense Gaussian matrix."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dip_lightning.operators.base import ImageShape, Operator, num_measurements
from dip_lightning.seeding import Stream, generator


class CompressiveSensing(Operator):
    """y = A x (+ noise) with A in R^{m x n}, entries i.i.d. N(0, 1/m), m = round(ratio * n).

    The matrix is drawn on the CPU from ``seed`` (so every process and device builds the same
    A) and is shared by all images: ``A(x) = x.flatten(1) @ A^T``, ``A_adjoint(y) = y @ A``.
    Both products are accumulated in float64 and rounded back to the input's precision: BLAS
    picks different float32 kernels for different batch sizes, which would make an image's
    measurements (and, amplified over thousands of iterations, its reconstruction) depend on
    how many other images share its chunk.
    With this scaling A A^T ~ (n/m) I, so ``eta = m/n`` makes the image-space step of Net-PGD an
    approximate projection onto {x : A x = y}.
    """

    name = "cs"
    max_ratio = 1.0
    problem = "compressive sensing"

    def __init__(self, image_shape: ImageShape, ratio: float = 0.25, noise_sigma: float = 0.0, seed: int = 0) -> None:
        n = int(torch.Size(image_shape).numel())
        super().__init__(image_shape, num_measurements(ratio, n, self.max_ratio, self.problem), noise_sigma, seed)
        self.ratio = ratio
        matrix = torch.randn(self.m, self.n, generator=generator(Stream.MEASUREMENT_MATRIX, seed), dtype=torch.float64)
        self.register_buffer("matrix", matrix / self.m**0.5, persistent=False)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ratio": self.ratio}

    def _apply(self, fn, recurse=True):
        # keep the matrix in float64 when the module is cast (e.g. .float(), .half())
        matrix = self.matrix
        super()._apply(fn, recurse)
        self.matrix = matrix.to(device=self.matrix.device)
        return self

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return (x.flatten(1).double() @ self.matrix.T).to(x.dtype)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        return (y.double() @ self.matrix).to(y.dtype).view(y.shape[0], *self.image_shape)

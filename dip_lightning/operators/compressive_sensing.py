"""Linear compressive sensing with a dense Gaussian matrix."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dip_lightning.batch_invariant import rowwise_matmul
from dip_lightning.errors import DipLightningError
from dip_lightning.files import read_array
from dip_lightning.operators.base import ImageShape, Operator, num_measurements
from dip_lightning.seeding import Stream, generator

PRODUCT_DTYPES = {"highest": torch.float64, "high": torch.float32, "medium": torch.bfloat16}


class CompressiveSensing(Operator):
    """y = A x (+ noise) with A in R^{m x n}, entries i.i.d. N(0, 1/m), m = round(ratio * n).

    The matrix is drawn on the CPU from ``seed`` (so every process and device builds the same
    A) and is shared by all images: ``A(x) = x.flatten(1) @ A^T``, ``A_adjoint(y) = y @ A``.
    Where the products run in which precision follows PyTorch's float32 matmul precision when the
    operator is built (``torch.set_float32_matmul_precision``; the CLI's
    ``--float32_matmul_precision``), and the matrix is stored in that precision:

    - ``highest`` (default), *reproducible*: full float32 precision, with an image's products
      independent of its chunk mates. BLAS picks different float32 kernels for different batch
      sizes, which would make an image's measurements (and, amplified over thousands of iterations,
      its reconstruction) depend on how many other images share its chunk. On the CPU the products
      therefore run in fixed blocks of rows (:func:`~dip_lightning.batch_invariant.rowwise_matmul`,
      with a float32 copy of the matrix); on other devices in float64, rounded back to the input's
      precision. Both are bitwise the same for an image in any chunk.
    - ``high``: float32 (TF32 on GPUs that have it); half the matrix memory and traffic. An
      image's result may then differ in the last bits with its chunk mates.
    - ``medium``: bfloat16 with float32 accumulation (AMX on recent x86 CPUs, tensor cores on
      GPUs); a quarter of the memory. Relative error of a product about 2^-8.

    Float64 inputs (``--trainer.precision 64-true``) are multiplied in float64 in every mode.
    With this scaling A A^T ~ (n/m) I, so ``eta = m/n`` makes the image-space step of Net-PGD an
    approximate projection onto {x : A x = y}.

    ``matrix``: instead of drawing A, read it from a file (``.npy`` or ``.pt``, m x n with n =
    C * H * W, images flattened in (C, H, W) order): e.g. the patterns of a single-pixel camera.
    ``ratio`` is then m / n of the file and ``seed`` only seeds the noise of simulated measurements.
    Scale the measurements and the matrix alike: the methods' step sizes follow from ||A||.
    """

    name = "cs"
    max_ratio = 1.0
    problem = "compressive sensing"

    def __init__(
        self, image_shape: ImageShape, ratio: float = 0.25, noise_sigma: float = 0.0, seed: int = 0,
        matrix: str | None = None,
    ) -> None:
        n = int(torch.Size(image_shape).numel())
        given = self._matrix_from_file(matrix, image_shape) if matrix else None
        m = given.shape[0] if given is not None else num_measurements(ratio, n, self.max_ratio, self.problem)
        super().__init__(image_shape, m, noise_sigma, seed)
        self.matrix_file = matrix
        self.ratio = m / n if given is not None else ratio
        self.matmul_precision = torch.get_float32_matmul_precision()
        self._matrix_float64: Tensor | None = None  # set only while norm_squared runs
        if given is None:
            given = torch.randn(m, n, generator=generator(Stream.MEASUREMENT_MATRIX, seed), dtype=torch.float64) / m**0.5
        self.register_buffer("matrix", given.to(PRODUCT_DTYPES[self.matmul_precision]), persistent=False)
        if self.matmul_precision == "highest":  # the CPU's reproducible float32 products (see above)
            self.register_buffer("matrix_float32", self.matrix.float(), persistent=False)

    def _matrix_from_file(self, path: str, image_shape: ImageShape) -> Tensor:
        matrix = read_array(path, "measurement matrix", "--model.operator.matrix")
        n = int(torch.Size(image_shape).numel())
        shape = "x".join(map(str, image_shape))
        if matrix.dim() != 2 or matrix.shape[1] != n:
            raise DipLightningError(
                f"measurement matrix {path} has shape {tuple(matrix.shape)}, but {shape} images need an m x {n} "
                f"matrix (one row per measurement, one column per pixel); fix the file or the image shape"
            )
        if matrix.shape[0] > n * self.max_ratio:
            raise DipLightningError(f"measurement matrix {path} has {matrix.shape[0]} rows, more than the {n} "
                                    f"pixels {self.problem} can use; drop rows")
        if not torch.isfinite(matrix).all():
            raise DipLightningError(f"measurement matrix {path} contains NaN or Inf")
        return matrix

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ratio": self.ratio, "matrix": self.matrix_file,
                "matmul_precision": self.matmul_precision}

    def shape_hint(self) -> str:
        source = f"the matrix {self.matrix_file}" if self.matrix_file else f"--model.operator.ratio {self.ratio:g}"
        return f"the number of measurements comes from {source}: use the matrix the measurements were taken with"

    def _apply(self, fn, recurse=True):
        # keep the matrices in their precision when the module is cast (e.g. .float(), .double())
        before = dict(self.named_buffers(recurse=False))
        super()._apply(fn, recurse)
        for name, matrix in before.items():
            setattr(self, name, matrix.to(device=getattr(self, name).device))
        return self

    @torch.no_grad()
    def measure(self, x: Tensor, index: Tensor) -> Tensor:
        # the measurements are exact products with the stored matrix, whatever the fitting precision
        return self.add_noise(self.forward(x.double()).to(x.dtype), index)

    def _product(self, v: Tensor, transposed: bool) -> Tensor:
        """``v @ A^T`` (``transposed``) or ``v @ A``, (B, k) -> (B, p), in the mode's precision, rounded to ``v``'s dtype."""
        if self.matmul_precision == "highest" and v.device.type == "cpu" and v.dtype != torch.float64:
            matrix = self.matrix_float32.T if transposed else self.matrix_float32
            with torch.autocast("cpu", enabled=False):  # a mixed-precision Trainer would make it bfloat16
                return rowwise_matmul(v.float(), matrix).to(v.dtype)
        dtype = torch.float64 if v.dtype == torch.float64 else self.matrix.dtype
        matrix = self._matrix_float64 if dtype == torch.float64 and self._matrix_float64 is not None else self.matrix
        return (v.to(dtype) @ (matrix.T if transposed else matrix).to(dtype)).to(v.dtype)

    @torch.no_grad()
    def norm_squared(self, iterations: int = 500, margin: float = 1.01) -> float:
        """:meth:`Operator.norm_squared`'s float64 power iteration with the matrix converted to float64 once, not at
        each of its 2 x ``iterations`` products (in ``medium`` mode the conversions were most of its time)."""
        self._matrix_float64 = self.matrix.double()
        try:
            return super().norm_squared(iterations, margin)
        finally:
            self._matrix_float64 = None

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return self._product(x.flatten(1), transposed=True)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        return self._product(y, transposed=False).view(y.shape[0], *self.image_shape)

    def rows(self, indices: Tensor) -> Tensor:
        """The rows a_j of A for the measurements ``indices`` as images, A^T e_j: (len(indices), C, H, W)."""
        return self.matrix[indices.to(self.matrix.device)].view(-1, *self.image_shape)

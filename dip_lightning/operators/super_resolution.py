"""Super-resolution: the image is observed at a lower resolution."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape, Operator


class SuperResolution(Operator):
    """y = D(x): x (C, H, W) low-pass filtered and subsampled by ``factor`` to (C, H/f, W/f), flattened.

    Kernels (both linear, both the usual anti-aliased downsamplers):

    - ``bicubic``: Keys' cubic kernel (a = -0.5) stretched by the factor, i.e. a support of 4f
      pixels per axis, applied separably; this is ``torch.nn.functional.interpolate(x, mode="bicubic",
      antialias=True)``, the same as PIL's and torchvision's anti-aliased bicubic resize.
    - ``box``: the mean of each f x f block (area downsampling).

    ``A_adjoint`` is the exact adjoint of ``A``, obtained as its vector-Jacobian product (A is
    linear, so its Jacobian is A itself).

    Args:
        factor: 2, 4 or 8; H and W must be multiples of it.
        kernel: ``bicubic`` or ``box``.
        noise_sigma, seed: see :class:`~dip_lightning.operators.Operator`.
    """

    name = "superres"

    def __init__(
        self, image_shape: ImageShape, factor: int = 4, kernel: Literal["bicubic", "box"] = "bicubic",
        noise_sigma: float = 0.0, seed: int = 0,
    ) -> None:
        channels, height, width = (int(s) for s in image_shape)
        if factor not in (2, 4, 8):
            raise DipLightningError(f"super-resolution factor must be 2, 4 or 8, got {factor}")
        if kernel not in ("bicubic", "box"):
            raise DipLightningError(f"unknown kernel {kernel!r}; choose bicubic or box")
        if height % factor or width % factor:
            raise DipLightningError(
                f"images of {height}x{width} pixels cannot be downsampled by {factor}: height and width must be "
                f"multiples of it; change the datamodule's image size or --model.operator.factor"
            )
        self.low_shape = (channels, height // factor, width // factor)
        super().__init__(image_shape, channels * (height // factor) * (width // factor), noise_sigma, seed)
        self.factor = factor
        self.kernel = kernel

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "factor": self.factor, "kernel": self.kernel}

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return self.low_shape

    def shape_hint(self) -> str:
        return (f"for low-resolution images of your own, the reconstruction is {self.factor} times larger: pass "
                f"--data.scale {self.factor} (the same as --model.operator.factor)")

    def downsample(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H/f, W/f)."""
        if self.kernel == "box":
            return F.avg_pool2d(x, self.factor)
        return F.interpolate(x, size=self.low_shape[1:], mode="bicubic", antialias=True, align_corners=False)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return self.downsample(x).flatten(1)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        point = y.new_zeros(y.shape[0], *self.image_shape)
        _, pullback = torch.func.vjp(self.A, point)
        return pullback(y)[0]

    def preview(self, y: Tensor) -> Tensor:
        """The low-resolution image, enlarged by pixel repetition."""
        return y.view(-1, *self.low_shape).repeat_interleave(self.factor, 2).repeat_interleave(self.factor, 3)

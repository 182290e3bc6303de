"""Inpainting: only the pixels of a mask are observed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape, Operator
from dip_lightning.seeding import Stream, generator


class Inpainting(Operator):
    """y = the observed pixels of x (all channels of a kept pixel), m = C * (kept pixels).

    ``A`` selects the kept entries of x flattened, ``A_adjoint`` puts y back in place with zeros
    at the missing pixels (so ``A A^T = I`` and ``A^T A`` is the 0/1 mask). The mask is the same
    for every image, like the matrix of compressive sensing: either ``round(kept * H * W)``
    pixels drawn uniformly at random from ``seed``, or a mask image file of size H x W whose
    non-zero pixels are the observed ones (``kept`` is then ignored and recomputed from the file).

    Args:
        kept: fraction of the pixels observed, in (0, 1] (0.5: half the pixels missing).
        mask: path of a mask image (PNG, ...; white = observed), instead of a random mask.
        noise_sigma, seed: see :class:`~dip_lightning.operators.Operator`.
    """

    name = "inpaint"
    orthonormal_rows = True

    def __init__(
        self, image_shape: ImageShape, kept: float = 0.5, mask: str | None = None, noise_sigma: float = 0.0,
        seed: int = 0,
    ) -> None:
        channels, height, width = (int(s) for s in image_shape)
        observed = self._mask_from_file(mask, height, width) if mask else self._random_mask(kept, height, width, seed)
        super().__init__(image_shape, channels * int(observed.sum()), noise_sigma, seed)
        self.mask_file = mask
        self.kept = float(observed.float().mean())
        self.register_buffer("mask", observed.expand(channels, height, width).clone(), persistent=False)
        self.register_buffer("observed_entries", self.mask.flatten().nonzero().squeeze(1), persistent=False)

    @staticmethod
    def _random_mask(kept: float, height: int, width: int, seed: int) -> Tensor:
        if not 0 < kept <= 1:
            raise DipLightningError(f"kept fraction {kept!r} is outside (0, 1]; e.g. --model.operator.kept 0.5")
        number = max(1, round(kept * height * width))
        chosen = torch.randperm(height * width, generator=generator(Stream.INPAINTING_MASK, seed))[:number]
        observed = torch.zeros(height * width, dtype=torch.bool)
        observed[chosen] = True
        return observed.view(1, height, width)

    @staticmethod
    def _mask_from_file(path: str, height: int, width: int) -> Tensor:
        if Path(path).is_dir():
            raise DipLightningError(
                f"--model.operator.mask {path} is a folder; the mask is one image shared by every image of the run. "
                "For a different mask per image, run each image (a folder of one) with its own mask file"
            )
        if not Path(path).is_file():
            raise DipLightningError(f"mask file {path} not found; pass an existing image with --model.operator.mask")
        try:
            with Image.open(path) as image:
                array = np.asarray(image.convert("L"))
        except OSError as error:
            raise DipLightningError(f"mask file {path} is not a readable image ({error})") from error
        if array.shape != (height, width):
            raise DipLightningError(
                f"mask {path} is {array.shape[0]}x{array.shape[1]} pixels but the images are {height}x{width}; "
                "use a mask of the images' size (after the datamodule's crop and resize)"
            )
        observed = torch.from_numpy(array > 0)
        if not observed.any():
            raise DipLightningError(f"mask {path} observes no pixel (it is all black); white marks observed pixels")
        return observed.view(1, height, width)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kept": self.kept, "mask": self.mask_file}

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return self.image_shape  # a photo whose missing pixels hold anything (they are not read)

    def vectorize(self, measured: Tensor) -> Tensor:
        return self.A(measured)

    def shape_hint(self) -> str:
        return "the mask (--model.operator.mask) must have the size of the images"

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return x.flatten(1).index_select(1, self.observed_entries)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        out = y.new_zeros(y.shape[0], self.n)
        return out.index_copy(1, self.observed_entries, y).view(y.shape[0], *self.image_shape)

    def norm_squared(self, iterations: int = 0, margin: float = 1.0) -> float:
        return 1.0

    def preview(self, y: Tensor) -> Tensor:
        return self.A_adjoint(y)  # the observed pixels, black where missing

"""Hand-crafted priors: orthonormal transforms in which natural images are nearly sparse."""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

from dip_lightning.errors import DipLightningError


def dct_matrix(size: int) -> Tensor:
    r"""The orthonormal DCT-II matrix D (size x size), float64:
    :math:`D_{ki} = \sqrt{2/N}\, c_k \cos(\pi (2i + 1) k / 2N)`, :math:`c_0 = 1/\sqrt2`, else 1."""
    k = torch.arange(size, dtype=torch.float64)[:, None]
    i = torch.arange(size, dtype=torch.float64)[None, :]
    matrix = math.sqrt(2.0 / size) * torch.cos(math.pi * (2 * i + 1) * k / (2 * size))
    matrix[0] /= math.sqrt(2.0)
    return matrix


class OrthonormalTransform(nn.Module):
    """An orthonormal linear map W between images (B, C, H, W) and coefficients (B, n).

    ``forward`` is the analysis c = W x, ``inverse`` the synthesis x = W^T c; W^T W = W W^T = I,
    so ``inverse`` is also the adjoint of ``forward``, and ||W x|| = ||x||.
    """

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        self.n = math.prod(self.image_shape)

    def inverse(self, coefficients: Tensor) -> Tensor:
        raise NotImplementedError


class PixelBasis(OrthonormalTransform):
    """The identity: images that are sparse themselves (e.g. MNIST digits on a black background)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)

    def inverse(self, coefficients: Tensor) -> Tensor:
        return coefficients.reshape(-1, *self.image_shape)


class DCT2d(OrthonormalTransform):
    """Separable orthonormal 2-D DCT-II of every channel: c = D_H X D_W^T (flattened)."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__(image_shape)
        _, height, width = self.image_shape
        self.register_buffer("rows", dct_matrix(height), persistent=False)
        self.register_buffer("cols", dct_matrix(width), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (self.rows.to(x.dtype) @ x @ self.cols.T.to(x.dtype)).flatten(1)

    def inverse(self, coefficients: Tensor) -> Tensor:
        c = coefficients.view(-1, *self.image_shape)
        return self.rows.T.to(c.dtype) @ c @ self.cols.to(c.dtype)


class Wavelet2d(OrthonormalTransform):
    """Orthonormal 2-D discrete wavelet transform of every channel (ptwt's boundary wavelets).

    ptwt's matrix transform orthogonalizes the filters at the image border (Gram-Schmidt/QR),
    so the transform has exactly n coefficients and is orthonormal for any image size, unlike
    zero-padded or periodic convolution transforms. Coefficients are ordered coarse to fine.
    (The orthogonalized boundary filters lose vanishing moments: an image that is smooth but
    non-zero at the border leaks some energy into fine-scale border coefficients.)

    Args:
        wavelet: a PyWavelets name of an orthogonal wavelet (``haar``, ``db2``, ``db4``, ``sym4``...).
        levels: decomposition levels; default the most that ptwt allows for the image size.
    """

    def __init__(self, image_shape: tuple[int, int, int], wavelet: str = "db4", levels: int | None = None) -> None:
        super().__init__(image_shape)
        import ptwt
        import pywt
        from ptwt.constants import WaveletDetailTuple2d

        self._detail = WaveletDetailTuple2d

        if wavelet not in pywt.wavelist(kind="discrete") or not pywt.Wavelet(wavelet).orthogonal:
            raise DipLightningError(f"wavelet {wavelet!r} is not an orthogonal PyWavelets wavelet; try db4, db2, haar or sym4")
        self.levels = levels
        self.analysis = ptwt.MatrixWavedec2(wavelet, level=levels)
        self.synthesis = ptwt.MatrixWaverec2(wavelet)
        self._shapes: list[torch.Size] | None = None

    def forward(self, x: Tensor) -> Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # torch's notes on sparse tensors
            coefficients = self.analysis(x.flatten(0, 1))  # (B*C, H, W): every channel alike
        parts = [coefficients[0], *(band for detail in coefficients[1:] for band in detail)]
        self._shapes = [p.shape[1:] for p in parts]
        return torch.cat([p.flatten(1) for p in parts], 1).view(x.shape[0], -1)

    def inverse(self, coefficients: Tensor) -> Tensor:
        if self._shapes is None:
            self.forward(torch.zeros(1, *self.image_shape, device=coefficients.device, dtype=coefficients.dtype))
        channels = self.image_shape[0]
        flat = coefficients.reshape(coefficients.shape[0] * channels, -1)
        sizes = [math.prod(s) for s in self._shapes]
        parts = [p.reshape(-1, *s) for p, s in zip(flat.split(sizes, 1), self._shapes)]
        nested = [parts[0], *(self._detail(*parts[i : i + 3]) for i in range(1, len(parts), 3))]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            images = self.synthesis(nested)
        return images.reshape(-1, *self.image_shape)


def make_transform(basis: str, image_shape: tuple[int, int, int], wavelet: str = "db4") -> OrthonormalTransform:
    """The orthonormal sparsifying transform called ``basis`` (``pixel``, ``dct`` or ``wavelet``)."""
    if basis == "pixel":
        return PixelBasis(image_shape)
    if basis == "dct":
        return DCT2d(image_shape)
    if basis == "wavelet":
        return Wavelet2d(image_shape, wavelet)
    raise DipLightningError(f"unknown basis {basis!r}; choose pixel, dct or wavelet")

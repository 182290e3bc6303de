"""Phase retrieval from coded diffraction patterns: O(L n log n) time and O(L n) memory."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape
from dip_lightning.operators.phase_retrieval import MagnitudeMeasurements
from dip_lightning.seeding import Stream, generator


class CodedDiffraction(MagnitudeMeasurements):
    r"""y = |A x| (+ noise): the magnitudes of the Fourier transforms of the image seen through L random masks.

    .. math:: (A x)_l = F(M_l \odot x), \qquad l = 1 \dots L

    the coded diffraction patterns of Candes, Li & Soltanolkotabi (2015): ``F`` is the orthonormal
    2-D FFT of each colour channel, and every mask entry is ``d u`` with a phase ``u`` uniform on
    {1, -1, i, -i} and a magnitude ``d`` of sqrt(2)/2 (probability 0.8) or sqrt(3) (0.2), so that
    E|M|^2 = 1 and E[A^H A] = L I. Masks are drawn on the CPU from ``seed``. ``masks`` = L gives
    m = L n magnitudes; ``kept`` < 1 keeps a random subset of round(kept L n) of them (compressive
    coded diffraction, m < n when kept < 1/L).

    Complex arithmetic stays inside: ``A`` returns the complex measurements as real vectors of
    length 2m (real parts, then imaginary parts), ``A_adjoint`` takes such vectors and returns the
    real part of A^H (the adjoint for real images), ``forward`` the m magnitudes. ``lift(y, A x)`` is
    ``y`` times the phase of ``A x``, so Net-PGD's step ``x - eta A^T(A x - lift(y, A x))`` is the
    paper's phase-retrieval step. Real images are determined up to a global sign (y(x) = y(-x)).
    The spectral initializations are :mod:`dip_lightning.algorithms.spectral`.
    Time per image O(L n log n), memory O(L n) for the masks (complex128).
    """

    name = "cdp"

    @property
    def range_size(self) -> int:
        return 2 * self.m

    def __init__(
        self, image_shape: ImageShape, masks: int = 2, kept: float = 1.0, noise_sigma: float = 0.0, seed: int = 0,
    ) -> None:
        n = int(torch.Size(image_shape).numel())
        if masks < 1:
            raise DipLightningError(f"masks must be at least 1, got {masks} (--model.operator.masks)")
        if not 0 < kept <= 1:
            raise DipLightningError(f"kept must lie in (0, 1] (the fraction of the {masks * n} coded diffraction "
                                    f"magnitudes measured), got {kept} (--model.operator.kept)")
        m = max(1, round(kept * masks * n))
        super().__init__(image_shape, m, noise_sigma, seed)
        self.masks, self.kept_fraction = masks, kept
        rng = generator(Stream.MEASUREMENT_MATRIX, seed)
        shape = (masks, *self.image_shape)
        phase = torch.randint(0, 4, shape, generator=rng).double() * (math.pi / 2)
        magnitude = torch.full(shape, math.sqrt(0.5), dtype=torch.float64)
        magnitude[torch.rand(shape, generator=rng, dtype=torch.float64) >= 0.8] = math.sqrt(3.0)
        self.register_buffer("mask", torch.polar(magnitude, phase).to(torch.complex128), persistent=False)
        kept_index = torch.randperm(masks * n, generator=rng)[:m].sort().values if m < masks * n else None
        self.register_buffer("kept", kept_index, persistent=False)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "masks": self.masks, "kept": self.kept_fraction}

    def shape_hint(self) -> str:
        return (f"the number of measurements is masks x kept x pixels ({self.masks} x {self.kept_fraction:g} x {self.n}): "
                "use the masks, kept fraction and seed the measurements were taken with")

    def _complex_dtype(self, t: Tensor) -> torch.dtype:
        return torch.complex128 if t.dtype == torch.float64 else torch.complex64

    def coded_fft(self, x: Tensor) -> Tensor:
        """The complex measurements A x, (B, m), in the complex type matching ``x``."""
        dtype = self._complex_dtype(x)
        z = torch.fft.fft2(x.to(dtype)[:, None] * self.mask.to(dtype), norm="ortho").flatten(1)
        return z if self.kept is None else z[:, self.kept]

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        z = self.coded_fft(x)
        return torch.cat([z.real, z.imag], dim=1).to(x.dtype)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        dtype = self._complex_dtype(y)
        z = torch.complex(y[:, : self.m], y[:, self.m :]).to(dtype)
        if self.kept is not None:
            z = z.new_zeros(y.shape[0], self.masks * self.n).index_copy(1, self.kept, z)
        images = torch.fft.ifft2(z.view(-1, self.masks, *self.image_shape), norm="ortho")
        return (images * self.mask.conj().to(dtype)).sum(1).real.to(y.dtype)

    def forward(self, x: Tensor) -> Tensor:  # |A x| without the real-vector round trip
        return self.coded_fft(x).abs().to(x.dtype)

    @torch.no_grad()
    def measure(self, x: Tensor, index: Tensor) -> Tensor:
        return self.add_noise(self.forward(x.double()).to(x.dtype), index)

    def lift(self, y: Tensor, Ax: Tensor) -> Tensor:  # noqa: N803
        """``y`` times the phase of ``A x``, as a real 2m vector like ``A x``."""
        z = torch.complex(Ax[:, : self.m], Ax[:, self.m :])
        phase = torch.sgn(z)
        return torch.cat([y * phase.real, y * phase.imag], dim=1)

    @property
    def measurement_gain(self) -> float:
        """E ||A x||^2 / ||x||^2 = L * kept (E|M|^2 = 1, orthonormal FFT)."""
        return self.masks * self.kept_fraction

    def magnitudes(self, Ax: Tensor) -> Tensor:  # noqa: N803
        """|A x| per measurement, (B, m), from ``A x`` as :meth:`A` returns it (real parts, imaginary parts)."""
        return torch.complex(Ax[:, : self.m], Ax[:, self.m :]).abs()

    def weigh(self, Ax: Tensor, weights: Tensor) -> Tensor:  # noqa: N803
        """``A x`` with measurement j (its real and imaginary part) multiplied by ``weights[:, j]``."""
        return Ax * torch.cat([weights, weights], dim=1)

    def row_norms(self) -> Tensor:
        """||a_j|| for each measurement: row (l, c, frequency) of A is the mask M_{l,c} times a Fourier
        row of norm 1/sqrt(HW) per pixel, so ||a_j||^2 is the mean of |M_{l,c}|^2 over the pixels."""
        per_channel = self.mask.abs().pow(2).mean(dim=(-2, -1)).sqrt().real.float()  # (L, C)
        pixels = self.image_shape[1] * self.image_shape[2]
        norms = per_channel[..., None].expand(-1, -1, pixels).flatten()
        return norms if self.kept is None else norms[self.kept]

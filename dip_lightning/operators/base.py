"""Measurement operators: the forward model y = forward(x) + noise and its linear part A, A^T."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from dip_lightning.errors import DipLightningError
from dip_lightning.seeding import Stream, generator

ImageShape = tuple[int, int, int]


class Operator(nn.Module):
    """A batched measurement model on images of shape (C, H, W).

    Subclasses implement the linear part ``A`` (``(B, C, H, W) -> (B, m)``) and its adjoint
    ``A_adjoint`` (``(B, m) -> (B, C, H, W)``). ``forward`` is the noiseless measurement model
    (``A`` itself for linear problems, ``|A x|`` for phase retrieval). Measurements reach a
    reconstruction in one of two ways: simulated from clean images by :meth:`measure`, which adds
    the measurement noise, ``y = forward(x) + noise_sigma * e`` with ``e ~ N(0, I)`` drawn for each
    image from ``(seed, dataset index)`` alone; or measured by the user, given as they are to
    :meth:`observe` (shape ``measurement_shape``: a vector, or an image for the restoration problems). ``lift`` maps a measurement back into the range
    of ``A`` given the current ``A x``, so that one gradient step
    ``x - eta * A^T(A x - lift(y, A x))`` serves every problem.

    Args:
        image_shape: (C, H, W) of the images (the CLI links it from the datamodule).
        num_measurements: m.
        noise_sigma: standard deviation of additive Gaussian noise on y (pixel values in [0, 1]).
        seed: seed of the operator's randomness (matrix, mask) and of the noise.
    """

    name = "operator"  # short problem name recorded in summaries
    sign_ambiguous = False  # True where x and -x give the same measurements
    linear = True  # False where forward is not A itself
    orthonormal_rows = False  # True where A A^T = I, so that x + A^T(y - A x) projects onto {x : A x = y}
    measures_magnitudes = False  # True where y = |A x| (phase retrieval): smoothed losses, spectral starts, lift

    def __init__(self, image_shape: ImageShape, num_measurements: int, noise_sigma: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise DipLightningError(f"image_shape must be (channels, height, width), got {tuple(image_shape)}")
        if noise_sigma is not None and not noise_sigma >= 0:
            raise DipLightningError(f"noise_sigma must be non-negative, got {noise_sigma}")
        self.image_shape = tuple(int(s) for s in image_shape)
        self.n = math.prod(self.image_shape)
        self.m = int(num_measurements)
        self.noise_sigma = None if noise_sigma is None else float(noise_sigma)
        self.seed = seed

    def describe(self) -> dict[str, Any]:
        """What identifies the measurements (recorded in summaries, compared on resume)."""
        return {"problem": self.name, "num_measurements": self.m, "noise_sigma": self.noise_sigma,
                "operator_seed": self.seed}

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        """Shape of one image's measurements as a user holds them: ``(m,)`` for a vector, an image
        shape where the measurements are an image (a noisy or masked photo, a low-resolution image)."""
        return (self.m,)

    @property
    def range_size(self) -> int:
        """Length of ``A(x)`` per image: m, or 2m where the measurements are complex (real parts, then
        imaginary parts: :class:`~dip_lightning.operators.CodedDiffraction`)."""
        return self.m

    def observe(self, measured: Tensor, source: str = "the measurements") -> Tensor:
        """Given measurements, (B, *measurement_shape) or (B, m), as the vector y (B, m) that
        ``forward`` would produce; nothing is added. ``source`` names the data in errors."""
        shape = tuple(measured.shape[1:])
        if shape not in (tuple(self.measurement_shape), (self.m,)):
            wanted = "x".join(map(str, self.measurement_shape))
            raise DipLightningError(
                f"{source} have shape {'x'.join(map(str, shape))} per image, but {self.name} of "
                f"{'x'.join(map(str, self.image_shape))} images measures {wanted}; {self.shape_hint()}"
            )
        if not torch.isfinite(measured).all():
            raise DipLightningError(f"{source} contain NaN or Inf; fix or drop those values")
        return self.vectorize(measured) if shape == tuple(self.measurement_shape) else measured

    def vectorize(self, measured: Tensor) -> Tensor:
        """(B, *measurement_shape) -> (B, m); overridden where the measurement image holds more than y."""
        return measured.reshape(measured.shape[0], -1)

    def shape_hint(self) -> str:
        """How to fix measurements whose shape does not fit (said in the error)."""
        return "check --model.operator and the image shape (--data.image_shape)"

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 (the operator's conventional name)
        raise NotImplementedError

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Noiseless measurements A(x), shape (B, m)."""
        return self.A(x)

    @torch.no_grad()
    def measure(self, x: Tensor, index: Tensor) -> Tensor:
        """Noisy measurements of the images ``x`` (B, C, H, W) with dataset indices ``index`` (B,)."""
        return self.add_noise(self.forward(x), index)

    def add_noise(self, y: Tensor, index: Tensor) -> Tensor:
        """``y + noise_sigma * e`` with ``e ~ N(0, I)`` drawn per image from (seed, dataset index)."""
        if not self.noise_sigma:
            return y
        noise = torch.stack([torch.randn(y.shape[1:], generator=generator(Stream.MEASUREMENT_NOISE, self.seed, i), dtype=y.dtype)
                             for i in index.tolist()])
        return y + self.noise_sigma * noise.to(y.device)

    def preview(self, y: Tensor) -> Tensor | None:
        """The measurements as images (B, C, H, W) for the results grid, or None where they are not images."""
        return None

    def lift(self, y: Tensor, Ax: Tensor) -> Tensor:  # noqa: N803
        """The point in A's range that the measurement ``y`` asks ``A x`` to be (here: ``y``)."""
        return y

    def data_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-image data fidelity ``mean_j (y_j - forward(x)_j)^2``, shape (B,)."""
        return (self.forward(x) - y).pow(2).mean(dim=1)

    @torch.no_grad()
    def norm_squared(self, iterations: int = 500, margin: float = 1.01) -> float:
        """||A||_2^2, the largest eigenvalue of A^T A, times ``margin``: the Lipschitz constant of
        the gradient of (1/2)||A x - y||^2, which fixes the baselines' step sizes. Power iteration
        (float64) approaches it from below, so the margin keeps the steps on the safe side."""
        rng = torch.Generator(device="cpu").manual_seed(0)
        device = next(self.buffers(), torch.empty(0)).device
        x = torch.randn(1, *self.image_shape, generator=rng, dtype=torch.float64).to(device)
        estimate = 0.0
        for _ in range(iterations):
            x = self.A_adjoint(self.A(x / x.norm()))
            estimate = float(x.norm())
        return estimate * margin

    def relative_residual(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-image ``||y - forward(x)|| / ||y||``, shape (B,)."""
        return (self.forward(x) - y).norm(dim=1) / y.norm(dim=1).clamp_min(1e-12)


def num_measurements(ratio: float, n: int, max_ratio: float, problem: str) -> int:
    """m = round(ratio * n), validated against the problem's allowed range (0, max_ratio]."""
    if not (0.0 < ratio <= max_ratio) or math.isnan(ratio):
        interval = f"(0, {max_ratio:g}]" if math.isfinite(max_ratio) else "(0, inf)"
        raise DipLightningError(
            f"compression ratio {ratio!r} is outside {interval} for {problem}; "
            f"pass --model.operator.ratio with a value in {interval}, e.g. --model.operator.ratio 0.25"
        )
    return max(1, round(ratio * n))

"""Classical (non-learned, no prior network) restoration by scikit-image, for comparison with untrained priors."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dip_lightning.algorithms.base import Chunk, ReconstructionModule
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import Denoising, Inpainting, Operator, SuperResolution

Method = Literal["denoise_tv_chambolle", "denoise_wavelet", "denoise_nl_means", "inpaint_biharmonic", "bicubic"]
OPERATOR_OF: dict[str, type[Operator]] = {
    "denoise_tv_chambolle": Denoising, "denoise_wavelet": Denoising, "denoise_nl_means": Denoising,
    "inpaint_biharmonic": Inpainting, "bicubic": SuperResolution,
}


class ClassicalRestoration(ReconstructionModule):
    """A classical restoration method applied to each image's measurements, in one step.

    - ``denoise_tv_chambolle``: ``skimage.restoration.denoise_tv_chambolle(y, weight)``, the TV-regularized
      denoiser :math:`\\min_x \\tfrac12\\|x - y\\|^2 + w\\,\\mathrm{TV}(x)` (Chambolle's projection algorithm).
    - ``denoise_wavelet``: ``skimage.restoration.denoise_wavelet`` with the known noise sigma,
      BayesShrink soft thresholding, colour images in YCbCr (scikit-image's recommended settings).
    - ``denoise_nl_means``: ``skimage.restoration.denoise_nl_means`` with the known sigma,
      h = 0.6 sigma, 5x5 patches, search distance 6, fast mode (scikit-image's example settings).
    - ``inpaint_biharmonic``: ``skimage.restoration.inpaint_biharmonic`` of the missing pixels.
    - ``bicubic``: bicubic interpolation of the low-resolution image by the operator's factor
      (``torch.nn.functional.interpolate(mode="bicubic")``, clipped to [0, 1]).

    The noise level of the denoisers is the operator's ``noise_sigma`` (known, as for the other
    methods' tuning); where it is ``null`` (the user's own noisy photos), scikit-image's
    ``estimate_sigma`` of each image. Runs on the CPU, image by image (scikit-image is not batched), in one outer
    iteration: a chunk is finished after its first step whatever the iteration budget.

    Args:
        method: one of the above; it must match the operator (denoisers: ``Denoising``, biharmonic:
            ``Inpainting``, bicubic: ``SuperResolution``).
        options: further keyword arguments of the scikit-image function, overriding the above
            (e.g. ``{weight: 0.08}`` for TV, ``{wavelet: db2}`` for wavelets).
        operator, chunk_size, seed: see :class:`~dip_lightning.algorithms.ReconstructionModule`.
        iterations: 1 (the method is one step).
    """

    def __init__(self, operator: Operator, method: Method = "denoise_tv_chambolle",
                 options: dict[str, Any] | None = None, chunk_size: int = 16, iterations: int = 1,
                 seed: int = 0) -> None:
        if method not in OPERATOR_OF:
            raise DipLightningError(f"unknown classical method {method!r}; choose one of {', '.join(OPERATOR_OF)}")
        self.method = method
        super().__init__(operator, chunk_size=chunk_size, iterations=iterations, seed=seed)
        self.algorithm = method
        self.options = dict(options or {})

    def check_operator(self, operator: Operator) -> None:
        super().check_operator(operator)
        needed = OPERATOR_OF[self.method]
        if not isinstance(operator, needed):
            raise DipLightningError(
                f"{self.method} needs the {needed.__name__} operator, not {type(operator).__name__}; "
                f"use --model.operator dip_lightning.operators.{needed.__name__} or another method"
            )

    def initialize(self, chunk: Chunk) -> None:
        chunk.estimate = chunk.zeros()

    def converged(self, chunk: Chunk) -> bool:
        return chunk.iteration >= 1  # the method is a single step

    @torch.no_grad()
    def outer_step(self, chunk: Chunk) -> Tensor:
        operator, y = self.operator, chunk.measurements
        if self.method == "bicubic":
            low = y.view(-1, *operator.low_shape)
            chunk.estimate = F.interpolate(low, scale_factor=operator.factor, mode="bicubic",
                                           align_corners=False).clamp(0, 1)
        else:
            observed = operator.A_adjoint(y)
            chunk.estimate = torch.stack([self.restore(image) for image in observed]).to(y)
        return operator.data_loss(chunk.estimate, chunk.measurements)

    def restore(self, image: Tensor) -> Tensor:
        """One image (C, H, W) in image space (noisy, or zero at missing pixels) -> its restoration."""
        from skimage import restoration

        colour = image.shape[0] == 3
        array = image.permute(1, 2, 0).double().cpu().numpy()
        channel_axis = -1 if colour else None
        if not colour:
            array = array[..., 0]
        sigma = self.operator.noise_sigma
        if sigma is None:  # the user's own noisy images with no stated noise level
            sigma = float(np.mean(restoration.estimate_sigma(array, channel_axis=channel_axis)))
        if self.method == "denoise_tv_chambolle":
            out = restoration.denoise_tv_chambolle(array, **{"weight": 0.1, **self.options}, channel_axis=channel_axis)
        elif self.method == "denoise_wavelet":
            defaults = {"sigma": sigma, "method": "BayesShrink", "mode": "soft", "rescale_sigma": True,
                        "convert2ycbcr": colour}
            out = restoration.denoise_wavelet(array, **{**defaults, **self.options}, channel_axis=channel_axis)
        elif self.method == "denoise_nl_means":
            defaults = {"h": 0.6 * sigma, "sigma": sigma, "patch_size": 5, "patch_distance": 6, "fast_mode": True}
            out = restoration.denoise_nl_means(array, **{**defaults, **self.options}, channel_axis=channel_axis)
        else:
            missing = ~self.operator.mask[0].cpu().numpy()
            out = restoration.inpaint_biharmonic(array, missing, **self.options, channel_axis=channel_axis)
        out = np.asarray(out, dtype=np.float64)
        if not colour:
            out = out[..., None]
        return torch.from_numpy(out.transpose(2, 0, 1).copy())

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "options": self.options}

"""Classical (non-learned, no prior network) restoration by scikit-image, for comparison with untrained priors.

Each method is a class chosen by ``class_path`` like the operators and priors::

    model:
      class_path: dip_lightning.algorithms.TVDenoiser
      init_args: {options: {weight: 0.08}}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dip_lightning.algorithms.base import ReconstructionModule
from dip_lightning.chunks import Chunk
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import Denoising, Inpainting, Operator, SuperResolution


class ClassicalRestoration(ReconstructionModule):
    """A classical restoration method applied to each image's measurements in one step.

    Subclasses name the operator they restore (``operator_type``) and restore one image in image space
    (:meth:`restore_array`: noisy, or zero at the missing pixels). The noise level of the denoisers is the
    operator's ``noise_sigma`` (known, as for the other methods' tuning); where it is ``null`` (the user's own
    noisy photos), scikit-image's ``estimate_sigma`` of each image. scikit-image is not batched, so these run
    on the CPU image by image, in one outer iteration: a chunk is finished after its first step whatever the
    iteration budget.

    Args:
        options: further keyword arguments of the scikit-image function, overriding the class's defaults
            (e.g. ``{weight: 0.08}`` for TV, ``{wavelet: db2}`` for wavelets).
        operator, chunk_size: see :class:`~dip_lightning.algorithms.ReconstructionModule`.
    """

    operator_type: type[Operator] = Operator

    def __init__(self, operator: Operator, options: dict[str, Any] | None = None, chunk_size: int = 16) -> None:
        if type(self) is ClassicalRestoration:
            raise DipLightningError(
                "ClassicalRestoration is the base of the classical methods; choose one as the model's class_path: "
                "TVDenoiser, WaveletDenoiser, NLMeansDenoiser, BiharmonicInpainting or BicubicUpsampling"
            )
        super().__init__(operator, chunk_size=chunk_size, iterations=1)  # one step
        self.options = dict(options or {})

    def check_operator(self, operator: Operator) -> None:
        super().check_operator(operator)
        if not isinstance(operator, self.operator_type):
            raise DipLightningError(
                f"{type(self).__name__} needs the {self.operator_type.__name__} operator, not {type(operator).__name__}; "
                f"use --model.operator dip_lightning.operators.{self.operator_type.__name__} or another method"
            )

    def initialize(self, chunk: Chunk) -> None:
        chunk.estimate = chunk.zeros()

    def converged(self, chunk: Chunk) -> bool:
        return chunk.iteration >= 1  # the method is a single step

    @torch.no_grad()
    def outer_step(self, chunk: Chunk) -> Tensor:
        y = chunk.measurements
        chunk.estimate = self.restore_chunk(y)
        return self.operator.data_loss(chunk.estimate, y)

    def restore_chunk(self, y: Tensor) -> Tensor:
        """The chunk's measurements (b, m) -> restored images (b, C, H, W), image by image."""
        return torch.stack([self.restore(image) for image in self.operator.A_adjoint(y)]).to(y)

    def restore(self, image: Tensor) -> Tensor:
        """One image (C, H, W) in image space -> its restoration, through :meth:`restore_array`."""
        colour = image.shape[0] == 3
        array = image.permute(1, 2, 0).double().cpu().numpy()
        if not colour:
            array = array[..., 0]
        out = np.asarray(self.restore_array(array, -1 if colour else None), dtype=np.float64)
        if not colour:
            out = out[..., None]
        return torch.from_numpy(out.transpose(2, 0, 1).copy())

    def restore_array(self, array: np.ndarray, channel_axis: int | None) -> np.ndarray:
        """scikit-image's restoration of one (H, W) or (H, W, 3) float64 array."""
        raise NotImplementedError

    def noise_sigma(self, array: np.ndarray, channel_axis: int | None) -> float:
        """The operator's noise sigma, or scikit-image's estimate from the image where it is not stated."""
        from skimage import restoration

        if self.operator.noise_sigma is not None:
            return self.operator.noise_sigma
        return float(np.mean(restoration.estimate_sigma(array, channel_axis=channel_axis)))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "options": self.options}


class TVDenoiser(ClassicalRestoration):
    r"""``skimage.restoration.denoise_tv_chambolle(y, weight)``: the TV-regularized denoiser
    :math:`\min_x \tfrac12\|x - y\|^2 + w\,\mathrm{TV}(x)` (Chambolle's projection algorithm), weight 0.1 unless
    ``options`` say otherwise."""

    algorithm = "denoise_tv_chambolle"
    operator_type = Denoising

    def restore_array(self, array: np.ndarray, channel_axis: int | None) -> np.ndarray:
        from skimage import restoration

        return restoration.denoise_tv_chambolle(array, **{"weight": 0.1, **self.options}, channel_axis=channel_axis)


class WaveletDenoiser(ClassicalRestoration):
    """``skimage.restoration.denoise_wavelet`` with the noise sigma, BayesShrink soft thresholding, colour images
    in YCbCr (scikit-image's recommended settings)."""

    algorithm = "denoise_wavelet"
    operator_type = Denoising

    def restore_array(self, array: np.ndarray, channel_axis: int | None) -> np.ndarray:
        from skimage import restoration

        defaults = {"sigma": self.noise_sigma(array, channel_axis), "method": "BayesShrink", "mode": "soft",
                    "rescale_sigma": True, "convert2ycbcr": channel_axis is not None}
        return restoration.denoise_wavelet(array, **{**defaults, **self.options}, channel_axis=channel_axis)


class NLMeansDenoiser(ClassicalRestoration):
    """``skimage.restoration.denoise_nl_means`` with the noise sigma, h = 0.6 sigma, 5x5 patches, search
    distance 6, fast mode (scikit-image's example settings)."""

    algorithm = "denoise_nl_means"
    operator_type = Denoising

    def restore_array(self, array: np.ndarray, channel_axis: int | None) -> np.ndarray:
        from skimage import restoration

        sigma = self.noise_sigma(array, channel_axis)
        defaults = {"h": 0.6 * sigma, "sigma": sigma, "patch_size": 5, "patch_distance": 6, "fast_mode": True}
        return restoration.denoise_nl_means(array, **{**defaults, **self.options}, channel_axis=channel_axis)


class BiharmonicInpainting(ClassicalRestoration):
    """``skimage.restoration.inpaint_biharmonic`` of the pixels the operator's mask leaves out."""

    algorithm = "inpaint_biharmonic"
    operator_type = Inpainting

    def restore_array(self, array: np.ndarray, channel_axis: int | None) -> np.ndarray:
        from skimage import restoration

        missing = ~self.operator.mask[0].cpu().numpy()
        return restoration.inpaint_biharmonic(array, missing, **self.options, channel_axis=channel_axis)


class BicubicUpsampling(ClassicalRestoration):
    """Bicubic interpolation of the low-resolution images by the operator's factor, clipped to [0, 1]
    (``torch.nn.functional.interpolate(mode="bicubic")``, batched; ``options`` are passed to it)."""

    algorithm = "bicubic"
    operator_type = SuperResolution

    def restore_chunk(self, y: Tensor) -> Tensor:
        low = y.view(-1, *self.operator.low_shape)
        options = {"align_corners": False, **self.options}
        return F.interpolate(low, scale_factor=self.operator.factor, mode="bicubic", **options).clamp(0, 1)

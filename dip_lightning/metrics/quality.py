"""Per-image reconstruction quality: nMSE, PSNR and SSIM on images in [0, 1]."""

from __future__ import annotations

from torch import Tensor
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from dip_lightning.metrics.nmse import normalized_mse


def image_quality(preds: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Per-image ``nmse``, ``psnr`` (dB) and ``ssim`` (data range 1), each of shape (B,).

    nMSE is taken on ``preds`` as they are; PSNR and SSIM on ``preds`` clipped to [0, 1].
    """
    clipped = preds.clamp(0.0, 1.0)
    return {
        "nmse": normalized_mse(preds, target),
        "psnr": peak_signal_noise_ratio(clipped, target, data_range=1.0, reduction="none", dim=(1, 2, 3)),
        "ssim": structural_similarity_index_measure(clipped, target, data_range=1.0, reduction="none"),
    }

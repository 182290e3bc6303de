import numpy as np
import pytest
import torch

from dip_lightning.metrics import NormalizedMeanSquaredError, image_quality, normalized_mse


def test_normalized_mse_matches_numpy():
    preds, target = torch.rand(5, 3, 8, 8), torch.rand(5, 3, 8, 8)
    p, t = preds.numpy().reshape(5, -1), target.numpy().reshape(5, -1)
    expected = ((p - t) ** 2).sum(1) / (t**2).sum(1)
    np.testing.assert_allclose(normalized_mse(preds, target).numpy(), expected, rtol=1e-5)


def test_metric_mean_over_updates_is_mean_over_images():
    metric = NormalizedMeanSquaredError()
    per_image = NormalizedMeanSquaredError(reduction="none")
    batches = [(torch.rand(n, 1, 4, 4), torch.rand(n, 1, 4, 4)) for n in (3, 1, 4)]
    for preds, target in batches:
        metric.update(preds, target)
        per_image.update(preds, target)
    values = torch.cat([normalized_mse(p, t) for p, t in batches])
    torch.testing.assert_close(per_image.compute(), values)
    torch.testing.assert_close(metric.compute(), values.mean())


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        normalized_mse(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 5, 4))


def test_image_quality_psnr_is_per_image():
    target = torch.rand(3, 1, 28, 28)
    preds = (target + 0.05 * torch.randn_like(target)).clamp(0, 1)
    quality = image_quality(preds, target)
    mse = (preds - target).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(quality["psnr"], -10 * torch.log10(mse), rtol=1e-4, atol=1e-4)
    assert quality["ssim"].shape == (3,) and torch.all(quality["ssim"] < 1)
    assert torch.all(image_quality(target, target)["ssim"] > 0.999)

"""The classical restoration baselines run on the same measurements and beat the trivial estimates."""

import pytest
import torch
import torch.nn.functional as F

from dip_lightning.algorithms import (
    BicubicUpsampling,
    BiharmonicInpainting,
    ClassicalRestoration,
    NetGD,
    NLMeansDenoiser,
    TVDenoiser,
    WaveletDenoiser,
)
from dip_lightning.data import NaturalImagesDataModule
from dip_lightning.errors import DipLightningError
from dip_lightning.metrics import image_quality
from dip_lightning.operators import Denoising, Inpainting, SuperResolution


def images(channels: int) -> torch.Tensor:
    dm = NaturalImagesDataModule(images=["camera", "astronaut"], size=64, channels=channels)
    dm.setup()
    return torch.stack([dm.images[i] for i in range(2)])


def restore(module: ClassicalRestoration, x: torch.Tensor) -> torch.Tensor:
    return module.reconstruct({"index": torch.arange(len(x)), "image": x}).reconstruction


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("method", [TVDenoiser, WaveletDenoiser, NLMeansDenoiser])
def test_denoisers_improve_on_the_noisy_image(method, channels):
    x = images(channels)
    module = method(Denoising(x.shape[1:], noise_sigma=0.1), chunk_size=2)
    noisy = module.operator.measure(x, torch.arange(2)).view_as(x)
    gain = image_quality(restore(module, x), x)["psnr"] - image_quality(noisy, x)["psnr"]
    assert torch.all(gain > 2.0), gain


def test_tv_denoiser_is_scikit_images_with_the_given_options():
    from skimage.restoration import denoise_tv_chambolle

    x = images(3)
    module = TVDenoiser(Denoising(x.shape[1:], noise_sigma=0.1), options={"weight": 0.05}, chunk_size=2)
    noisy = module.operator.measure(x, torch.arange(2)).view_as(x)
    reference = [denoise_tv_chambolle(image.permute(1, 2, 0).double().numpy(), weight=0.05, channel_axis=-1)
                 for image in noisy]
    expected = torch.stack([torch.from_numpy(r).permute(2, 0, 1) for r in reference]).float()
    torch.testing.assert_close(restore(module, x), expected)


def test_biharmonic_inpainting_keeps_observed_pixels_and_beats_zero_filling():
    x = images(3)
    module = BiharmonicInpainting(Inpainting(x.shape[1:], kept=0.5), chunk_size=2)
    x_hat = restore(module, x)
    mask = module.operator.mask
    torch.testing.assert_close(x_hat * mask, x * mask, rtol=0, atol=1e-6)
    assert torch.all(image_quality(x_hat, x)["psnr"] > image_quality(x * mask, x)["psnr"] + 10)


def test_bicubic_upsampling_beats_nearest_neighbour():
    x = images(1)
    module = BicubicUpsampling(SuperResolution(x.shape[1:], factor=4), chunk_size=2)
    low = module.operator(x).view(2, 1, 16, 16)
    nearest = F.interpolate(low, scale_factor=4, mode="nearest")
    assert torch.all(image_quality(restore(module, x), x)["psnr"] > image_quality(nearest, x)["psnr"])


def test_methods_refuse_the_wrong_operator():
    with pytest.raises(DipLightningError, match="BiharmonicInpainting needs the Inpainting operator"):
        BiharmonicInpainting(Denoising((1, 8, 8)))
    with pytest.raises(DipLightningError, match="choose one as the model's class_path"):
        ClassicalRestoration(Denoising((1, 8, 8)))
    with pytest.raises(DipLightningError, match="spectral_start"):
        NetGD(Denoising((1, 8, 8)), spectral_start=300)

"""The classical restoration baselines run on the same measurements and beat the trivial estimates."""

import pytest
import torch
import torch.nn.functional as F

from dip_lightning.algorithms import ClassicalRestoration, NetGD
from dip_lightning.data import NaturalImagesDataModule
from dip_lightning.errors import DipLightningError
from dip_lightning.metrics import image_quality
from dip_lightning.operators import Denoising, Inpainting, SuperResolution


def images(channels: int) -> torch.Tensor:
    dm = NaturalImagesDataModule(images=["camera", "astronaut"], size=64, channels=channels)
    dm.setup()
    return torch.stack([dm.images[i] for i in range(2)])


def restore(module: ClassicalRestoration, x: torch.Tensor) -> torch.Tensor:
    chunk = module.begin_chunk({"index": torch.arange(len(x)), "image": x})
    module.outer_step(chunk)
    return module.reconstruction(chunk)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("method", ["denoise_tv_chambolle", "denoise_wavelet", "denoise_nl_means"])
def test_denoisers_improve_on_the_noisy_image(method, channels):
    x = images(channels)
    module = ClassicalRestoration(Denoising(x.shape[1:], noise_sigma=0.1), method=method, chunk_size=2)
    noisy = module.operator.measure(x, torch.arange(2)).view_as(x)
    gain = image_quality(restore(module, x), x)["psnr"] - image_quality(noisy, x)["psnr"]
    assert torch.all(gain > 2.0), gain


def test_biharmonic_inpainting_keeps_observed_pixels_and_beats_zero_filling():
    x = images(3)
    module = ClassicalRestoration(Inpainting(x.shape[1:], kept=0.5), method="inpaint_biharmonic", chunk_size=2)
    x_hat = restore(module, x)
    mask = module.operator.mask
    torch.testing.assert_close(x_hat * mask, x * mask, rtol=0, atol=1e-6)
    assert torch.all(image_quality(x_hat, x)["psnr"] > image_quality(x * mask, x)["psnr"] + 10)


def test_bicubic_upsampling_beats_nearest_neighbour():
    x = images(1)
    module = ClassicalRestoration(SuperResolution(x.shape[1:], factor=4), method="bicubic", chunk_size=2)
    low = module.operator(x).view(2, 1, 16, 16)
    nearest = F.interpolate(low, scale_factor=4, mode="nearest")
    assert torch.all(image_quality(restore(module, x), x)["psnr"] > image_quality(nearest, x)["psnr"])


def test_methods_refuse_the_wrong_operator():
    with pytest.raises(DipLightningError, match="inpaint_biharmonic needs the Inpainting operator"):
        ClassicalRestoration(Denoising((1, 8, 8)), method="inpaint_biharmonic")
    with pytest.raises(DipLightningError, match="spectral initialization"):
        NetGD(Denoising((1, 8, 8)), initialization="spectral")

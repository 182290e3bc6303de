"""Denoising, inpainting and super-resolution operators: independent references, noise, errors (the contract every
operator keeps, adjointness included, is in test_operator_contract.py)."""

import numpy as np
import pytest
import torch
from PIL import Image

from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing, Denoising, Inpainting, SuperResolution


def test_bicubic_downsampling_is_pils_antialiased_bicubic_resize():
    rng = np.random.default_rng(0)
    image = rng.random((32, 48)).astype(np.float32)
    op = SuperResolution((1, 32, 48), factor=4)
    ours = op.A(torch.from_numpy(image)[None, None]).view(8, 12).numpy()
    reference = np.asarray(Image.fromarray(image, mode="F").resize((12, 8), Image.Resampling.BICUBIC))
    # PIL's border handling differs slightly (it renormalizes the clipped kernel the same way, rounding aside)
    np.testing.assert_allclose(ours[2:-2, 2:-2], reference[2:-2, 2:-2], atol=2e-5)
    np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_box_downsampling_is_the_block_mean():
    x = torch.rand(2, 3, 16, 8, dtype=torch.float64)
    op = SuperResolution((3, 16, 8), factor=8, kernel="box")
    expected = x.view(2, 3, 2, 8, 1, 8).mean((3, 5))
    torch.testing.assert_close(op.A(x), expected.flatten(1))


def test_random_inpainting_mask_keeps_the_requested_fraction_and_selects_pixels():
    op = Inpainting((3, 20, 20), kept=0.5, seed=1)
    assert op.mask.sum().item() == 3 * 200 and op.m == 600 and op.kept == 0.5
    assert torch.equal(op.mask[0], op.mask[2])  # a pixel is observed in all channels or none
    x = torch.rand(2, 3, 20, 20)
    torch.testing.assert_close(op.A_adjoint(op.A(x)), x * op.mask)
    y = torch.randn(2, op.m)
    torch.testing.assert_close(op.A(op.A_adjoint(y)), y)  # A A^T = I
    assert torch.equal(Inpainting((3, 20, 20), kept=0.5, seed=1).mask, op.mask)
    assert not torch.equal(Inpainting((3, 20, 20), kept=0.5, seed=2).mask, op.mask)


def test_inpainting_mask_from_a_file(tmp_path):
    mask = np.zeros((8, 10), dtype=np.uint8)
    mask[:, :4] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    op = Inpainting((1, 8, 10), mask=str(tmp_path / "mask.png"))
    assert op.m == 32 and op.kept == pytest.approx(0.4)
    assert op.mask[0, :, :4].all() and not op.mask[0, :, 4:].any()
    with pytest.raises(DipLightningError, match="8x10 pixels but the images are 16x16"):
        Inpainting((1, 16, 16), mask=str(tmp_path / "mask.png"))
    with pytest.raises(DipLightningError, match="not found"):
        Inpainting((1, 8, 10), mask=str(tmp_path / "missing.png"))


def test_measurement_noise_is_per_image_seeded_and_of_the_right_size():
    op = Denoising((1, 64, 64), noise_sigma=0.1, seed=3)
    x = torch.rand(3, 1, 64, 64)
    y = op.measure(x, torch.tensor([7, 8, 9]))
    alone = op.measure(x[1:2], torch.tensor([8]))
    torch.testing.assert_close(y[1:2], alone, rtol=0, atol=0)  # the same noise whatever the chunk
    noise = y - x.flatten(1)
    assert noise.std().item() == pytest.approx(0.1, rel=0.03) and abs(noise.mean().item()) < 0.005
    assert not torch.allclose(noise[0], noise[1])
    torch.testing.assert_close(CompressiveSensing((1, 8, 8)).measure(x[:, :, :8, :8], torch.tensor([0, 1, 2])),
                               CompressiveSensing((1, 8, 8))(x[:, :, :8, :8]))  # noiseless by default


def test_bad_restoration_settings_are_refused():
    with pytest.raises(DipLightningError, match="needs noise"):
        Denoising((1, 8, 8), noise_sigma=0.0)
    with pytest.raises(DipLightningError, match="kept fraction"):
        Inpainting((1, 8, 8), kept=0.0)
    with pytest.raises(DipLightningError, match="multiples of it"):
        SuperResolution((1, 30, 30), factor=4)
    with pytest.raises(DipLightningError, match="2, 4 or 8"):
        SuperResolution((1, 32, 32), factor=3)
    with pytest.raises(DipLightningError, match="non-negative"):
        CompressiveSensing((1, 8, 8), noise_sigma=-1.0)


def test_previews_show_the_measurements_as_images():
    x = torch.rand(2, 3, 16, 16)
    sr = SuperResolution((3, 16, 16), factor=4, kernel="box")
    preview = sr.preview(sr(x))
    assert preview.shape == x.shape
    torch.testing.assert_close(preview[:, :, :4, :4], x[:, :, :4, :4].mean((2, 3), keepdim=True).expand(-1, -1, 4, 4))
    inpainting = Inpainting((3, 16, 16), kept=0.5)
    torch.testing.assert_close(inpainting.preview(inpainting(x)), x * inpainting.mask)
    assert CompressiveSensing((3, 16, 16)).preview(torch.zeros(2, 192)) is None

"""Measured data: operators taking given measurements, matrix files, image files, and reconstructions from
measurements that match the simulated run they were exported from."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dip_lightning.algorithms import NetGD, Restarts
from dip_lightning.data import MeasuredVectors, MNISTDataModule, ObservedImages
from dip_lightning.errors import DipLightningError
from dip_lightning.files import read_image, write_png
from dip_lightning.operators import CompressiveSensing, Denoising, Inpainting, PhaseRetrieval, SuperResolution
from dip_lightning.priors import DeepDecoder, SkipNetwork
from tests.helpers import fit

SHAPE = (3, 8, 12)


def as_user_holds_it(operator, x: torch.Tensor) -> torch.Tensor:
    """The measurements of x as a user's file holds them (an image where they are one)."""
    if isinstance(operator, Inpainting):  # a photo whose missing pixels hold anything
        return torch.where(operator.mask.bool(), x, torch.rand_like(x) * 7)
    if isinstance(operator, SuperResolution):
        return operator.downsample(x)
    if isinstance(operator, Denoising):
        return x
    return operator.forward(x)


OPERATORS = [
    lambda: Denoising(SHAPE, noise_sigma=0.1),
    lambda: Denoising(SHAPE, noise_sigma=None),
    lambda: Inpainting(SHAPE, kept=0.4, seed=3),
    lambda: SuperResolution(SHAPE, factor=2),
    lambda: CompressiveSensing(SHAPE, ratio=0.3),
    lambda: PhaseRetrieval(SHAPE, ratio=2.0),
]


@pytest.mark.parametrize("build", OPERATORS)
def test_given_measurements_are_taken_as_they_are(build):
    operator = build()
    x = torch.rand(2, *SHAPE, dtype=torch.float64)
    given = as_user_holds_it(operator, x)
    assert tuple(given.shape[1:]) == tuple(operator.measurement_shape)
    torch.testing.assert_close(operator.observe(given), operator.forward(x), rtol=0, atol=0)
    torch.testing.assert_close(operator.observe(operator.forward(x)), operator.forward(x), rtol=0, atol=0)
    with pytest.raises(DipLightningError, match="per image"):
        operator.observe(given.flatten(1)[:, :-1])
    broken = given.clone()
    broken.view(-1)[5] = float("nan")
    with pytest.raises(DipLightningError, match="NaN or Inf"):
        operator.observe(broken)


def test_denoising_without_a_noise_level_refuses_to_simulate():
    with pytest.raises(DipLightningError, match="ObservedImages"):
        Denoising(SHAPE, noise_sigma=None).measure(torch.rand(1, *SHAPE), torch.tensor([0]))


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_matrix_file_is_the_operator(tmp_path, suffix):
    matrix = np.random.default_rng(0).normal(size=(40, 96))
    path = tmp_path / f"A{suffix}"
    np.save(path, matrix) if suffix == ".npy" else torch.save(torch.from_numpy(matrix), path)
    x = torch.rand(3, 1, 8, 12, dtype=torch.float64)
    cs = CompressiveSensing((1, 8, 12), ratio=0.9, matrix=str(path))  # the file decides m
    assert cs.m == 40 and cs.ratio == pytest.approx(40 / 96)
    np.testing.assert_allclose(cs.A(x).numpy(), x.flatten(1).numpy() @ matrix.T, rtol=1e-12)
    pr = PhaseRetrieval((1, 8, 12), matrix=str(path))
    np.testing.assert_allclose(pr(x).numpy(), np.abs(x.flatten(1).numpy() @ matrix.T), rtol=1e-12)
    with pytest.raises(DipLightningError, match="m x 100 matrix"):
        CompressiveSensing((1, 10, 10), matrix=str(path))
    with pytest.raises(DipLightningError, match="not found"):
        CompressiveSensing((1, 8, 12), matrix=str(tmp_path / "missing.npy"))


@pytest.mark.parametrize(("channels", "bits"), [(1, 8), (3, 8), (1, 16), (3, 16)])
def test_png_files_round_trip_to_their_bit_depth(tmp_path, channels, bits):
    image = torch.rand(channels, 9, 13, dtype=torch.float64)
    write_png(tmp_path / "x.png", image, bits)
    back = read_image(tmp_path / "x.png", channels)
    assert back.shape == image.shape and back.dtype == torch.float32
    assert (back.double() - image).abs().max() <= 0.5 / (2**bits - 1) + 1e-7
    if bits == 16:  # not reduced to 8 bits on the way: values between the 8-bit levels
        levels = back.double() * 255
        assert (levels - levels.round()).abs().max() > 0.1


def test_colour_files_become_grayscale_as_pillow_converts_them(tmp_path):
    array = (np.random.default_rng(1).random((6, 7, 3)) * 255).astype(np.uint8)
    Image.fromarray(array).save(tmp_path / "c.png")
    expected = np.asarray(Image.fromarray(array).convert("L"), dtype=np.float32) / 255
    np.testing.assert_array_equal(read_image(tmp_path / "c.png", 1)[0].numpy(), expected)
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(DipLightningError, match="bad.png is not a readable image"):
        read_image(tmp_path / "bad.png", 1)


def test_exported_measurements_are_reconstructed_as_the_simulated_run_did(tmp_path, data_root):
    """y = A x saved with numpy for MNIST test digits 5 and 7, with ids [5, 7]: the same reconstructions."""
    digits = [5, 7]
    simulated_data = MNISTDataModule(root=str(data_root), indices=digits, chunk_size=2)
    simulated_data.setup()
    x = torch.stack([simulated_data.images[i] for i in digits]).double()
    matrix = np.random.default_rng(3).normal(0, 1 / 14, (196, 784))
    np.save(tmp_path / "A.npy", matrix)
    np.save(tmp_path / "y.npy", x.flatten(1).numpy() @ matrix.T)
    np.save(tmp_path / "x.npy", x.numpy())

    def module():
        return NetGD(CompressiveSensing((1, 28, 28), matrix=str(tmp_path / "A.npy")), chunk_size=2, iterations=25, prior=lambda b, shape, seed: DeepDecoder(b, shape, seed, channels=[8, 8, 4]), restarts=Restarts(count=2))

    simulated = fit(module(), MNISTDataModule(root=str(data_root), indices=digits, chunk_size=2),
                    tmp_path / "simulated")
    measured = fit(module(), MeasuredVectors(str(tmp_path / "y.npy"), (1, 28, 28), ids=digits, chunk_size=2, references=str(tmp_path / "x.npy")), tmp_path / "measured")
    assert sorted(measured) == digits
    for i in digits:
        assert float(measured[i]["nmse"]) == pytest.approx(float(simulated[i]["nmse"]), rel=1e-6)
        assert measured[i]["name"] == f"{i:06d}"
    a = torch.load(tmp_path / "simulated" / "reconstructions.pt")["reconstruction"]
    b = torch.load(tmp_path / "measured" / "reconstructions.pt")["reconstruction"]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    png = read_image(tmp_path / "measured" / "reconstructions" / "000005.png", 1)
    assert (png - b[0]).abs().max() <= 0.5 / 255 + 1e-6


def test_own_photos_of_any_size_without_references(tmp_path):
    """Inpainting of a 20x28 photo with a mask file: a PNG of the input's size and name, the observed
    pixels kept (data consistency), no reference so no nMSE, a finite residual."""
    photo = torch.rand(3, 20, 28)
    mask = np.zeros((20, 28), dtype=np.uint8)
    mask[:, ::2] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    (tmp_path / "photos").mkdir()
    write_png(tmp_path / "photos" / "holiday.png", photo * torch.from_numpy(mask > 0))
    data = ObservedImages(str(tmp_path / "photos"), chunk_size=1)
    assert data.image_shape == (3, 20, 28)
    module = NetGD(Inpainting(data.image_shape, mask=str(tmp_path / "mask.png")), chunk_size=1, iterations=5,
                   data_consistency=True,
                   prior=lambda b, shape, seed: SkipNetwork(b, shape, seed, channels=[8, 8, 8], skip_channels=[2, 2, 2],
                                                           input_channels=4))
    rows = fit(module, data, tmp_path / "run")
    assert rows[0]["name"] == "holiday" and rows[0]["nmse"] == "nan" and rows[0]["status"] == "ok"
    assert float(rows[0]["residual"]) < 1e-6
    out = read_image(tmp_path / "run" / "reconstructions" / "holiday.png", 3)
    given = read_image(tmp_path / "photos" / "holiday.png", 3)
    assert out.shape == (3, 20, 28)
    observed = torch.from_numpy(mask > 0).expand(3, -1, -1)
    assert (out - given)[observed].abs().max() <= 1 / 255 + 1e-6


def test_references_must_match_by_name_and_size(tmp_path):
    (tmp_path / "noisy").mkdir()
    (tmp_path / "clean").mkdir()
    write_png(tmp_path / "noisy" / "a.png", torch.rand(3, 8, 8))
    write_png(tmp_path / "noisy" / "b.png", torch.rand(3, 8, 8))
    write_png(tmp_path / "clean" / "a.png", torch.rand(3, 8, 8))
    with pytest.raises(DipLightningError, match="no reference image named b"):
        ObservedImages(str(tmp_path / "noisy"), references=str(tmp_path / "clean")).load_images()
    write_png(tmp_path / "noisy" / "c.png", torch.rand(3, 8, 9))
    with pytest.raises(DipLightningError, match="c.png is 8x9 pixels but .*a.png is 8x8"):
        ObservedImages(str(tmp_path / "noisy")).setup()


def test_clipped_noisy_pixels_are_censored_in_the_denoising_loss():
    """Pixels stored at exactly 0 or 1 count by the Tobit likelihood (scipy reference), others by the
    squared error, so simulated (never clipped) measurements keep the plain squared error."""
    from scipy.stats import norm

    operator = Denoising((1, 2, 2), noise_sigma=0.1)
    x = torch.tensor([[[[0.2, 0.5], [0.9, 0.0]]]], dtype=torch.float64)
    y = torch.tensor([[0.0, 0.4, 1.0, -0.05]], dtype=torch.float64)
    expected = np.mean([-2 * 0.01 * norm.logcdf(-0.2 / 0.1), 0.1**2, -2 * 0.01 * norm.logcdf(-0.1 / 0.1), 0.05**2])
    assert operator.data_loss(x, y).item() == pytest.approx(expected, rel=1e-10)
    inside = torch.tensor([[0.3, 0.4, 0.99, -0.05]], dtype=torch.float64)
    assert operator.data_loss(x, inside).item() == pytest.approx((x.flatten(1) - inside).pow(2).mean().item())

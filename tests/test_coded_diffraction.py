"""Coded diffraction patterns against numpy's FFT, the CDP model's mask statistics, and phase-retrieval invariants."""

import math

import numpy as np
import pytest
import torch

from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CodedDiffraction


def test_measurements_are_the_magnitudes_of_numpys_fft_of_the_masked_image():
    op = CodedDiffraction((2, 6, 8), masks=3, seed=5)
    x = torch.rand(4, 2, 6, 8, dtype=torch.float64)
    mask = op.mask.numpy()
    expected = np.abs(np.fft.fft2(mask[None] * x.numpy()[:, None], norm="ortho")).reshape(4, -1)
    np.testing.assert_allclose(op(x).numpy(), expected, atol=1e-12)
    assert op.m == 3 * 96


def test_masks_follow_the_cdp_model():
    op = CodedDiffraction((1, 64, 64), masks=4, seed=1)
    mask = op.mask.flatten()
    phases = torch.angle(mask) / (math.pi / 2)
    assert torch.allclose(phases, phases.round(), atol=1e-9)  # phases in {1, i, -1, -i}
    magnitude = mask.abs()
    large = torch.isclose(magnitude, torch.tensor(math.sqrt(3.0), dtype=torch.float64))
    assert (large | torch.isclose(magnitude, torch.tensor(math.sqrt(0.5), dtype=torch.float64))).all()
    assert large.double().mean().item() == pytest.approx(0.2, abs=0.02)
    assert magnitude.pow(2).mean().item() == pytest.approx(1.0, abs=0.05)  # E|M|^2 = 1


def test_magnitudes_ignore_the_global_sign_and_the_step_is_the_gradient_of_the_magnitude_loss():
    op = CodedDiffraction((1, 6, 6), masks=2, kept=0.7, seed=2)
    x = torch.randn(3, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    y = op(torch.randn(3, 1, 6, 6, dtype=torch.float64))
    assert (y >= 0).all() and op.m == round(0.7 * 72)
    torch.testing.assert_close(op(-x.detach()), op(x.detach()))
    (grad,) = torch.autograd.grad(op.data_loss(x, y).sum(), x)
    Ax = op.A(x.detach())  # noqa: N806
    torch.testing.assert_close(grad, 2 / op.m * op.A_adjoint(Ax - op.lift(y, Ax)))


def test_bad_settings_are_refused():
    with pytest.raises(DipLightningError, match="masks"):
        CodedDiffraction((1, 8, 8), masks=0)
    with pytest.raises(DipLightningError, match="kept"):
        CodedDiffraction((1, 8, 8), kept=1.5)


def test_row_norms_and_gain_match_the_dense_complex_matrix():
    op = CodedDiffraction((2, 4, 5), masks=3, kept=0.8, seed=4)
    columns = op.coded_fft(torch.eye(op.n, dtype=torch.float64).view(op.n, 2, 4, 5))  # (n, m): column k is A e_k
    torch.testing.assert_close(op.row_norms().double(), columns.abs().pow(2).sum(0).sqrt(), rtol=1e-6, atol=0)
    x = torch.rand(64, 2, 4, 5, dtype=torch.float64)
    gain = (op.coded_fft(x).abs().pow(2).sum(1) / x.flatten(1).pow(2).sum(1)).mean()
    assert gain.item() == pytest.approx(op.measurement_gain, rel=0.1)


def test_truncated_amplitude_flow_recovers_an_image_from_coded_diffraction():
    from dip_lightning.algorithms import AmplitudeFlow, SparseAmplitudeFlow
    from dip_lightning.metrics import normalized_mse

    torch.manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(2, 1, 4, 4), size=(16, 16), mode="bilinear")
    taf = AmplitudeFlow(CodedDiffraction((1, 16, 16), masks=6), chunk_size=2, iterations=300)
    batch = {"index": torch.arange(2), "image": x}
    start = normalized_mse(taf.resolve_sign(taf.begin_chunk(batch).estimate, x), x)  # the spectral start
    final = taf.reconstruct(batch).metrics["nmse"]
    assert (final < 1e-3).all() and (final < start).all()
    with pytest.raises(DipLightningError, match="SPARTA"):
        SparseAmplitudeFlow(CodedDiffraction((1, 16, 16)), sparsity=0.1)

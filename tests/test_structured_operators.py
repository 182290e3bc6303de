"""The structured compressive-sensing operator against independent references (scipy's DCT, dense algebra)."""

import numpy as np
import pytest
import scipy.fft
import torch

from dip_lightning.algorithms import NetGD
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing, StructuredCompressiveSensing
from dip_lightning.operators.transforms import dct, idct


@pytest.mark.parametrize("length", [1, 2, 7, 64, 101])
def test_dct_and_its_inverse_are_scipys_orthonormal_dct(length):
    x = torch.randn(3, length, dtype=torch.float64)
    expected = scipy.fft.dct(x.numpy(), type=2, norm="ortho", axis=-1)
    np.testing.assert_allclose(dct(x).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(idct(x).numpy(), scipy.fft.idct(x.numpy(), type=2, norm="ortho", axis=-1), atol=1e-12)


@pytest.mark.parametrize("rounds", [1, 2])
def test_operator_is_the_subsampled_randomized_dct_as_a_dense_matrix(rounds):
    op = StructuredCompressiveSensing((2, 5, 6), ratio=0.4, seed=3, rounds=rounds)
    n, m = 60, round(0.4 * 60)
    assert op.n == n and op.m == m
    dense = np.eye(n)  # built column by column with scipy, independently of the operator's FFT route
    for signs in op.signs.numpy():
        dense = scipy.fft.dct(signs[:, None] * dense, type=2, norm="ortho", axis=0)
    dense = np.sqrt(n / m) * dense[op.kept.numpy()]
    x = torch.rand(4, 2, 5, 6, dtype=torch.float64)
    np.testing.assert_allclose(op.A(x).numpy(), x.flatten(1).numpy() @ dense.T, atol=1e-12)
    np.testing.assert_allclose(dense @ dense.T, n / m * np.eye(m), atol=1e-12)  # A A^T = (n/m) I
    assert len(set(op.kept.tolist())) == m  # m distinct coefficients


def test_operator_memory_is_linear_in_the_image_size():
    op = StructuredCompressiveSensing((3, 256, 256), ratio=0.1)
    stored = sum(b.numel() * b.element_size() for b in op.buffers())
    assert stored < 2 * 3 * 256 * 256 * 1 + 8 * op.m  # int8 signs and int64 indices: about 0.7 MB
    x = torch.rand(1, 3, 256, 256)
    assert op(x).shape == (1, op.m)


def test_operator_is_seeded_and_rejects_bad_settings():
    a = StructuredCompressiveSensing((1, 28, 28), ratio=0.25, seed=7)
    assert torch.equal(a.kept, StructuredCompressiveSensing((1, 28, 28), ratio=0.25, seed=7).kept)
    assert not torch.equal(a.kept, StructuredCompressiveSensing((1, 28, 28), ratio=0.25, seed=8).kept)
    with pytest.raises(DipLightningError, match="ratio"):
        StructuredCompressiveSensing((1, 28, 28), ratio=1.5)
    with pytest.raises(DipLightningError, match="rounds"):
        StructuredCompressiveSensing((1, 28, 28), rounds=0)


def test_net_gd_recovers_smooth_images_as_well_as_with_the_dense_gaussian():
    """A short Net-GD run on 28x28 random smooth images: the structured operator recovers them as the dense one does."""
    torch.manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(4, 1, 7, 7), size=(28, 28), mode="bilinear")
    results = {}
    for name, operator in {"dense": CompressiveSensing((1, 28, 28), ratio=0.25),
                           "structured": StructuredCompressiveSensing((1, 28, 28), ratio=0.25)}.items():
        model = NetGD(operator, chunk_size=4, iterations=300,
                      optimizer=lambda p: torch.optim.SGD(p, lr=0.08, momentum=0.9))
        results[name] = model.reconstruct({"index": torch.arange(4), "image": x}).metrics["nmse"]
    assert results["structured"].mean() < 0.05
    assert results["structured"].mean() < 1.5 * results["dense"].mean() + 0.005

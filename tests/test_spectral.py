"""The spectral initializations of phase retrieval against an eigendecomposition, and what they estimate."""

import numpy as np
import torch

from dip_lightning.algorithms.spectral import (
    leading_eigenvector,
    orthogonality_promoting_estimate,
    truncated_spectral_estimate,
)
from dip_lightning.operators import CodedDiffraction, PhaseRetrieval


def test_power_iteration_finds_the_leading_eigenvector_of_the_weighted_matrix():
    """Against numpy's eigh of the explicit sum_j w_j a_j a_j^T, per image, for the dense Gaussian."""
    op = PhaseRetrieval((1, 5, 5), ratio=3.0, seed=1).double()
    weights = torch.rand(3, op.m, dtype=torch.float64)
    weights[:, :5] *= 20  # a clear eigengap, so that 300 power iterations converge
    z = leading_eigenvector(op, weights, power_iterations=300).flatten(1)
    rows = op.rows(torch.arange(op.m)).flatten(1).numpy()
    for b in range(3):
        _, vectors = np.linalg.eigh(rows.T @ (weights[b].numpy()[:, None] * rows))
        assert abs(float(np.dot(vectors[:, -1], z[b].numpy()))) > 1 - 1e-9


def test_an_images_estimate_does_not_depend_on_its_chunk_mates():
    """With few power iterations (not converged), image 2's estimates alone and in a chunk of 4 agree."""
    op = PhaseRetrieval((1, 8, 8), ratio=2.0, seed=0).double()
    y = op(torch.rand(4, 1, 8, 8, dtype=torch.float64))
    for estimate in (truncated_spectral_estimate, orthogonality_promoting_estimate):
        together, alone = estimate(op, y, power_iterations=3), estimate(op, y[2:3], power_iterations=3)
        torch.testing.assert_close(together[2:3], alone, rtol=0, atol=1e-12)


def test_rows_are_the_adjoint_of_unit_measurements():
    op = PhaseRetrieval((2, 4, 3), ratio=1.5, seed=0).double()
    picked = torch.tensor([0, 7, op.m - 1])
    unit = torch.zeros(3, op.m, dtype=torch.float64).scatter_(1, picked[:, None], 1.0)
    torch.testing.assert_close(op.rows(picked), op.A_adjoint(unit))


def test_orthogonality_promoting_start_has_the_implied_norm_and_points_towards_the_image():
    torch.manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(2, 1, 4, 4), size=(12, 12), mode="bilinear").double()
    op = PhaseRetrieval((1, 12, 12), ratio=6.0, seed=0).double()
    estimate = orthogonality_promoting_estimate(op, op(x))
    torch.testing.assert_close(estimate.flatten(1).norm(dim=1), op(x).norm(dim=1))
    assert (torch.nn.functional.cosine_similarity(estimate.flatten(1), x.flatten(1)).abs() > 0.8).all()


def test_spectral_estimate_points_towards_the_image_at_high_ratio(data_root):
    from torchvision.datasets import MNIST
    from torchvision.transforms.functional import to_tensor

    from dip_lightning.metrics import normalized_mse

    digits = MNIST(str(data_root), train=False)
    x = torch.stack([to_tensor(digits[i][0]) for i in range(3)])
    op = PhaseRetrieval((1, 28, 28), ratio=6.0, seed=0)
    estimate = truncated_spectral_estimate(op, op(x))
    assert torch.all(estimate.flatten(1).sum(1) > 0)  # sign chosen towards non-negative images
    torch.testing.assert_close(estimate.flatten(1).norm(dim=1), op(x).norm(dim=1))
    # a random direction of the same norm has nMSE ~ 2; the spectral one is clearly correlated
    assert torch.all(normalized_mse(estimate, x) < 1.2)
    assert torch.all(normalized_mse(estimate, x) < normalized_mse(-estimate, x))


def test_spectral_estimate_points_towards_the_image_better_with_more_masks():
    torch.manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(2, 1, 4, 4), size=(16, 16), mode="bilinear").double()
    cosines = []
    for masks in (2, 16):
        op = CodedDiffraction((1, 16, 16), masks=masks, seed=0)
        estimate = truncated_spectral_estimate(op, op(x))
        cosines.append(torch.nn.functional.cosine_similarity(estimate.flatten(1), x.flatten(1)))
        torch.testing.assert_close(estimate.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), rtol=0.05, atol=0)
    assert (cosines[0] > 0.3).all() and (cosines[1] > 0.8).all() and (cosines[1] > cosines[0]).all()

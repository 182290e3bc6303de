"""The hand-crafted priors and the baselines against independent references and optimality conditions."""

import math

import numpy as np
import pytest
import scipy.fft
import scipy.optimize
import torch

from dip_lightning.algorithms import AmplitudeFlow, Lasso, NetGD, SparseAmplitudeFlow, TVMinimization
from dip_lightning.errors import DipLightningError
from dip_lightning.metrics import normalized_mse
from dip_lightning.operators import CompressiveSensing, Denoising, PhaseRetrieval
from dip_lightning.regularizers import DCT2d, Wavelet2d, gradient, gradient_adjoint, make_transform, total_variation


def solve(module, images: torch.Tensor) -> torch.Tensor:
    """Run a baseline on a chunk of images without a Trainer; returns (sign-resolved) x_hat."""
    return module.reconstruct({"index": torch.arange(len(images)), "image": images}).reconstruction


def test_dct_is_scipys_orthonormal_dct_and_inverts():
    x = torch.rand(3, 2, 12, 20, dtype=torch.float64)
    dct = DCT2d((2, 12, 20))
    reference = scipy.fft.dctn(x.numpy(), type=2, axes=(-2, -1), norm="ortho").reshape(3, -1)
    np.testing.assert_allclose(dct(x).numpy(), reference, atol=1e-12)
    torch.testing.assert_close(dct.inverse(dct(x)), x)


@pytest.mark.parametrize(("shape", "wavelet"), [((1, 28, 28), "db4"), ((3, 64, 64), "db2")])
def test_wavelet_transform_is_orthonormal_with_n_coefficients(shape, wavelet):
    transform = Wavelet2d(shape, wavelet)
    x, z = torch.rand(2, *shape, dtype=torch.float64), torch.rand(2, *shape, dtype=torch.float64)
    c = transform(x)
    assert c.shape == (2, math.prod(shape))
    torch.testing.assert_close(c.norm(dim=1), x.flatten(1).norm(dim=1))  # Parseval
    torch.testing.assert_close(transform.inverse(c), x)  # perfect reconstruction
    torch.testing.assert_close((c * transform(z)).sum(), (x * z).sum())  # inner products kept
    # a smooth image is compressible: 5% of the coefficients hold 99.9% of the energy of a bump
    r = torch.arange(shape[-1], dtype=torch.float64) - shape[-1] / 2
    bump = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * (shape[-1] / 8) ** 2)).expand(1, *shape)
    energy = transform(bump).pow(2).sort(descending=True).values.cumsum(1) / bump.pow(2).sum()
    assert energy[0, math.prod(shape) // 20] > 0.999


def test_unknown_bases_and_wavelets_are_refused():
    with pytest.raises(DipLightningError, match="choose pixel, dct or wavelet"):
        make_transform("fourier", (1, 8, 8))
    with pytest.raises(DipLightningError, match="not an orthogonal"):
        Wavelet2d((1, 8, 8), "bior2.2")


def test_gradient_adjoint_and_total_variation_against_numpy():
    x, p = torch.rand(2, 3, 9, 7, dtype=torch.float64), torch.rand(2, 2, 3, 9, 7, dtype=torch.float64)
    torch.testing.assert_close((gradient(x) * p).sum(), (x * gradient_adjoint(p)).sum())
    a = x.numpy()
    dv = np.zeros_like(a)
    dh = np.zeros_like(a)
    dv[..., :-1, :] = np.diff(a, axis=-2)
    dh[..., :, :-1] = np.diff(a, axis=-1)
    reference = np.sqrt((dv**2 + dh**2).sum(1)).reshape(2, -1).sum(1)  # coupled over channels
    np.testing.assert_allclose(total_variation(x).numpy(), reference, rtol=1e-12)


def test_operator_norm_matches_the_largest_singular_value():
    module = Lasso(CompressiveSensing((1, 8, 8), ratio=0.5), chunk_size=1, iterations=1)
    largest = torch.linalg.matrix_norm(module.operator.matrix, ord=2).item()
    assert largest**2 <= module.operator.norm_squared() <= 1.02 * largest**2  # a safe Lipschitz constant


@pytest.mark.parametrize("basis", ["dct", "wavelet"])
def test_lasso_solution_satisfies_the_optimality_conditions(basis):
    """At a minimizer of 1/2||A W^T c - y||^2 + lam ||c||_1: |g_j| <= lam, g_j = lam sign(c_j) on the support,
    with g = W A^T (y - A x) (subgradient optimality), checked independently of FISTA's iterations."""
    torch.manual_seed(0)
    images = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    weight = 0.05
    module = Lasso(CompressiveSensing((1, 16, 16), ratio=0.5), chunk_size=2, iterations=3000, basis=basis, weight=weight,
                   wavelet="db2").double()
    x = solve(module, images)
    op, W = module.operator, module.transform
    g = W(op.A_adjoint(op(images) - op.A(x)))
    c = W(x)
    support = c.abs() > 1e-6
    assert support.any() and (~support).any()
    assert g.abs().max() <= weight * (1 + 1e-3)
    torch.testing.assert_close(g[support], weight * c[support].sign(), atol=1e-4 * weight, rtol=0)


def test_tv_minimization_beats_an_independent_solver_and_recovers_a_cartoon():
    """Chambolle-Pock's objective is at most that of scipy's L-BFGS-B on the same (slightly smoothed) problem."""
    cartoon = torch.zeros(1, 1, 12, 12, dtype=torch.float64)
    cartoon[..., 2:7, 3:10] = 0.8
    cartoon[..., 6:11, 5:8] = 0.4
    weight = 0.01
    module = TVMinimization(CompressiveSensing((1, 12, 12), ratio=0.5), chunk_size=1, iterations=4000, weight=weight).double()
    x = solve(module, cartoon)
    y = module.operator(cartoon)
    ours = module.objective(x, y).item()

    matrix = module.operator.matrix.numpy()
    target = y.numpy()[0]

    def smoothed(flat):
        image = torch.from_numpy(flat).view(1, 1, 12, 12).requires_grad_()
        value = 0.5 * (image.flatten(1) @ module.operator.matrix.T - y).pow(2).sum() \
            + weight * (gradient(image).pow(2).sum((1, 2)) + 1e-10).sqrt().sum()
        value.backward()
        return value.item(), image.grad.flatten().numpy()

    reference = scipy.optimize.minimize(smoothed, np.full(144, 0.5), jac=True, method="L-BFGS-B",
                                        bounds=[(0, 1)] * 144, options={"maxiter": 5000})
    assert matrix.shape == (72, 144) and np.isfinite(target).all()
    assert ours <= reference.fun + 1e-6
    assert normalized_mse(x, cartoon).item() < 5e-3  # half the measurements nearly suffice for a cartoon


def test_amplitude_flow_recovers_a_digit_from_enough_magnitudes_and_sparta_a_sparse_image(data_root):
    from dip_lightning.data import MNISTDataModule

    dm = MNISTDataModule(root=str(data_root), indices=[3, 7])
    dm.setup("fit")
    digits = torch.stack([dm.images[i] for i in (3, 7)])
    taf = AmplitudeFlow(PhaseRetrieval((1, 28, 28), ratio=3.0), chunk_size=2, iterations=300)
    assert normalized_mse(solve(taf, digits), digits).max() < 1e-6
    # a 10-sparse image in the DCT basis, from as many magnitudes as pixels
    rng = torch.Generator().manual_seed(1)
    coefficients = torch.zeros(2, 256)
    for b in range(2):
        coefficients[b, torch.randperm(256, generator=rng)[:10]] = torch.randn(10, generator=rng) + 2
    sparse = DCT2d((1, 16, 16)).inverse(coefficients)
    sparta = SparseAmplitudeFlow(PhaseRetrieval((1, 16, 16), ratio=1.0), chunk_size=2, iterations=500,
                                 sparsity=10 / 256, basis="dct")
    assert normalized_mse(solve(sparta, sparse), sparse).max() < 1e-6


def test_baselines_refuse_the_problems_they_do_not_solve():
    with pytest.raises(DipLightningError, match="solves linear inverse problems, not cpr"):
        Lasso(PhaseRetrieval((1, 8, 8), ratio=1.0))
    with pytest.raises(DipLightningError, match="solves phase retrieval, not cs"):
        AmplitudeFlow(CompressiveSensing((1, 8, 8), ratio=0.5))
    with pytest.raises(DipLightningError, match="weight must be non-negative"):
        TVMinimization(CompressiveSensing((1, 8, 8)), weight=-1.0)
    assert NetGD(PhaseRetrieval((1, 8, 8), ratio=2.0)).describe()["problem"] == "cpr"
    assert TVMinimization(Denoising((1, 8, 8))).describe()["problem"] == "denoise"  # any linear operator

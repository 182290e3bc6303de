import pytest
import torch

from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing, Operator, PhaseRetrieval


def test_forward_equals_dense_matrix_product_per_image():
    op = CompressiveSensing((1, 6, 6), ratio=0.5, seed=3)
    x = torch.rand(4, 1, 6, 6)
    expected = torch.stack([op.matrix @ x[b].reshape(-1).double() for b in range(4)])
    assert op(x).dtype == torch.float32
    torch.testing.assert_close(op(x), expected.float())


def test_seeded_matrix_is_reproducible_and_gaussian_with_variance_one_over_m():
    a = CompressiveSensing((1, 28, 28), ratio=0.25, seed=7)
    b = CompressiveSensing((1, 28, 28), ratio=0.25, seed=7)
    c = CompressiveSensing((1, 28, 28), ratio=0.25, seed=8)
    assert torch.equal(a.matrix, b.matrix)
    assert not torch.equal(a.matrix, c.matrix)
    assert a.m == round(0.25 * 784) and a.n == 784
    assert abs(a.matrix.mean().item()) < 0.01
    assert a.matrix.var().item() * a.m == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("ratio", [0.0, -0.2, 1.5, float("nan")])
def test_ratio_outside_unit_interval_is_rejected(ratio):
    with pytest.raises(DipLightningError, match="ratio"):
        CompressiveSensing((1, 28, 28), ratio=ratio)


def test_data_loss_and_residual_are_per_image():
    op = CompressiveSensing((1, 4, 4), ratio=1.0)
    x = torch.rand(3, 1, 4, 4)
    y = op(x)
    assert torch.all(op.data_loss(x, y) == 0)
    y_off = y.clone()
    y_off[1] *= 2
    loss = op.data_loss(x, y_off)
    assert loss[0] == 0 and loss[2] == 0 and loss[1] > 0
    torch.testing.assert_close(op.relative_residual(x, y_off)[1], torch.tensor(0.5))


def test_phase_retrieval_measures_magnitudes_and_ignores_global_sign():
    op = PhaseRetrieval((1, 8, 8), ratio=2.0, seed=0)
    assert op.m == 128  # ratios above 1 are allowed for phase retrieval
    x = torch.randn(3, 1, 8, 8)
    y = op(x)
    assert torch.all(y >= 0)
    torch.testing.assert_close(op(-x), y)
    torch.testing.assert_close(y, op.A(x).abs())


def test_phase_retrieval_step_is_the_gradient_of_the_magnitude_loss():
    """(2/m) A^T(Ax - y sign(Ax)) == grad_x mean_j (|Ax|_j - y_j)^2, checked with autograd."""
    op = PhaseRetrieval((1, 6, 6), ratio=1.5, seed=2).double()
    x = torch.randn(4, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    y = op(torch.randn(4, 1, 6, 6, dtype=torch.float64))
    (grad,) = torch.autograd.grad(op.data_loss(x, y).sum(), x)
    Ax = op.A(x.detach())  # noqa: N806
    torch.testing.assert_close(grad, 2 / op.m * op.A_adjoint(Ax - op.lift(y, Ax)))


def test_phase_retrieval_ratio_must_be_positive():
    with pytest.raises(DipLightningError, match=r"\(0, inf\)"):
        PhaseRetrieval((1, 8, 8), ratio=0.0)


@pytest.mark.parametrize("precision", ["highest", "high", "medium"])
def test_the_matrix_norm_is_the_generic_power_iteration_and_bounds_the_largest_singular_value(precision):
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision(precision)
        operator = CompressiveSensing((3, 8, 8), ratio=0.3)
    finally:
        torch.set_float32_matmul_precision(before)
    assert operator.norm_squared() == Operator.norm_squared(operator)  # the same products, bitwise
    largest = torch.linalg.matrix_norm(operator.matrix.double(), ord=2).item()
    assert largest**2 <= operator.norm_squared() <= 1.02 * largest**2

import pytest
import torch

from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing


def test_adjointness_matches_inner_products():
    op = CompressiveSensing((3, 8, 8), ratio=0.3, seed=1).double()
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    y = torch.randn(5, op.m, dtype=torch.float64)
    lhs = (op.A(x) * y).sum(1)
    rhs = (x * op.A_adjoint(y)).flatten(1).sum(1)
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)


def test_forward_equals_dense_matrix_product_per_image():
    op = CompressiveSensing((1, 6, 6), ratio=0.5, seed=3)
    x = torch.rand(4, 1, 6, 6)
    expected = torch.stack([op.matrix @ x[b].reshape(-1) for b in range(4)])
    torch.testing.assert_close(op(x), expected)


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

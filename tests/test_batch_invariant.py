"""The products whose result for one image or network must not depend on the rest of its batch: against a float64
reference, and bitwise at any place in any batch, with 1 or 2 threads, in values and gradients."""

import pytest
import torch

from dip_lightning.batch_invariant import ROW_BLOCK, network_bmm, rowwise_matmul
from dip_lightning.operators import CompressiveSensing, PhaseRetrieval


@pytest.fixture
def threads():
    """Set torch's number of threads for one test, then restore it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize(("n", "k", "p"), [(10, 196, 15), (1, 196, 10), (175, 14, 7)])
def test_a_networks_product_is_bitwise_the_same_at_any_place_in_any_batch(n, k, p):
    """The shapes that MKL rounded by the batch, the operands' alignment or the thread count (AMD EPYC)."""
    a = torch.randn(9, n, k, requires_grad=True)
    b = torch.randn(9, k, p, requires_grad=True)
    grad = torch.randn(9, n, p)
    full = network_bmm(a, b)
    full_grads = torch.autograd.grad(full, [a, b], grad)
    torch.testing.assert_close(full.double(), a.double() @ b.double(), rtol=1e-5, atol=1e-5)  # it is the product
    for slot in range(9):
        a_alone = a[slot : slot + 1].detach().requires_grad_()
        b_alone = b[slot : slot + 1].detach().requires_grad_()
        alone = network_bmm(a_alone, b_alone)
        assert torch.equal(alone[0], full[slot])
        for mine, theirs in zip(torch.autograd.grad(alone, [a_alone, b_alone], grad[slot : slot + 1]), full_grads):
            assert torch.equal(mine[0], theirs[slot])


@pytest.mark.parametrize(("k", "p"), [(784, 196), (196, 784), (784, 235), (12288, 1229)])
def test_a_rows_product_is_bitwise_the_same_in_any_batch_with_any_thread_count(k, p, threads):
    """MKL's single float32 GEMM rounded 60 of 160 ranges of 1 to 64 rows of a 128-row product otherwise alone (AMD EPYC)."""
    matrix = torch.randn(k, p) / k**0.5
    x = torch.rand(3 * ROW_BLOCK + 5, k, requires_grad=True)
    grad = torch.randn(x.shape[0], p)
    full = rowwise_matmul(x, matrix)
    (full_grad,) = torch.autograd.grad(full, x, grad)
    torch.testing.assert_close(full.double(), x.double() @ matrix.double(), rtol=1e-5, atol=1e-5)
    for number in (1, 2):
        threads(number)
        for start, size in [(0, 1), (5, 1), (7, 17), (31, 2), (40, ROW_BLOCK), (3, 70), (1, x.shape[0] - 1)]:
            part = x[start : start + size].detach().requires_grad_()
            product = rowwise_matmul(part, matrix)
            assert torch.equal(product, full[start : start + size])
            (part_grad,) = torch.autograd.grad(product, part, grad[start : start + size])
            assert torch.equal(part_grad, full_grad[start : start + size])


@pytest.mark.parametrize("make", [lambda: CompressiveSensing((1, 28, 28), ratio=0.25), lambda: PhaseRetrieval((1, 28, 28), ratio=0.3)])
def test_a_dense_operators_products_for_an_image_do_not_depend_on_its_batch(make):
    """The reproducible mode's products (float32 in row blocks on the CPU) against the float64 product, and an image
    measured alone and as the 70th of 100 (the contract tests' batches fit in one block)."""
    operator = make()
    x = torch.rand(100, 1, 28, 28)
    y = torch.randn(100, operator.m)
    exact = x.double().flatten(1) @ operator.matrix.double().T
    torch.testing.assert_close(operator.A(x).double(), exact, rtol=1e-5, atol=1e-5)
    assert torch.equal(operator.A(x)[69:70], operator.A(x[69:70]))
    assert torch.equal(operator.A_adjoint(y)[69:70], operator.A_adjoint(y[69:70]))

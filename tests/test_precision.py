"""Precision modes of the measurement products (``--float32_matmul_precision``): what each one guarantees."""

import pytest
import torch

from dip_lightning.algorithms import NetGD
from dip_lightning.data import MNISTDataModule
from dip_lightning.operators import CompressiveSensing, PhaseRetrieval
from tests.helpers import fit


@pytest.fixture
def precision():
    """Set torch's float32 matmul precision for one test, then restore it."""
    before = torch.get_float32_matmul_precision()
    yield torch.set_float32_matmul_precision
    torch.set_float32_matmul_precision(before)


@pytest.mark.parametrize(("mode", "dtype", "tolerance"), [("high", torch.float32, 1e-5), ("medium", torch.bfloat16, 3e-2)])
def test_fast_modes_store_the_rounded_matrix_and_measure_it_exactly(precision, mode, dtype, tolerance):
    reference = CompressiveSensing((1, 12, 12), ratio=0.5, seed=3)
    precision(mode)
    fast = CompressiveSensing((1, 12, 12), ratio=0.5, seed=3)
    assert fast.matrix.dtype == dtype and fast.describe()["matmul_precision"] == mode
    assert torch.equal(fast.matrix, reference.matrix.to(dtype))
    x = torch.rand(3, 1, 12, 12)
    exact = (x.double().flatten(1) @ fast.matrix.double().T).float()
    assert torch.equal(fast.measure(x, torch.arange(3)), exact)  # measurements: exact products, any mode
    # the products used for fitting: within the mode's rounding, and A_adjoint still the adjoint of A
    torch.testing.assert_close(fast.A(x), exact, rtol=tolerance, atol=tolerance)
    y = torch.randn(3, fast.m)
    lhs = (fast.A(x) * y).sum(1)
    rhs = (x * fast.A_adjoint(y)).flatten(1).sum(1)
    torch.testing.assert_close(lhs, rhs, rtol=tolerance, atol=tolerance * lhs.abs().max().item())


def test_phase_retrieval_measures_magnitudes_exactly_in_a_fast_mode(precision):
    precision("medium")
    operator = PhaseRetrieval((1, 8, 8), ratio=2.0)
    x = torch.rand(2, 1, 8, 8)
    expected = (x.double().flatten(1) @ operator.matrix.double().T).abs().float()
    assert torch.equal(operator.measure(x, torch.arange(2)), expected)


def run(tmp_path, data_root, mode, precision) -> dict[int, float]:
    precision(mode)
    dm = MNISTDataModule(root=str(data_root), indices=[3, 5, 8, 13], chunk_size=4)
    model = NetGD(CompressiveSensing(dm.image_shape, ratio=0.25), chunk_size=4, iterations=300,
                  optimizer=lambda p: torch.optim.SGD(p, lr=0.08, momentum=0.9))
    return {i: float(row["nmse"]) for i, row in fit(model, dm, tmp_path / mode).items()}


def test_fast_modes_reach_the_reproducible_quality_on_a_short_run(tmp_path, data_root, precision):
    """Documented tolerance: after 300 iterations each digit's nMSE in a fast mode is within 20% (relative)
    or 0.005 (absolute) of the reproducible mode's."""
    reference = run(tmp_path, data_root, "highest", precision)
    for mode in ("high", "medium"):
        fast = run(tmp_path, data_root, mode, precision)
        for index, nmse in reference.items():
            assert fast[index] == pytest.approx(nmse, rel=0.2, abs=0.005), (mode, index)
    assert max(reference.values()) < 0.5  # not vacuous: the digits were reconstructed

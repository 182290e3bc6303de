"""Precision modes of the measurement products (``--float32_matmul_precision``): what each one guarantees."""

import pytest
import torch

from dip_lightning.algorithms import NetGD
from dip_lightning.cli import instantiate
from dip_lightning.data import MNISTDataModule
from dip_lightning.operators import CompressiveSensing, PhaseRetrieval
from dip_lightning.precision import choose_matmul_precision
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


@pytest.mark.parametrize("native", [True, False])
def test_auto_uses_bfloat16_only_where_the_cpu_computes_it_natively(native, monkeypatch):
    """``auto`` follows torch's own check for native bfloat16 (AVX512-BF16 or AMX): bfloat16 products where it says
    yes, the reproducible float32 products where it says no, and the log line says which and why."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    chosen, note, warning = choose_matmul_precision("auto", "cpu")
    assert chosen == ("medium" if native else "highest") and warning is None
    assert ("computes bfloat16 natively" in note) == native and ("emulated" in note) == (not native)
    explicit, note, warning = choose_matmul_precision("medium", "cpu")  # the user's choice is kept, with a warning
    assert explicit == "medium" and note is None and (warning is None) == native
    assert native or "many times slower" in warning and "--float32_matmul_precision auto" in warning
    assert choose_matmul_precision("high", "cpu") == ("high", None, None)


@pytest.mark.parametrize(("capability", "expected"), [((9, 0), "medium"), ((8, 0), "medium"), ((7, 5), "highest")])
def test_auto_on_a_gpu_follows_its_compute_capability(capability, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *args: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "a GPU")
    chosen, note, _ = choose_matmul_precision("auto", "gpu")
    assert chosen == expected and f"{capability[0]}.{capability[1]}" in note
    assert choose_matmul_precision("auto", "cpu")[0] in ("medium", "highest")  # --trainer.accelerator cpu: the CPU's


def test_the_cli_sets_what_auto_chose_and_says_so(data_root, monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    before = torch.get_float32_matmul_precision()
    try:
        model, _ = instantiate("configs/celeba_cs_netgd.yaml", ["--data.root", str(data_root), "--data.num_images", "1",
                                                                 "--float32_matmul_precision", "auto"])
        assert model.operator.matmul_precision == "highest"  # no native bfloat16: the reproducible float32 products
    finally:
        torch.set_float32_matmul_precision(before)

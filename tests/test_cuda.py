"""On a CUDA GPU, the CPU's guarantees hold (skipped where there is none; run by ``scripts/bench/gpu_check.sh``)."""

import pytest
import torch

from dip_lightning.algorithms import NetGD, Restarts
from dip_lightning.data import MNISTDataModule
from dip_lightning.operators import CompressiveSensing
from dip_lightning.priors import DeepDecoder
from tests.helpers import fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DIGITS = [3, 5, 8, 13, 21, 34]


def reconstruct(tmp_path, data_root, indices, chunk_size, accelerator, **kwargs) -> dict[int, torch.Tensor]:
    dm = MNISTDataModule(root=str(data_root), indices=indices, chunk_size=chunk_size)
    model = NetGD(CompressiveSensing(dm.image_shape, ratio=0.25), chunk_size=chunk_size, iterations=25,
                  optimizer=lambda p: torch.optim.SGD(p, lr=0.08, momentum=0.9), **kwargs)
    root = tmp_path / f"{accelerator}_{chunk_size}_{len(indices)}_{kwargs.get('compile', False)}"
    fit(model, dm, root, accelerator=accelerator, devices=1)
    saved = torch.load(root / "reconstructions.pt")
    return dict(zip(saved["index"].tolist(), saved["reconstruction"]))


def test_reset_on_the_gpu_draws_the_cpu_weights_in_place():
    cpu = DeepDecoder(4, (1, 28, 28), seed=5)
    gpu = DeepDecoder(4, (1, 28, 28), seed=5).cuda()
    pointers = [p.data_ptr() for p in gpu.parameters()]
    indices, restarts, slots = torch.tensor([7, 9]), torch.tensor([0, 3]), torch.tensor([2, 0])
    cpu.reset(indices, restarts, slots)
    gpu.reset(indices, restarts, slots)
    assert [p.data_ptr() for p in gpu.parameters()] == pointers  # the optimizer's (and CUDA graphs') tensors
    for a, b in zip([*cpu.parameters(), *cpu.buffers()], [*gpu.parameters(), *gpu.buffers()]):
        assert b.is_cuda and torch.equal(a, b.cpu())


def test_gpu_follows_the_cpu_and_keeps_images_independent(tmp_path, data_root):
    on_cpu = reconstruct(tmp_path, data_root, DIGITS, 6, "cpu", restarts=Restarts(count=2))
    on_gpu = reconstruct(tmp_path, data_root, DIGITS, 6, "gpu", restarts=Restarts(count=2))
    alone = reconstruct(tmp_path, data_root, [DIGITS[2]], 1, "gpu", restarts=Restarts(count=2))
    for index in DIGITS:  # other kernels, other rounding, 25 iterations: close, not equal
        torch.testing.assert_close(on_gpu[index], on_cpu[index], rtol=0, atol=2e-3)
    torch.testing.assert_close(alone[DIGITS[2]], on_gpu[DIGITS[2]], rtol=0, atol=1e-5)
    assert (on_gpu[3] - on_gpu[5]).abs().max() > 0.1  # not vacuous: the digits went different ways


@pytest.mark.parametrize("mode", [True, "reduce-overhead"])
def test_compiled_steps_on_the_gpu_follow_the_eager_ones(tmp_path, data_root, mode):
    eager = reconstruct(tmp_path, data_root, DIGITS[:4], 4, "gpu")
    compiled = reconstruct(tmp_path, data_root, DIGITS[:4], 4, "gpu", compile=mode)
    for index in DIGITS[:4]:
        torch.testing.assert_close(compiled[index], eager[index], rtol=0, atol=2e-3)

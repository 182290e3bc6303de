"""The compiled fitting step (``--model.compile true``): same maths as the eager one, to rounding."""

import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.utils import counters

from dip_lightning.algorithms import NetGD
from dip_lightning.cli import run_fit
from dip_lightning.data import MNISTDataModule
from dip_lightning.operators import CompressiveSensing
from dip_lightning.priors.layers import upsample2x
from tests.helpers import fit

pytestmark = pytest.mark.slow  # each test compiles (seconds)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 1, 1, 4)])
def test_compiled_upsampling_matches_interpolate_in_values_and_gradients(shape):
    h = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    g = torch.randn(*shape[:2], 2 * shape[2], 2 * shape[3], dtype=torch.float64)
    reference = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
    compiled = torch.compile(upsample2x, dynamic=False, fullgraph=True)(h)
    torch.testing.assert_close(compiled, reference, rtol=0, atol=1e-14)
    torch.testing.assert_close(torch.autograd.grad(compiled, h, g)[0], torch.autograd.grad(reference, h, g)[0],
                               rtol=0, atol=1e-13)


def run(tmp_path, data_root, indices, chunk_size, compile):
    dm = MNISTDataModule(root=str(data_root), indices=indices, chunk_size=chunk_size)
    model = NetGD(CompressiveSensing(dm.image_shape, ratio=0.25), chunk_size=chunk_size, iterations=25,
                  optimizer=lambda p: torch.optim.SGD(p, lr=0.08, momentum=0.9), compile=compile)
    root = tmp_path / f"{chunk_size}_{compile}"
    rows = fit(model, dm, root)
    saved = torch.load(root / "reconstructions.pt")
    return rows, dict(zip(saved["index"].tolist(), saved["reconstruction"]))


def test_compiled_run_follows_the_eager_run_and_keeps_images_independent(tmp_path, data_root):
    digits = [3, 5, 8, 13, 21]
    eager_rows, eager = run(tmp_path, data_root, digits, 5, compile=False)
    compiled_rows, compiled = run(tmp_path, data_root, digits, 5, compile=True)
    _, alone = run(tmp_path, data_root, [8], 1, compile=True)
    # documented tolerance: the two orders of rounding agree to 1e-3 per pixel after 25 iterations ...
    for i in digits:
        torch.testing.assert_close(compiled[i], eager[i], rtol=0, atol=1e-3)
        assert abs(float(compiled_rows[i]["nmse"]) - float(eager_rows[i]["nmse"])) < 1e-3
    # ... and a compiled image's result does not depend on its chunk mates beyond rounding: Inductor's kernels for
    # different chunk sizes may round differently in the last bit (7e-8 after one step on an AMD EPYC with AVX-512,
    # 4.3e-6 after these 25; under 1e-6 on other CPUs)
    torch.testing.assert_close(alone[8], compiled[8], rtol=0, atol=1e-5)
    assert (eager[3] - eager[5]).abs().max() > 0.1  # not vacuous: the images were fitted


def test_a_sweep_of_compiled_runs_in_one_process_keeps_compiling(tmp_path, data_root):
    """``run_fit`` (the scripts' sweeps) resets torch.compile's caches per run: each run's module is new, so without it
    the runs after torch's recompile limit would fall back to eager steps. Here the limit is 1, so the second run
    would already fall back. (torch's own ``config.patch``: a monkeypatch of the config module broke it for the tests
    after this one.)"""
    compiled_frames = []
    with torch._dynamo.config.patch(recompile_limit=1):
        for ratio in (0.25, 0.5):
            run_fit("configs/mnist_cs_netgd.yaml", tmp_path / str(ratio),
                    ["--data.root", str(data_root), "--data.indices", "[3, 5]", "--model.iterations", "3",
                     "--model.restarts.count", "1", "--model.compile", "true", "--model.operator.ratio", str(ratio)])
            compiled_frames.append(counters["frames"]["ok"])
    assert compiled_frames[1] > compiled_frames[0] > 0

"""The reconstruction of an image depends only on that image, the seeds and the config."""

from functools import partial

import pytest
import torch

from dip_lightning.algorithms import (
    AmplitudeFlow,
    Lasso,
    MagnitudeSmoothing,
    NetGD,
    NetGDTV,
    NetPGD,
    Restarts,
    Retry,
    SparseAmplitudeFlow,
    TVMinimization,
    UntrainedPriorModule,
)
from dip_lightning.data import MNISTDataModule
from dip_lightning.operators import CompressiveSensing, Denoising, Inpainting, PhaseRetrieval
from dip_lightning.priors import SkipNetwork
from tests.helpers import fit

CHUNK = list(range(20, 36))  # 16 test digits


def sgd(params):
    return torch.optim.SGD(params, lr=0.08, momentum=0.9)


def reconstruct(algorithm, indices, chunk_size, root, data_root, **kwargs) -> dict[int, torch.Tensor]:
    dm = MNISTDataModule(root=str(data_root), indices=indices, chunk_size=chunk_size)
    if issubclass(algorithm, UntrainedPriorModule):
        kwargs = {"optimizer": sgd, **kwargs}
    operator = kwargs.pop("operator", CompressiveSensing)(dm.image_shape, **kwargs.pop("measure", {"ratio": 0.25}))
    precision = kwargs.pop("precision", "32-true")
    model = algorithm(operator, chunk_size=chunk_size, iterations=25, **kwargs)
    rows = fit(model, dm, root, precision=precision)
    saved = torch.load(root / "reconstructions.pt")
    assert sorted(rows) == saved["index"].tolist() == sorted(indices)
    return dict(zip(saved["index"].tolist(), saved["reconstruction"]))


@pytest.mark.parametrize(("algorithm", "kwargs"), [
    (NetGD, {"restarts": Restarts(count=2)}), (NetPGD, {"inner_steps": 3}), (Lasso, {"basis": "wavelet"}), (TVMinimization, {}),
    (NetPGD, {"operator": PhaseRetrieval, "measure": {"ratio": 0.5}, "inner_steps": 3, "eta_decay_to": 0.1}),
    (SparseAmplitudeFlow, {"operator": PhaseRetrieval, "measure": {"ratio": 1.0}, "sparsity": 0.1}),
    (AmplitudeFlow, {"operator": PhaseRetrieval, "measure": {"ratio": 2.0}}),
    # DIP: the skip network on noisy digits, with input noise and output averaging. In float64: float32
    # convolutions round differently for different numbers of networks (the decoder avoids convolutions).
    (NetGD, {"operator": Denoising, "measure": {"noise_sigma": 0.1}, "input_noise": 0.05, "average": 0.9,
             "prior": partial(SkipNetwork, channels=[8, 8], skip_channels=[2, 2], input_channels=4),
             "precision": "64-true"}),
    (TVMinimization, {"operator": Inpainting, "measure": {"kept": 0.5}}),
    # failing restarts re-seeded mid-run (every image fails so low a bar, so the retries happen)
    (NetGD, {"operator": PhaseRetrieval, "measure": {"ratio": 0.5}, "restarts": Restarts(count=3, combine="best"), "retry": Retry(residual=1e-6, every=5, until=0.8)}),
    # a learning-rate schedule, started afresh with every chunk, also for the re-seeded networks
    (NetGD, {"operator": PhaseRetrieval, "measure": {"ratio": 0.5}, "lr_scheduler": partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=25), "restarts": Restarts(count=2, combine="best"), "retry": Retry(residual=1e-6, every=5, until=0.8)}),
    # the smoothed start of phase retrieval: epsilon from each image's own measurements
    (NetGD, {"operator": PhaseRetrieval, "measure": {"ratio": 0.5}, "restarts": Restarts(count=2, combine="best"), "retry": Retry(residual=1e-6, every=5, until=0.8), "smoothing": MagnitudeSmoothing(scale=0.6, until=0.6)}),
    # restarts at a factor of the rate, also after a retry re-seeds them; the mean of the restarts near the best one
    (NetGD, {"operator": PhaseRetrieval, "measure": {"ratio": 0.5}, "restarts": Restarts(count=3, combine="best", lr_factors=[0.5, 1.0], best_radius=0.3), "retry": Retry(residual=1e-6, every=5, until=0.8)}),
    # Net-GD with its total-variation image step: x leaves the networks' range, each image's x its own
    (NetGDTV, {"restarts": Restarts(count=2, combine="median"), "tv_weight": 0.003, "coupling": 0.01,
               "tv_iterations": 200}),
    # Net-PGD after a smoothed Net-GD warm start, with retries in both phases
    (NetPGD, {"operator": PhaseRetrieval, "measure": {"ratio": 0.5}, "inner_steps": 2, "warm_start": 12, "eta_decay_to": 0.1, "restarts": Restarts(count=2, combine="best"), "smoothing": MagnitudeSmoothing(scale=0.6), "retry": Retry(residual=1e-6, every=5, until=0.8)}),
])
def test_alone_in_chunk_or_elsewhere_gives_the_same_reconstruction(algorithm, kwargs, tmp_path, data_root):
    kwargs = dict(kwargs)
    target = 27
    alone = reconstruct(algorithm, [target], 1, tmp_path / "alone", data_root, **kwargs)
    chunk = reconstruct(algorithm, CHUNK, 16, tmp_path / "chunk", data_root, **kwargs)
    moved = CHUNK[::-1][:5] + [target]  # another position, other neighbours, the second chunk
    elsewhere = reconstruct(algorithm, moved, 4, tmp_path / "moved", data_root, **kwargs)
    torch.testing.assert_close(chunk[target], alone[target], rtol=0, atol=1e-5)
    torch.testing.assert_close(elsewhere[target], alone[target], rtol=0, atol=1e-5)
    # and the test is not vacuous: the 25 iterations moved each image somewhere different
    assert (chunk[20] - chunk[21]).abs().max() > 0.1

"""Restarts at a factor of the learning rate (``restart_lr_factors``): each such restart follows exactly the
optimizer run at that rate, the others are untouched, and bad settings are refused."""

import pytest
import torch

from dip_lightning.algorithms import NetGD, Restarts
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing, PhaseRetrieval
from dip_lightning.priors import DeepDecoder

LR = 0.1


def netgd(restarts: int, optimizer: str, lr: float = LR, lr_factors: list[float] | None = None) -> NetGD:
    def build(params):
        if optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)
        return torch.optim.SGD(params, lr=lr, momentum=0.9)

    return NetGD(PhaseRetrieval((1, 8, 8), ratio=0.5), chunk_size=3, iterations=30, prior=lambda b, shape, seed: DeepDecoder(b, shape, seed, channels=[6, 4]), optimizer=build,
                 restarts=Restarts(count=restarts, lr_factors=lr_factors))


def every_network(model: NetGD, images: torch.Tensor) -> torch.Tensor:
    """The outputs of all restarts * b networks after the run, (restarts, b, C, H, W)."""
    seen = {}
    model.reconstruct({"index": torch.arange(len(images)), "image": images},
                      on_step=lambda chunk, loss: seen.update(chunk=chunk))
    chunk = seen["chunk"]
    with torch.no_grad():
        return model.prior(chunk.decoders).view(chunk.restarts, chunk.size, *images.shape[1:])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_scaled_restart_is_the_run_at_the_scaled_rate_and_the_others_are_untouched(optimizer):
    torch.manual_seed(0)
    images = torch.rand(3, 1, 8, 8)
    mixed = every_network(netgd(3, optimizer, lr_factors=[0.25, 1.0]), images)
    plain = every_network(netgd(3, optimizer), images)
    slow = every_network(netgd(1, optimizer, lr=0.25 * LR), images)  # restart 0 of each image: the same seeds
    # restarts 0 and 2 (factor 0.25, cycled) follow the optimizer at a quarter of the rate; restart 1 is unchanged
    torch.testing.assert_close(mixed[0], slow[0], rtol=0, atol=2e-5)
    assert torch.equal(mixed[1], plain[1])
    # not vacuous: the rate made a difference, and restart 2 (seeded differently) is also slowed, not unchanged
    assert (mixed[0] - plain[0]).abs().max() > 1e-2
    assert (mixed[2] - plain[2]).abs().max() > 1e-2


def test_bad_factors_are_refused_with_the_fix():
    for factors in ([], [0.5, 0.0], [1.0, -0.5]):
        with pytest.raises(DipLightningError, match="restarts.lr_factors"):
            netgd(3, "sgd", lr_factors=factors)
    model = NetGD(CompressiveSensing((1, 8, 8), ratio=0.5), chunk_size=2, iterations=5, restarts=Restarts(count=2, lr_factors=[0.5, 1.0]))
    assert model.describe()["restarts"]["lr_factors"] == [0.5, 1.0]

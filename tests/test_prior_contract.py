"""The contract every untrained prior keeps, checked for each one in one list: network b is the stock torch.nn
network it claims to be, it is seeded by its image and restart (never its slot), its gradient and output do
not depend on the other networks, and its input perturbation is its own.

A new prior joins ``PRIORS`` with its stock-layer rebuild in ``tests/references.py``.
"""

from collections.abc import Callable

import pytest
import torch

from dip_lightning.priors import DeepDecoder, SkipNetwork, UntrainedPrior
from tests.references import reference_decoder, reference_skip_network

Factory = Callable[[int, int], UntrainedPrior]  # (networks, seed) -> prior

PRIORS: dict[str, tuple[Factory, Callable]] = {
    "deep-decoder": (lambda b, seed: DeepDecoder(b, (1, 28, 28), seed, [25, 15, 10]), reference_decoder),
    "deep-decoder-rgb": (lambda b, seed: DeepDecoder(b, (3, 64, 64), seed, [32, 25, 15, 10]), reference_decoder),
    "deep-decoder-odd": (lambda b, seed: DeepDecoder(b, (3, 37, 50), seed, [16, 8, 8, 8]), reference_decoder),
    "skip-network": (lambda b, seed: SkipNetwork(b, (3, 32, 32), seed, channels=[8, 12, 16],
                                                 skip_channels=[4, 4, 0], input_channels=5), reference_skip_network),
    "skip-network-odd": (lambda b, seed: SkipNetwork(b, (1, 16, 24), seed, channels=[6, 6], skip_channels=[2, 2],
                                                     input_channels=5), reference_skip_network),
}
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture(params=list(PRIORS))
def prior(request) -> tuple[Factory, Callable]:
    return PRIORS[request.param]


def test_every_network_is_its_stock_layer_rebuild(prior):
    make, reference = prior
    net = make(3, 0)
    with torch.no_grad():  # perturb the norms' gains and biases so that their affine part is exercised
        for name, p in net.named_parameters():
            if "gain" in name or "bias" in name:
                p.add_(0.1 * torch.randn_like(p))
        out = net()
    assert out.shape == (3, *net.image_shape) and (out > 0).all() and (out < 1).all()  # a sigmoid's range
    for slot in range(3):
        expected = reference(net, slot).train()(net.latent[slot : slot + 1])
        torch.testing.assert_close(out[slot : slot + 1], expected, **TOLERANCE)


def test_a_network_is_seeded_by_its_image_and_restart_not_its_slot(prior):
    make, _ = prior
    net = make(3, 7)
    net.reset(torch.tensor([10, 11, 12]), torch.tensor([0, 0, 1]))
    first = net().detach()
    net.reset(torch.tensor([12, 11, 10]), torch.tensor([1, 0, 0]))
    torch.testing.assert_close(net().detach(), first.flip(0), **TOLERANCE)
    alone = make(1, 7)
    alone.reset(torch.tensor([11]))
    torch.testing.assert_close(alone().detach(), first[1:2], **TOLERANCE)  # the same network in a bank of one
    other_restart, other_seed = make(1, 7), make(1, 8)
    other_restart.reset(torch.tensor([11]), torch.tensor([1]))
    other_seed.reset(torch.tensor([11]))
    assert not torch.allclose(other_restart(), first[1:2]) and not torch.allclose(other_seed(), first[1:2])


def test_gradients_do_not_cross_networks(prior):
    make, _ = prior
    net = make(3, 0)
    net()[1].sum().backward()
    touched = 0
    for p in net.parameters():
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0
        touched += bool(p.grad[1].abs().sum() > 0)
    assert touched >= len(list(net.parameters())) // 2  # (a conv bias just before a norm cancels out)


def test_input_perturbation_is_fresh_per_evaluation_and_per_image_and_leaves_the_inputs(prior):
    make, _ = prior
    net, swapped = make(2, 3), make(2, 3)
    net.reset(torch.tensor([5, 9]))
    swapped.reset(torch.tensor([9, 5]))
    latent = net.latent.clone()
    first = net(perturbation=0.1).detach()
    torch.testing.assert_close(swapped(perturbation=0.1).detach(), first.flip(0), **TOLERANCE)
    assert torch.equal(net.latent, latent)
    assert not torch.allclose(net(perturbation=0.1), first)
    torch.testing.assert_close(net(), net())  # and none without it

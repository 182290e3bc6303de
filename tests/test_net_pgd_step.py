"""Net-PGD's image-space step: fixed, or decaying over the second half of the budget (``eta_decay_to``)."""

import pytest
import torch

from dip_lightning.algorithms import NetPGD
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import PhaseRetrieval
from dip_lightning.priors import DeepDecoder

ITERATIONS = 12


def module(**kwargs) -> NetPGD:
    return NetPGD(PhaseRetrieval((1, 8, 8), ratio=1.0), chunk_size=2, iterations=ITERATIONS, inner_steps=2, eta=2.0,
                  prior=lambda b, shape, seed: DeepDecoder(b, shape, seed, channels=[6, 4]),
                  optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), **kwargs)


def estimates_by_iteration(model: NetPGD) -> dict[int, torch.Tensor]:
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    seen = {}
    model.reconstruct({"index": torch.tensor([3, 5]), "image": images},
                      on_step=lambda chunk, loss: seen.update({chunk.iteration: chunk.estimate.clone()}))
    return seen


def test_step_is_fixed_for_the_first_half_then_falls_linearly_to_the_fraction():
    model = module(eta_decay_to=0.25)
    steps = [model.step_size(t) for t in range(ITERATIONS + 1)]
    assert steps[:ITERATIONS // 2 + 1] == [2.0] * (ITERATIONS // 2 + 1)
    assert steps[-1] == pytest.approx(0.5)
    assert steps[9] == pytest.approx(2.0 * (1 - 0.75 * (2 * 9 / ITERATIONS - 1)))
    assert all(a > b for a, b in zip(steps[ITERATIONS // 2:], steps[ITERATIONS // 2 + 1:]))
    assert {module().step_size(t) for t in range(ITERATIONS + 1)} == {2.0}


def test_decay_changes_only_the_second_half_of_the_run():
    fixed, decayed = estimates_by_iteration(module()), estimates_by_iteration(module(eta_decay_to=0.1))
    # outer iteration t uses step_size(t - 1): the first that differs is t = ITERATIONS / 2 + 2
    for t in range(1, ITERATIONS // 2 + 2):
        torch.testing.assert_close(decayed[t], fixed[t], rtol=0, atol=0)
    assert (decayed[ITERATIONS] - fixed[ITERATIONS]).abs().max() > 1e-4


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_a_fraction_outside_0_1_is_refused_with_the_option_named(fraction):
    with pytest.raises(DipLightningError, match="--model.eta_decay_to"):
        module(eta_decay_to=fraction)

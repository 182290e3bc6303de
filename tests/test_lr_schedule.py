"""The learning rate as a schedule of the chunk's outer iteration (``--model.lr_scheduler``)."""

from functools import partial

import pytest
import torch
from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, ReduceLROnPlateau

from dip_lightning.algorithms import NetGD, NetPGD
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing
from dip_lightning.priors import DeepDecoder

ITERATIONS = 12


def sgd(params, lr=0.15):
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def reference_rates(scheduler, lr: float) -> list[float]:
    """PyTorch's own loop: the rate of each step of an optimizer whose scheduler steps after it."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    schedule = scheduler(optimizer)
    rates = []
    for _ in range(ITERATIONS):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def rates_used(model, batch, chunks: int = 2) -> list[list[float]]:
    """The rate of every optimizer step of ``chunks`` chunks in a row, as the optimizer saw it."""
    optimizer = model.optimizer()
    seen, step = [], optimizer.step

    def recording_step(*args, **kwargs):
        seen[-1].append(optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    optimizer.step = recording_step
    for _ in range(chunks):
        seen.append([])
        model.reconstruct(batch, stop_early=False)
    return seen


def batch_of(operator, images: int = 2) -> dict[str, torch.Tensor]:
    image = torch.rand(images, *operator.image_shape, generator=torch.Generator().manual_seed(0))
    return {"index": torch.arange(images), "image": image, "measurements": operator.A(image)}


@pytest.mark.parametrize("scheduler", [partial(ConstantLR, factor=0.5, total_iters=4),
                                       partial(CosineAnnealingLR, T_max=ITERATIONS, eta_min=0.01)])
def test_every_chunk_follows_the_schedule_of_pytorchs_own_loop(scheduler):
    operator = CompressiveSensing((1, 8, 8), ratio=0.5)
    model = NetGD(operator, chunk_size=2, iterations=ITERATIONS, optimizer=sgd, lr_scheduler=scheduler,
                  prior=partial(DeepDecoder, channels=[4, 4]))
    expected = reference_rates(scheduler, 0.15)
    assert len(set(expected)) > 1  # the schedule changes the rate
    first, second = rates_used(model, batch_of(operator))
    assert first == pytest.approx(expected, rel=1e-12) and second == first


def test_net_pgd_keeps_an_outer_iterations_rate_for_its_projection_steps():
    operator = CompressiveSensing((1, 8, 8), ratio=0.5)
    scheduler = partial(ConstantLR, factor=0.5, total_iters=4)
    model = NetPGD(operator, chunk_size=2, iterations=ITERATIONS, inner_steps=3, optimizer=sgd, lr_scheduler=scheduler)
    (used,) = rates_used(model, batch_of(operator), chunks=1)
    expected = [rate for rate in reference_rates(scheduler, 0.15) for _ in range(3)]
    assert used == pytest.approx(expected, rel=1e-12)


def test_the_curvature_bound_caps_every_scheduled_rate():
    """At f = 0.1 the bound (about 0.046) lies between the scheduled 0.075 and 0.15: both are capped."""
    operator = CompressiveSensing((1, 28, 28), ratio=0.1)
    scheduler = partial(ConstantLR, factor=0.5, total_iters=4)
    bounded = NetGD(operator, chunk_size=1, iterations=ITERATIONS, optimizer=sgd, lr_scheduler=scheduler,
                    curvature_lr=0.02)
    bound = bounded.lr_bound()
    assert 0.02 < bound < 0.075
    bounded.configure_optimizers()
    assert bounded.schedule.rates == [[bound]] * ITERATIONS
    wide = NetGD(operator, chunk_size=1, iterations=ITERATIONS, optimizer=sgd, lr_scheduler=scheduler,
                 curvature_lr=0.04)  # bound about 0.09: only the later rate is capped
    wide.configure_optimizers()
    assert wide.schedule.rates == [[pytest.approx(0.075)]] * 4 + [[wide.lr_bound()]] * (ITERATIONS - 4)


def test_a_scheduler_that_needs_a_metric_is_refused_with_the_fix():
    with pytest.raises(DipLightningError, match="ReduceLROnPlateau.*ConstantLR"):
        NetGD(CompressiveSensing((1, 8, 8), ratio=0.5), chunk_size=1, iterations=ITERATIONS, optimizer=sgd,
              lr_scheduler=ReduceLROnPlateau)

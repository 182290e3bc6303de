"""Learning rates as a function of a chunk's outer iteration, worked out once before any chunk runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from lightning.pytorch.cli import LRSchedulerCallable
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from dip_lightning.errors import DipLightningError


def scheduled_rates(scheduler: LRSchedulerCallable, configured: list[float], iterations: int) -> list[list[float]]:
    """The learning rates of each parameter group at steps 0 .. iterations - 1 of an optimizer whose groups start
    at the ``configured`` rates and whose ``scheduler`` steps after every optimizer step (PyTorch's loop), read
    off a stand-in optimizer. A scheduler that needs a metric (``ReduceLROnPlateau``) is refused."""
    stand_in = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in configured])
    schedule = scheduler(stand_in)
    if isinstance(schedule, ReduceLROnPlateau):
        raise DipLightningError(
            "--model.lr_scheduler ReduceLROnPlateau needs a validation metric, and a reconstruction has none: "
            "use a schedule of the iteration, e.g. torch.optim.lr_scheduler.ConstantLR, LinearLR or CosineAnnealingLR"
        )
    rates = []
    for _ in range(iterations):
        rates.append([group["lr"] for group in stand_in.param_groups])
        stand_in.step()
        schedule.step()
    return rates


def rate_table(scheduler: LRSchedulerCallable | None, configured: list[float], iterations: int,
               bound: float) -> list[list[float]]:
    """The learning rate of each parameter group at each outer iteration 0 .. iterations - 1: ``scheduler``'s rates
    for the ``configured`` ones (:func:`scheduled_rates`), each capped at ``bound``; without a scheduler, one row
    (the configured rates, capped) that holds throughout.

    Worked out once, so that every chunk (and every network re-seeded by a retry) sees the rate of its chunk's
    iteration, whatever ran before it.
    """
    if scheduler is None:
        return [[min(lr, bound) for lr in configured]]
    return [[min(lr, bound) for lr in step] for step in scheduled_rates(scheduler, configured, iterations)]


class ScheduledOptimizer:
    """Builds the networks' optimizer and sets its learning rates by a chunk's outer iteration.

    Args:
        factory: the optimizer of the network weights (a class path and its init args in a config).
        scheduler: the learning rate as a function of the chunk's outer iteration t: any ``torch.optim.lr_scheduler``
            class that needs no metric, stepped once per outer iteration and started afresh with every chunk (e.g.
            ``ConstantLR`` with ``factor: 0.5, total_iters: 600`` halves the rate for the first 600 iterations);
            ``None``: the configured rate throughout. Refused now if it cannot be used.
    """

    def __init__(self, factory: Callable[[Iterable[Tensor]], Optimizer], scheduler: LRSchedulerCallable | None) -> None:
        self.factory = factory
        self.scheduler = scheduler
        if scheduler is not None:
            scheduled_rates(scheduler, [1.0], 1)
        self.rates: list[list[float]] = []  # [iteration][parameter group], set by build

    def build(self, parameters: Iterable[Tensor], iterations: int, bound: float) -> Optimizer:
        """The optimizer of ``parameters``, at the rates of iteration 0; the rates of iterations 0 .. iterations - 1
        are worked out now (:func:`rate_table`, each at most ``bound``)."""
        optimizer = self.factory(parameters)
        self.rates = rate_table(self.scheduler, [group["lr"] for group in optimizer.param_groups], iterations, bound)
        self.set_iteration(optimizer, 0)
        return optimizer

    def set_iteration(self, optimizer: Optimizer, iteration: int) -> None:
        """The rates of outer iteration ``iteration`` (the last scheduled one beyond the schedule)."""
        for group, lr in zip(optimizer.param_groups, self.rates[min(iteration, len(self.rates) - 1)]):
            group["lr"] = lr

    @staticmethod
    def forget(optimizer: Optimizer, parameters: Iterable[Tensor], slots: Tensor | None = None) -> None:
        """Clear the optimizer's state (momentum and the like) of every network, or of the networks in ``slots``
        (the first dimension of every parameter)."""
        state = getattr(optimizer, "optimizer", optimizer).state  # Lightning wraps the optimizer
        if slots is None:
            state.clear()
            return
        for parameter in parameters:
            for value in state.get(parameter, {}).values():
                if torch.is_tensor(value) and value.shape == parameter.shape:
                    value[slots.to(value.device)] = 0

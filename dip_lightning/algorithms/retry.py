"""Which network fills each slot of a chunk: restart numbers for every round, and failing restarts replaced."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dip_lightning.algorithms.thresholds import Threshold, threshold_at_ratio
from dip_lightning.errors import DipLightningError


@dataclass
class Retry:
    """Restarts that fail are replaced in the same batched pass.

    Every ``every`` iterations, up to the fraction ``until`` of the search budget (:class:`RestartNumbers`), each
    image none of whose networks has a relative measurement residual ||y - A(G(w; z))|| / ||y|| at or below
    ``residual`` keeps its best network and has every other one re-seeded (a fresh restart number, random start and
    optimizer state), fitted for the rest of the budget.

    Args:
        residual: the bar: one number, or a table ``{f: threshold}`` by sampling ratio f = m / n
            (:func:`~dip_lightning.algorithms.thresholds.threshold_at_ratio`).
        every: iterations between checks.
        until: the last check is at this fraction of the search budget.
    """

    residual: Threshold
    every: int = 1000
    until: float = 0.5


class RestartNumbers:
    """The restart number of every network slot of a chunk, which with (seed, dataset index) seeds the network.

    Slot ``r * b + i`` of a chunk of b images serves restart r of image i. Round k of a chunk (0, or a rescue round
    k >= 1) starts restart r at number ``k * S + r``, where S (:attr:`per_round`) counts the numbers one round can
    use: a retry gives a network the number of its restart plus R (the restarts per image), once per retry check.
    So no network is ever seeded twice, and an image's networks do not depend on its chunk mates.

    Args:
        restarts: R, networks per image.
        retry: the retry settings (``None``: no retries).
        search: the iterations the search budget counts (Net-GD: all of them; Net-PGD: its Net-GD warm start):
            fractions of the budget (``retry.until``) are fractions of this.
        iterations: a round's outer iterations (no check at the last one).
        ratio: the sampling ratio m / n, for a threshold table.
    """

    def __init__(self, restarts: int, retry: Retry | None, search: int, iterations: int, ratio: float) -> None:
        self.restarts = restarts
        self.retry = retry
        self.threshold = None if retry is None else threshold_at_ratio(retry.residual, ratio, "retry.residual")
        if retry is not None and (not self.threshold > 0 or retry.every < 1 or not 0 <= retry.until <= 1):
            raise DipLightningError(
                f"--model.retry.residual ({self.threshold}) must be positive, retry.every ({retry.every}) at least 1 "
                f"and retry.until ({retry.until}) in [0, 1]; or --model.retry null")
        self.checkpoints = [] if retry is None else [
            t for t in range(retry.every, iterations, retry.every) if t <= retry.until * search]
        self.per_round = restarts * (1 + len(self.checkpoints))

    def first(self, round: int, size: int) -> Tensor:
        """The numbers of round ``round``'s networks for a chunk of ``size`` images, (R * size,) on the host."""
        return round * self.per_round + torch.arange(self.restarts).repeat_interleave(size)

    def is_checkpoint(self, iteration: int) -> bool:
        """Whether the networks are checked (and failing ones re-seeded) after outer iteration ``iteration``."""
        return iteration in self.checkpoints

    def failing(self, residual: Tensor) -> Tensor:
        """Which networks to re-seed, (R * b,) booleans, from their relative residuals (R, b): every network but the
        best of each image none of whose networks is at or below the threshold (NaN counts as failing)."""
        residual = residual.nan_to_num(torch.inf)
        failing_image = (residual > self.threshold).all(0)
        keep = torch.zeros_like(residual, dtype=torch.bool)
        keep[residual.argmin(0), torch.arange(residual.shape[1], device=residual.device)] = True
        return (failing_image[None] & ~keep).flatten()

    def renumber(self, numbers: Tensor, slots: Tensor) -> None:
        """Give the networks in ``slots`` fresh numbers (in place): their restart's next unused one."""
        numbers[slots] += self.restarts

r"""What follows each network's outputs step by step: the Deep Image Prior's output average and stopping rule,
and the smoothed start of phase retrieval. Plain tensor code on (networks, C, H, W) outputs; each tracker keeps
its state in a dataclass of its own."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dip_lightning.errors import DipLightningError


def moving_average(beta: float, previous: Tensor | None, outputs: Tensor) -> Tensor:
    r""":math:`\bar x_t = \beta \bar x_{t-1} + (1 - \beta) x_t`, starting from :math:`\bar x_{-1} = x_0`."""
    return beta * (outputs if previous is None else previous) + (1 - beta) * outputs


@dataclass
class StoppingState:
    """Per network: the outputs' moving mean and variance, the lowest variance so far, the estimate kept there, and
    the iterations since that low."""

    mean: Tensor
    variance: Tensor
    lowest: Tensor
    kept: Tensor
    since: Tensor


@dataclass
class EarlyStopping:
    r"""The windowed-variance stopping rule of Wang et al. (2023, ES-EMV), per network, with no ground truth.

    The exponential moving variance of a network's outputs x_t,
    :math:`\mu_t = (1-\alpha)\mu_{t-1} + \alpha x_t`,
    :math:`v_t = (1-\alpha)(v_{t-1} + \alpha \|x_t - \mu_{t-1}\|^2 / n)`, :math:`\alpha = 2 / (W + 1)`,
    falls while the network fits the image and rises once it starts fitting the noise. The estimate at the lowest v
    so far is kept; a network stops when v has not reached a new low for ``patience`` iterations.

    Args:
        patience: P above, in iterations.
        window: W above.
    """

    patience: int
    window: int = 100

    def check(self) -> None:
        if self.patience < 1 or self.window < 1:
            raise DipLightningError(
                f"--model.early_stop.patience ({self.patience}) and --model.early_stop.window ({self.window}) must be "
                "positive numbers of iterations (--model.early_stop null for a fixed budget)")

    @property
    def rate(self) -> float:
        return 2.0 / (self.window + 1)

    def update(self, state: StoppingState | None, outputs: Tensor, estimate: Tensor, iteration: int) -> StoppingState:
        """The state after this iteration's raw ``outputs`` (B, C, H, W), keeping ``estimate`` (the outputs, or
        their average) at a new low."""
        if state is None:  # the variance starts at 0, so only lows after one window count (below)
            return StoppingState(mean=outputs.clone(), variance=outputs.new_zeros(len(outputs)),
                                 lowest=torch.full_like(outputs[:, 0, 0, 0], torch.inf), kept=estimate.clone(),
                                 since=torch.zeros(len(outputs), dtype=torch.long, device=outputs.device))
        rate = self.rate
        change = (outputs - state.mean).flatten(1).pow(2).mean(1)
        state.variance = (1 - rate) * (state.variance + rate * change)
        state.mean = (1 - rate) * state.mean + rate * outputs
        running = state.since < self.patience
        improved = running & (state.variance < state.lowest) & (iteration >= 1 / rate)
        state.lowest = torch.where(improved, state.variance, state.lowest)
        state.kept = torch.where(improved[:, None, None, None], estimate, state.kept)
        state.since = torch.where(improved, 0, state.since + running.long())
        return state

    def stopped(self, state: StoppingState | None) -> bool:
        """Whether every network has stopped."""
        return state is not None and bool((state.since >= self.patience).all())


@dataclass
class MagnitudeSmoothing:
    r"""A smoothed start for phase retrieval: at first each network fits the magnitudes smoothed at zero,
    :math:`\sqrt{|A x|^2 + \epsilon^2}`, with

    .. math:: \epsilon_{b,t} = s \, \mathrm{rms}(y_b) \, \max\Bigl(0, 1 - \frac{t - t_b}{u (T - t_b)}\Bigr),
              \quad \mathrm{rms}(y_b) = \|y_b\| / \sqrt{m},

    at outer iteration t, falling linearly to 0 over the fraction u of its own share of the search budget T, after
    which it fits the magnitudes themselves; t_b is the iteration network b started at (0, or the iteration a retry
    re-seeded it at). Random starts at m < n are trapped where many measurements' signs are wrong, at the kink of
    :math:`|z|`; the smoothed loss has none there.

    Args:
        scale: s above, e.g. 0.6.
        until: u above, a fraction in (0, 1].
    """

    scale: float
    until: float = 0.8

    def check(self) -> None:
        if not self.scale > 0 or not 0 < self.until <= 1:
            raise DipLightningError(
                f"--model.smoothing.scale ({self.scale}) must be positive (e.g. 0.6) and --model.smoothing.until "
                f"({self.until}) in (0, 1] (e.g. 0.8)")

    def epsilon(self, iteration: int, started: Tensor, budget: int, rms: Tensor) -> Tensor | None:
        """epsilon_{b,t} (B,) at outer iteration ``iteration`` of networks started at ``started`` (B,, on the host:
        the schedule needs no device sync), with search budget T ``budget`` and measurement rms ``rms`` (B,);
        ``None`` once every network's smoothed start is over."""
        horizon = self.until * (budget - started)
        remaining = (1.0 - (iteration - started) / horizon).clamp_min(0)
        if not remaining.any():
            return None
        return self.scale * remaining.to(rms.device, rms.dtype) * rms

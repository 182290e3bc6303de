"""Net-PGD: projected gradient descent, projecting onto the range of the decoder."""

from __future__ import annotations

import torch
from torch import Tensor

from dip_lightning.algorithms.untrained_prior import UntrainedPriorModule
from dip_lightning.chunks import Chunk
from dip_lightning.errors import DipLightningError


class NetPGD(UntrainedPriorModule):
    r"""Net-PGD (Jagatap & Hegde, 2019, Algorithm 2), for every image of the chunk at once.

    Each outer iteration takes a gradient step of the data term in image space,

    .. math:: v = x - \eta \, A^\top (A x - \tilde y), \qquad
              \tilde y = y \text{ (CS)}, \quad \tilde y = y \odot \operatorname{sign}(Ax) \text{ (CPR)},

    then projects v onto the decoder's range by ``inner_steps`` optimizer steps on
    :math:`\min_w \frac{1}{n}\|G(w; z) - v\|_2^2` (warm-started from the previous w, optimizer
    state kept within the chunk), and sets :math:`x = G(w; z)`. With ``warm_start`` W, the first W
    outer iterations are Net-GD's instead (:meth:`data_fitting_step`), and Net-PGD starts from where
    they left the networks, with fresh optimizer state.

    Args:
        eta: image-space step size. Default for linear measurements ``0.25 * n / m``: the effective
            step of the authors' code (SGD with lr 10 and momentum 0.9 on the mean squared data
            loss, i.e. 2 * 10 / (1 - 0.9) / m = 200 / m = 0.255 n / m on MNIST) and the best of our
            sweep (eta in 0.1 .. 8 at f = 0.1 and 0.25). With the inner projection only partly
            solved, larger steps than the m / n of an exact projection onto {x : A x = y} pay off.
            Default for phase retrieval (magnitude measurements) ``0.6 * n / m``: chosen on MNIST
            training digits, where the best fixed step grows as n / m (f = 0.5: eta 1 and 1.2
            equally good; f = 0.3: eta 2 lost 2 and 1 of 16 digits on two draws, where eta 1 lost
            3 and 3, eta 0.5 10, eta 3 5).
        inner_steps: optimizer steps per projection.
        eta_decay_to: over the second half of Net-PGD's T - W outer iterations (T ``iterations``, W ``warm_start``),
            eta decays linearly to this fraction of itself:
            :math:`\eta_t = \eta\,(1 - (1 - \text{eta\_decay\_to}) \max(0, 2(t - W)/(T - W) - 1))`.
            1 (default): a fixed step. With an inexact projection the fixed step leaves Net-PGD short of
            Net-GD's fit on the digits it finds; 0.1 cut the median nMSE of phase retrieval at f = 0.3 by
            30-55% on MNIST training digits from random starts and left f = 0.5 about where it was
            (``docs/results/mnist_cpr/netpgd_step.md``); after a ``warm_start`` it gains nothing.
        warm_start: W above, outer iterations of Net-GD (one optimizer step each on the data loss through the
            operator, smoothed with ``smoothing``) before the first projected step; part of ``iterations``. It is
            the search budget (``retry.until`` and ``smoothing.until`` are fractions of it; of ``iterations``
            without a warm start).
            Random starts of Net-PGD at m < n lose digits that Net-GD's smoothed start finds: every one of its
            projections starts from a poor x whose phase estimate sign(A x) is mostly wrong; after 4000
            iterations of Net-GD it lost 0 and 1 of two draws of 64 training digits at f = 0.3, where it had
            lost 7 and 5 (``configs/mnist_cpr_netpgd.yaml``). With the settings of a Net-GD run of W iterations, the warm
            start is that run network for network, rescue rounds' restart numbers included, so Net-PGD projects
            from every digit its search finds (the config: 5000 of 5100). 0: Net-PGD from the start, as in the paper.
        **kwargs: see :class:`UntrainedPriorModule`.
    """

    algorithm = "net-pgd"

    def __init__(self, *args, eta: float | None = None, inner_steps: int = 10, eta_decay_to: float = 1.0,
                 warm_start: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not 0 <= warm_start < self.iterations:
            raise DipLightningError(
                f"--model.warm_start ({warm_start}) counts the Net-GD iterations within --model.iterations "
                f"({self.iterations}), so it must lie in [0, {self.iterations}): lower it, or raise iterations")
        if self.smoothing is not None and warm_start == 0:
            raise DipLightningError(
                "--model.smoothing smooths Net-PGD's Net-GD warm start, and --model.warm_start is 0: "
                "set warm_start (e.g. 4000) or smoothing to null")
        if inner_steps < 1:
            raise DipLightningError(f"inner_steps must be at least 1, got {inner_steps} (--model.inner_steps)")
        if not 0 < eta_decay_to <= 1:
            raise DipLightningError(
                f"eta_decay_to is the fraction of eta reached at the end of the budget, in (0, 1], got {eta_decay_to} "
                "(--model.eta_decay_to; 1 for a fixed step)")
        if eta is None:
            scale = 0.6 if self.operator.measures_magnitudes else 0.25
            eta = scale * self.operator.n / self.operator.m
        self.eta = eta
        self.inner_steps = inner_steps
        self.eta_decay_to = eta_decay_to
        self.warm_start = warm_start

    def step_size(self, iteration: int) -> float:
        """The image-space step of outer iteration ``iteration`` (0-based; see ``eta_decay_to``)."""
        late = max(0.0, 2 * (iteration - self.warm_start) / (self.iterations - self.warm_start) - 1)
        return self.eta * (1 - (1 - self.eta_decay_to) * late)

    def search_iterations(self) -> int:
        return self.warm_start or self.iterations

    def decoder_estimates(self, chunk: Chunk) -> Tensor:
        tracked = chunk.state.stopping is not None or chunk.state.average is not None
        if tracked or 0 < chunk.iteration <= self.warm_start:
            return super().decoder_estimates(chunk)  # in the warm start and as it ends: the networks' outputs
        return chunk.estimate

    def outer_step(self, chunk: Chunk) -> Tensor:
        if chunk.iteration < self.warm_start:
            return self.data_fitting_step(chunk)
        if chunk.iteration == self.warm_start > 0:  # Net-PGD starts where Net-GD left the networks, without its momentum
            self.clear_optimizer_state()
            with torch.no_grad():
                chunk.estimate = self.prior(chunk.decoders)
        operator, x, y = self.operator, chunk.estimate, chunk.decoder_measurements
        with torch.no_grad():
            Ax = operator.A(x)  # noqa: N806
            v = x - self.step_size(chunk.iteration) * operator.A_adjoint(Ax - operator.lift(y, Ax))
        self.fit_prior_to(chunk, v, self.inner_steps)
        with torch.no_grad():
            chunk.estimate = self.prior(chunk.decoders)
            self.track(chunk, chunk.estimate)
            return operator.data_loss(chunk.estimate, y)

    def describe(self) -> dict:
        decay = {"eta_decay_to": self.eta_decay_to} if self.eta_decay_to != 1 else {}
        warm = {"warm_start": self.warm_start} if self.warm_start else {}
        return {**super().describe(), "eta": self.eta, "inner_steps": self.inner_steps, **decay, **warm}

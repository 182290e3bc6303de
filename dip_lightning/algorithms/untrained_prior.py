"""What Net-GD and Net-PGD share: fresh seeded untrained networks per chunk, their optimizer, and the components
that steer them (restarts, retries, trackers; each in its own module)."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torch.optim import Optimizer

from dip_lightning.algorithms.base import ReconstructionModule
from dip_lightning.algorithms.learning_rates import ScheduledOptimizer
from dip_lightning.algorithms.network_state import NetworkState
from dip_lightning.algorithms.restarts import Restarts
from dip_lightning.algorithms.retry import RestartNumbers, Retry
from dip_lightning.algorithms.spectral import truncated_spectral_estimate
from dip_lightning.algorithms.trackers import EarlyStopping, MagnitudeSmoothing, moving_average
from dip_lightning.chunks import Chunk
from dip_lightning.errors import DipLightningError
from dip_lightning.priors import DeepDecoder, PriorFactory


def adam(params) -> Optimizer:
    return torch.optim.Adam(params, lr=0.01)


class UntrainedPriorModule(ReconstructionModule):
    r"""Reconstruction with an untrained network x = G(w; z) as the image prior.

    Chunks of images are reconstructed together by independent networks (``restarts.count`` per image, see
    :class:`~dip_lightning.priors.UntrainedPrior`); every chunk starts from fresh, seeded networks. Every loss is a
    sum over images of per-image terms, so each network's gradient depends on its own image only. With rescue rounds
    (``rescue_rounds``), an image still suspect when the budget is spent gets ``restarts.count`` fresh networks
    (restart numbers :class:`~dip_lightning.algorithms.retry.RestartNumbers`), fitted the same way together with the
    other suspect images of its chunk, and its reconstruction combines the restarts of all its rounds.

    Args:
        prior: the network family, built for (chunk_size * restarts) images: in a config a class path
            (:class:`~dip_lightning.priors.DeepDecoder`, :class:`~dip_lightning.priors.SkipNetwork`) and its
            arguments. Default: a Deep Decoder with channels [25, 15, 10].
        optimizer, lr_scheduler: the optimizer of the network weights and its learning rate by outer iteration
            (:class:`~dip_lightning.algorithms.learning_rates.ScheduledOptimizer`), each rate at most
            :meth:`lr_bound`.
        seed: base seed of the networks' initializations: network r of dataset image i is seeded by (seed, i, r).
        restarts: networks per image and how they are combined (:class:`~dip_lightning.algorithms.Restarts`).
        spectral_start: phase retrieval: first fit each network for this many optimizer steps to the truncated
            spectral estimate of its image; ``null``: the freshly seeded networks, as the paper's code.
        input_noise: sigma_z of the Deep Image Prior: every fitting step evaluates :math:`G(w; z + \sigma_z e)` with
            fresh noise e ~ N(0, I) from the network's own seeded generator (DIP: 1/30); 0 for none.
        average: beta of the Deep Image Prior's output average, the estimate
            :math:`\bar x_t = \beta \bar x_{t-1} + (1 - \beta) G(w_t; z)` (DIP: 0.99); ``null`` for none.
        early_stop: a stopping rule per network (:class:`~dip_lightning.algorithms.EarlyStopping`); a chunk ends
            when all its networks have stopped, its reconstruction the estimates kept. ``null``: a fixed budget.
        retry: failing restarts replaced in the same pass (:class:`~dip_lightning.algorithms.Retry`); ``null``: none.
        smoothing: phase retrieval: a smoothed start of the data-fitting steps
            (:class:`~dip_lightning.algorithms.MagnitudeSmoothing`); ``null``: the plain loss throughout.
        compile: run every fitting step's network, loss and backward through ``torch.compile`` (Inductor). Each
            chunk size is compiled once per process (cached across runs on disk). An image's result still does
            not depend on its chunk mates, but differs from the eager run's in the last bits. A string picks
            ``torch.compile``'s mode: ``reduce-overhead`` (CUDA graphs on a GPU) or ``max-autotune``.
        **kwargs: operator, chunk_size, iterations, suspect_residual, rescue_rounds, data_consistency: see
            :class:`~dip_lightning.algorithms.ReconstructionModule`.
    """

    randomized = True

    def __init__(
        self,
        *args: Any,
        prior: PriorFactory | None = None,
        optimizer: OptimizerCallable = adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        seed: int = 0,
        restarts: Restarts = Restarts(),
        spectral_start: int | None = None,
        input_noise: float = 0.0,
        average: float | None = None,
        early_stop: EarlyStopping | None = None,
        retry: Retry | None = None,
        smoothing: MagnitudeSmoothing | None = None,
        compile: bool | Literal["reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        restarts.check()
        magnitudes = self.operator.measures_magnitudes
        if spectral_start is not None and not (magnitudes and spectral_start >= 1):
            raise DipLightningError(
                f"--model.spectral_start ({spectral_start}) fits each network to a spectral estimate, which is "
                f"defined for phase retrieval with at least 1 step, not for {self.operator.name}: set it to null")
        if input_noise < 0:
            raise DipLightningError(f"--model.input_noise must be non-negative, got {input_noise}")
        if average is not None and not 0 <= average < 1:
            raise DipLightningError(f"--model.average must lie in [0, 1) (e.g. 0.99) or be null, got {average}")
        if early_stop is not None:
            early_stop.check()
            if retry is not None:
                raise DipLightningError("--model.retry does not combine with --model.early_stop: set one to null")
        if smoothing is not None:
            if not magnitudes:
                raise DipLightningError(
                    f"--model.smoothing smooths measured magnitudes, and {self.operator.name} measures none: it is "
                    "for phase retrieval (PhaseRetrieval, CodedDiffraction); set it to null")
            smoothing.check()
        self.restarts = restarts
        self.retry = retry
        RestartNumbers(restarts.count, retry, self.iterations, self.iterations, self.ratio)  # refuses a bad retry now
        self._numbers: RestartNumbers | None = None
        self.spectral_start = spectral_start
        self.input_noise = input_noise
        self.average = average
        self.early_stop = early_stop
        self.smoothing = smoothing
        build = prior if prior is not None else DeepDecoder
        self.prior = build(self.chunk_size * restarts.count, self.operator.image_shape, seed)
        self.hparams["prior"] = self.prior.describe()
        self.schedule = ScheduledOptimizer(optimizer, lr_scheduler)
        self._evaluation_optimizer: Optimizer | None = None
        self.compile = compile
        mode = compile if isinstance(compile, str) else None
        self.network_loss = torch.compile(self._network_loss, dynamic=False, mode=mode) if compile else self._network_loss

    def estimates_per_image(self) -> int:
        return self.restarts.count

    def search_iterations(self) -> int:
        """The search budget T that fractions of the budget (``retry.until``, ``smoothing.until``) are fractions
        of: the outer iterations that fit the networks to the measurements (Net-GD: all of them)."""
        return self.iterations

    def restart_numbers(self) -> RestartNumbers:
        if self._numbers is None:
            self._numbers = RestartNumbers(self.restarts.count, self.retry, self.search_iterations(), self.iterations,
                                           self.ratio)
        return self._numbers

    # ----------------------------------------------------------------------------- optimizer
    def configure_optimizers(self) -> Optimizer:
        return self.schedule.build(self.prior.parameters(), self.iterations, self.lr_bound())

    def lr_bound(self) -> float:
        """The largest learning rate the method allows (inf: the rate as configured)."""
        return math.inf

    def optimizer(self) -> Optimizer:
        """The network optimizer: Lightning's during fit, a private one in validate/test and :meth:`reconstruct`."""
        if self._trainer is not None and self._trainer.training:
            return self.optimizers()
        if self._evaluation_optimizer is None:
            self._evaluation_optimizer = self.configure_optimizers()
        return self._evaluation_optimizer

    def clear_optimizer_state(self, slots: Tensor | None = None) -> None:
        ScheduledOptimizer.forget(self.optimizer(), self.prior.parameters(), slots)

    # ----------------------------------------------------------------------------- chunk life
    def initialize(self, chunk: Chunk) -> None:
        """Fresh networks and optimizer state for the chunk (optionally fitted to a spectral estimate)."""
        numbers = self.restart_numbers().first(chunk.round, chunk.size)  # a rescue round's networks are new ones
        self.prior.reset(chunk.index.repeat(self.restarts.count), numbers)
        chunk.state = NetworkState(restart=numbers, started=torch.zeros_like(numbers))
        self.clear_optimizer_state()
        self.schedule.set_iteration(self.optimizer(), 0)
        if self.spectral_start is not None:
            estimate = truncated_spectral_estimate(self.operator, chunk.measurements)
            self.fit_prior_to(chunk, chunk.per_decoder(estimate), self.spectral_start)
            self.clear_optimizer_state()
        with torch.no_grad():
            chunk.estimate = self.prior(chunk.decoders)

    def _network_loss(self, latent: Tensor, target: Tensor, through_operator: bool,
                      smoothing: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Per-network loss of the outputs G(w_b; latent_b), and the outputs: through the operator the data loss
        ``(1/m) ||target_b - A(G(w_b; latent_b))||^2`` against measurements (with ``smoothing`` (B,), the magnitudes
        smoothed by it), otherwise ``(1/n) ||G(w_b; latent_b) - target_b||^2`` against images. (Compiled with
        ``compile``, as :attr:`network_loss`.)"""
        outputs = self.prior.generate(latent)
        if through_operator and smoothing is not None:
            return self.operator.smoothed_data_loss(outputs, target, smoothing), outputs
        if through_operator:
            return self.operator.data_loss(outputs, target), outputs
        return (outputs - target).pow(2).flatten(1).mean(1), outputs

    def fitting_step(self, chunk: Chunk, target: Tensor, through_operator: bool,
                     smoothing: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One optimizer step of every network on :meth:`_network_loss` (inputs perturbed by ``input_noise``,
        restarts at their ``restarts.lr_factors``); returns the per-network loss and outputs, detached."""
        optimizer = self.optimizer()
        latent = self.prior.inputs(chunk.decoders, perturbation=self.input_noise)
        if self.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs may be overwritten
        loss, outputs = self.network_loss(latent, target, through_operator, smoothing)
        optimizer.zero_grad()
        self.manual_backward(loss.sum()) if self._trainer is not None else loss.sum().backward()
        if chunk.state.scaled is None:
            chunk.state.scaled = self.restarts.scaled_weights(self.prior.parameters(), chunk.size)
        before = [view.clone() for view, _ in chunk.state.scaled]
        optimizer.step()
        with torch.no_grad():
            for (view, factor), old in zip(chunk.state.scaled, before):
                view.sub_(old).mul_(factor).add_(old)  # w_old + f (w_new - w_old): exactly the step at rate f lr
        if self.compile == "reduce-overhead":  # graph outputs live in memory the next replay reuses
            return loss.detach().clone(), outputs.detach().clone()
        return loss.detach(), outputs.detach()

    def smoothing_at(self, chunk: Chunk) -> Tensor | None:
        """epsilon (R b,) of every network's smoothed start at the chunk's iteration (``smoothing``); None after."""
        state = chunk.state
        if self.smoothing is None:
            return None
        if state.measurement_rms is None:
            state.measurement_rms = chunk.decoder_measurements.pow(2).mean(dim=1).sqrt()
        return self.smoothing.epsilon(chunk.iteration, state.started, self.search_iterations(), state.measurement_rms)

    def data_fitting_step(self, chunk: Chunk) -> Tensor:
        """Net-GD's iteration: one optimizer step of every network on its data loss through the operator
        (smoothed at first, :meth:`smoothing_at`); returns the per-network loss before the step."""
        loss, outputs = self.fitting_step(chunk, chunk.decoder_measurements, True, self.smoothing_at(chunk))
        self.track(chunk, outputs)
        return loss

    def fit_prior_to(self, chunk: Chunk, images: Tensor, steps: int) -> Tensor:
        """``steps`` optimizer steps on sum_b (1/n) ||G(w_b; z_b) - images_b||^2; returns the last per-network loss."""
        for _ in range(steps):
            loss, _ = self.fitting_step(chunk, images, through_operator=False)
        return loss

    @torch.no_grad()
    def after_step(self, chunk: Chunk) -> None:
        """The next iteration's learning rates; at a retry check, re-seed the failing networks (``retry``)."""
        if self.schedule.scheduler is not None:
            self.schedule.set_iteration(self.optimizer(), chunk.iteration)
        numbers = self.restart_numbers()
        if not numbers.is_checkpoint(chunk.iteration):
            return
        outputs = self.prior(chunk.decoders)
        residual = self.operator.relative_residual(outputs, chunk.decoder_measurements)
        retry = numbers.failing(residual.view(self.restarts.count, chunk.size))
        if not retry.any():
            return
        state, slots = chunk.state, retry.nonzero().squeeze(1).cpu()
        numbers.renumber(state.restart, slots)
        state.started[slots] = chunk.iteration
        self.prior.reset(chunk.index.repeat(self.restarts.count)[slots], state.restart[slots], slots)
        self.clear_optimizer_state(slots)
        fresh = self.prior(chunk.decoders)
        on_device = slots.to(fresh.device)
        if chunk.estimate is not None:
            chunk.estimate[on_device] = fresh[on_device]
        if state.average is not None:
            state.average[on_device] = fresh[on_device]
        state.retried += len(slots)

    @torch.no_grad()
    def track(self, chunk: Chunk, outputs: Tensor) -> None:
        """Record this iteration's network outputs (R b, C, H, W): output average and stopping rule."""
        state = chunk.state
        if self.average is not None:
            state.average = moving_average(self.average, state.average, outputs)
        if self.early_stop is not None:  # the variance is that of the raw outputs: the average's only ever falls
            estimate = outputs if state.average is None else state.average
            state.stopping = self.early_stop.update(state.stopping, outputs, estimate, chunk.iteration)

    def converged(self, chunk: Chunk) -> bool:
        return self.early_stop is not None and self.early_stop.stopped(chunk.state.stopping)

    def decoder_estimates(self, chunk: Chunk) -> Tensor:
        """Every network's current estimate, (R b, C, H, W)."""
        if chunk.state.stopping is not None:
            return chunk.state.stopping.kept
        if chunk.state.average is not None:
            return chunk.state.average
        return self.prior(chunk.decoders)

    def restarts_of(self, chunk: Chunk) -> Tensor:
        """Every network's current estimate, by restart: (R, b, C, H, W)."""
        estimates = self.decoder_estimates(chunk)
        return estimates.view(chunk.restarts, chunk.size, *estimates.shape[1:])

    def reconstruction_and_agreement(self, chunk: Chunk) -> tuple[Tensor, Tensor | None]:
        """The reconstruction (b, C, H, W): the chunk's restarts combined (after a rescue began, round 0's chunk
        holds each image's reconstruction over all its rounds); and the restarts agreeing with it (b,) or None."""
        if chunk.state.rescued is not None:
            return chunk.state.rescued, chunk.state.agreeing
        return self.combine(self.restarts_of(chunk), chunk.measurements)

    def reconstruction(self, chunk: Chunk) -> Tensor:
        return self.reconstruction_and_agreement(chunk)[0]

    def combine(self, estimates: Tensor, measurements: Tensor) -> tuple[Tensor, Tensor | None]:
        """Each image's restarts ``estimates`` (R, b, C, H, W) combined (``restarts``), ranked where needed by their
        data loss against the images' ``measurements`` (b, m), then made data-consistent (``data_consistency``)."""
        losses = None
        if self.restarts.needs_losses():
            per_restart = measurements.repeat(estimates.shape[0], *[1] * (measurements.dim() - 1))
            losses = self.operator.data_loss(estimates.flatten(0, 1), per_restart).view(estimates.shape[:2])
        x_hat, agreeing = self.restarts.combine_estimates(estimates, losses)
        return self.consistent(x_hat, measurements), agreeing

    def suspect(self, residual: Tensor, agreeing: Tensor | None = None) -> Tensor:
        """Per image (b,): the residual flag, or too few restarts agreeing (``restarts.suspect_agreement``)."""
        failing = super().suspect(residual)
        disagreeing = self.restarts.disagreeing(agreeing)
        return failing if disagreeing is None else failing | disagreeing

    def next_round(self, chunk: Chunk) -> Chunk | None:
        """A rescue round for the images of ``chunk`` (a chunk or a rescue round whose budget is spent) whose
        reconstruction over all their rounds so far is suspect; None when every image passed or had
        ``rescue_rounds`` rounds. Records each image's reconstruction, and its rounds, in round 0's chunk."""
        if not self.rescue_rounds:
            return None
        with torch.no_grad():
            pool = self.restarts_of(chunk)  # every restart of every round so far
            if chunk.state.pool is not None:
                pool = torch.cat([chunk.state.pool, pool])
            x_hat, agreeing = self.combine(pool, chunk.measurements)
            failing = self.suspect(self.operator.relative_residual(x_hat, chunk.measurements), agreeing)
        whole = chunk.first_round
        if chunk.whole is None:
            if not failing.any():
                return None  # no rescue: round 0's reconstruction stands as computed
            positions = torch.arange(chunk.size, device=chunk.index.device)
            whole.state.rescued, whole.state.agreeing, whole.rounds = x_hat, agreeing, torch.zeros_like(chunk.index)
        else:
            positions = chunk.state.positions
            whole.state.rescued[positions] = x_hat
            if agreeing is not None:
                whole.state.agreeing[positions] = agreeing
        if chunk.round == self.rescue_rounds or not failing.any():
            return None
        again = failing.nonzero().squeeze(1).to(chunk.index.device)
        rescue = Chunk(chunk.index[again], None if chunk.target is None else chunk.target[again],
                       chunk.measurements[again], chunk.image_shape, restarts=chunk.restarts, round=chunk.round + 1,
                       whole=whole)
        whole.rounds[positions[again]] += 1
        self.initialize(rescue)  # with gradients: a spectral start fits the networks
        rescue.state.pool, rescue.state.positions = pool[:, again], positions[again]
        return rescue

    def describe(self) -> dict[str, Any]:
        settings = {"restarts": dict(vars(self.restarts)), "spectral_start": self.spectral_start,
                    "input_noise": self.input_noise, "average": self.average, "compile": self.compile}
        settings |= {name: dict(vars(group)) for name in ("early_stop", "retry", "smoothing")
                     if (group := getattr(self, name)) is not None}
        if self.retry is not None:
            settings["retry"]["residual"] = self.restart_numbers().threshold  # at this run's ratio
        return {**super().describe(), **self.prior.describe(), **settings}

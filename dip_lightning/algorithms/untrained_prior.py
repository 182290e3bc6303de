"""What Net-GD and Net-PGD share: fresh seeded untrained networks per chunk, their optimizer, restarts,
and the regularizers the Deep Image Prior depends on (input noise, output averaging, early stopping)."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from dip_lightning.algorithms.base import ReconstructionModule, threshold_at_ratio
from dip_lightning.algorithms.spectral import truncated_spectral_estimate
from dip_lightning.chunks import Chunk
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import MagnitudeMeasurements
from dip_lightning.priors import DeepDecoder, PriorFactory


def adam(params) -> Optimizer:
    return torch.optim.Adam(params, lr=0.01)


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


class UntrainedPriorModule(ReconstructionModule):
    r"""Reconstruction with an untrained network x = G(w; z) as the image prior.

    Chunks of images are reconstructed together by independent networks (``restarts`` per
    image, see :class:`~dip_lightning.priors.UntrainedPrior`); every chunk starts from fresh,
    seeded networks. Every loss is a sum over images of per-image terms, so each network's
    gradient depends on its own image only.

    Rescue rounds (``rescue_rounds`` K, with ``suspect_residual``): an image whose reconstruction is suspect when
    the chunk's budget is spent gets ``restarts`` more networks, freshly seeded, fitted with the full budget
    (schedule, smoothed start, retries and all) together with the other suspect images of its chunk; its
    reconstruction then combines (``combine``) the restarts of all its rounds, as if it had had that many restarts
    from the start. Rounds go on until the image passes or has had K of them; the images that passed are done and
    cost nothing more. Round k's restart numbers are ``k * S + r`` with S the restart numbers one round can use
    (:meth:`restart_numbers_per_round`), so that no network is seeded twice.

    Regularizers of the Deep Image Prior (Ulyanov et al., 2018; all off by default):

    - ``input_noise`` sigma_z: every fitting step evaluates :math:`G(w; z + \sigma_z e)` with
      fresh noise e ~ N(0, I) (per network, from its own seeded generator).
    - ``average`` beta: the estimate is the exponential moving average of the outputs,
      :math:`\bar x_t = \beta \bar x_{t-1} + (1 - \beta) G(w_t; z)`.
    - ``early_stop`` P: the windowed-variance stopping rule of Wang et al. (2023, ES-EMV). Per
      network the exponential moving variance of its outputs x_t (as fitted, before averaging),
      :math:`\mu_t = (1-\alpha)\mu_{t-1} + \alpha x_t`,
      :math:`v_t = (1-\alpha)(v_{t-1} + \alpha \|x_t - \mu_{t-1}\|^2 / n)`, with
      :math:`\alpha = 2 / (W + 1)` for the window W = ``early_stop_window``, falls while the
      network fits the image and rises once it starts fitting the noise. The estimate (the
      averaged output, with ``average``) at the lowest v so far is kept; a network stops when v has not reached a new low for P
      iterations, and a chunk ends when all of its networks have stopped (or at the budget).
      The reconstruction is then the kept estimate. Needs no ground truth.

    Args:
        prior: the network family, built for (chunk_size * restarts) images: in a config a class
            path (:class:`~dip_lightning.priors.DeepDecoder`, :class:`~dip_lightning.priors.SkipNetwork`)
            and its arguments. Default: a Deep Decoder with channels [25, 15, 10].
        optimizer: optimizer of the network weights (a class path and its init args in config).
        lr_scheduler: the learning rate as a function of the chunk's outer iteration t: any
            ``torch.optim.lr_scheduler`` class that needs no metric (a class path and its init args in
            config), stepped once per outer iteration and started afresh with every chunk; e.g.
            ``ConstantLR`` with ``factor: 0.5, total_iters: 600`` halves the rate for the first 600
            iterations. Only learning rates are taken from it, each at most :meth:`lr_bound`: the rate of
            iteration t is ``min(scheduled_t, lr_bound)``. ``null``: the configured rate throughout.
        seed: base seed of the networks' initializations (:class:`~dip_lightning.seeding.Stream`):
            network r of dataset image i is seeded by (seed, i, r) alone.
        restarts: independently seeded networks fitted per image; the reconstruction combines
            them, which averages out the different ways single networks overfit few measurements.
        combine: how restarts are combined: pixelwise ``mean`` or ``median``, or ``best``: per
            image the restart with the lowest data loss (measurements only, no ground truth).
        best_radius: with ``combine: best``, the reconstruction is instead the pixelwise mean of the best restart
            :math:`x_{r^*}` and every restart that found the same image,
            :math:`\{r : \|x_r - x_{r^*}\| \le \rho \|x_{r^*}\|\}` for this radius rho: the restarts in the right
            basin each fit the few measurements in their own way, and their mean averages that out, while
            restarts that found another image stay out. ``null``: the best restart alone.
        suspect_agreement: with ``best_radius``, an image is also ``suspect`` (and, with ``rescue_rounds``,
            rescued) when fewer than this many of its restarts, the best one included, lie within ``best_radius`` of
            the best (results.csv column ``agreeing``): when few measurements do not single out one image, networks
            that fit them equally well end on different images, and the residual alone cannot tell (phase
            retrieval at f = 0.2). ``2``: flag an image none of whose other restarts found its reconstruction.
            With fewer ``restarts`` than this, all of them must agree (one restart: never flagged this way).
            ``null``: the residual (``suspect_residual``) alone.
        initialization: ``random`` (the freshly seeded networks, as the paper's code) or
            ``spectral`` (phase retrieval: each network is first fitted for ``init_steps``
            optimizer steps to the truncated spectral estimate of its image).
        init_steps: optimizer steps of that fit.
        input_noise: sigma_z above (DIP: 1/30); 0 for none.
        average: beta above (DIP: 0.99); ``null`` for none.
        early_stop: patience P above, in iterations; ``null`` for a fixed budget.
        early_stop_window: W above.
        data_consistency: replace the measured part of the reconstruction by the measurements,
            :math:`\hat x \leftarrow \hat x + A^\top (y - A \hat x)` (the projection onto
            :math:`\{x : A x = y\}` when :math:`A A^\top = I`): for noiseless inpainting, the observed
            pixels are kept as measured, as classical inpainting does. Refused for noisy measurements
            and for operators without orthonormal rows.
        retry_residual: restarts that fail are replaced, in the same batched pass: every
            ``retry_every`` iterations (until ``retry_until`` of the budget has passed), for each
            image none of whose networks has a relative measurement residual
            ||y - A(G(w; z))|| / ||y|| at or below this, every network but its best is re-seeded
            (a fresh restart number, a fresh random start and optimizer state) and fitted for the
            rest of the budget. ``null`` for none. Like ``suspect_residual``, one number or a table ``{f: threshold}``
            by sampling ratio f = m / n (:func:`~dip_lightning.algorithms.base.threshold_at_ratio`).
        retry_every, retry_until: see ``retry_residual``.
        restart_lr_factors: restart r of every image runs at the learning rate times
            ``restart_lr_factors[r % len]`` (e.g. ``[0.5, 1, 1, 1]``: a quarter of the restarts at half the rate;
            with fewer restarts than factors, the first ones),
            so that the search over restarts also covers step sizes: a digit whose basin a large step cannot hold
            is found by a slower restart, and ``combine: best`` keeps whichever fits the measurements best.
            A network re-seeded by a retry keeps its restart's factor. Done by scaling each optimizer step's update
            of those networks, :math:`w \leftarrow w_{\text{old}} + f\,(w_{\text{new}} - w_{\text{old}})`,
            which is exactly the step at rate f lr for every optimizer whose step is the rate times a direction
            of its state (SGD with momentum, Adam, AdamW); restarts with factor 1 are untouched, bit for bit.
            ``null``: every restart at the configured rate.
        magnitude_smoothing: phase retrieval only: s in a smoothed start of the data-fitting steps (all of Net-GD's,
            Net-PGD's ``warm_start``). For the first fraction u (``smoothing_until``) of its own share of those
            steps, each network fits the magnitudes smoothed at zero, :math:`\sqrt{|A x|^2 + \epsilon^2}`
            (:meth:`~dip_lightning.operators.MagnitudeMeasurements.smoothed_data_loss`), with

            .. math:: \epsilon_{b,t} = s \, \mathrm{rms}(y_b) \,
                      \max\Bigl(0, 1 - \frac{t - t_b}{u (T - t_b)}\Bigr),
                      \quad \mathrm{rms}(y_b) = \|y_b\| / \sqrt{m},

            at outer iteration t, where T is the number of data-fitting iterations (:meth:`data_fitting_iterations`:
            Net-GD's ``iterations``), falling linearly to 0, after which it fits the magnitudes themselves; t_b is
            the iteration network b started at (0, or the iteration a retry re-seeded it at, ``retry_residual``).
            Random starts at m < n are trapped where many measurements' signs are wrong, at the kink of :math:`|z|`;
            the smoothed loss has none there. ``null``: the plain loss throughout.
        smoothing_until: u above, a fraction of each network's budget in (0, 1].
        compile: run every fitting step's network, loss and backward through ``torch.compile``
            (Inductor: fused C++ kernels on the CPU, Triton on a GPU). Each chunk size is compiled
            once per process (seconds; cached across runs on disk), after which a step takes a
            fraction of the eager time (``docs/results/speed/``). An image's result still does not
            depend on its chunk mates (tested), but differs from the eager run's in the last bits,
            which thousands of iterations amplify into a different (equally good) reconstruction.
            A string picks ``torch.compile``'s mode instead of its default: ``reduce-overhead``
            (CUDA graphs on a GPU: the step's kernels replayed with one launch) or ``max-autotune``.
        **kwargs: operator, chunk_size, iterations, suspect_residual, rescue_rounds: see
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
        restarts: int = 1,
        combine: Literal["mean", "median", "best"] = "mean",
        best_radius: float | None = None,
        suspect_agreement: int | None = None,
        initialization: Literal["random", "spectral"] = "random",
        init_steps: int = 300,
        input_noise: float = 0.0,
        average: float | None = None,
        early_stop: int | None = None,
        early_stop_window: int = 100,
        data_consistency: bool = False,
        retry_residual: float | dict[float, float] | None = None,
        retry_every: int = 1000,
        retry_until: float = 0.5,
        restart_lr_factors: list[float] | None = None,
        magnitude_smoothing: float | None = None,
        smoothing_until: float = 0.8,
        compile: bool | Literal["reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if restarts < 1:
            raise DipLightningError(f"restarts must be at least 1, got {restarts} (--model.restarts)")
        if initialization == "spectral" and not isinstance(self.operator, MagnitudeMeasurements):
            raise DipLightningError(
                f"spectral initialization is defined for phase retrieval, not for {self.operator.name}; "
                "use --model.initialization random"
            )
        if input_noise < 0:
            raise DipLightningError(f"input_noise must be non-negative, got {input_noise} (--model.input_noise)")
        if average is not None and not 0 <= average < 1:
            raise DipLightningError(f"average must lie in [0, 1) (e.g. 0.99) or be null, got {average} (--model.average)")
        if early_stop is not None and early_stop < 1 or early_stop_window < 1:
            raise DipLightningError(
                f"--model.early_stop ({early_stop}) and --model.early_stop_window ({early_stop_window}) must be "
                "positive numbers of iterations (early_stop null for a fixed budget)"
            )
        if data_consistency and not (self.operator.orthonormal_rows and self.operator.noise_sigma == 0):
            raise DipLightningError(
                "--model.data_consistency keeps the measurements as they are, which needs noiseless measurements "
                f"and an operator with A A^T = I (inpainting); {self.operator.name} with noise_sigma "
                f"{self.operator.noise_sigma} is not one: set it to false"
            )
        if best_radius is not None and not (combine == "best" and best_radius >= 0):
            raise DipLightningError(
                f"--model.best_radius ({best_radius}) averages the restarts near the best one, so it needs "
                f"--model.combine best (got {combine}) and a radius >= 0 (e.g. 0.3), or null"
            )
        if suspect_agreement is not None and not (best_radius is not None and suspect_agreement >= 1):
            raise DipLightningError(
                f"--model.suspect_agreement ({suspect_agreement}) counts the restarts within --model.best_radius "
                f"({best_radius}) of the best one, so it needs a best_radius (e.g. 0.3) and a count of at least 1 "
                "(e.g. 2), or null"
            )
        retry_residual = threshold_at_ratio(retry_residual, self.operator.m / self.operator.n, "retry_residual")
        if retry_residual is not None and (not retry_residual > 0 or retry_every < 1 or not 0 <= retry_until <= 1
                                           or early_stop is not None):
            raise DipLightningError(
                f"--model.retry_residual ({retry_residual}) must be positive, retry_every ({retry_every}) at least 1, "
                f"retry_until ({retry_until}) in [0, 1], and retrying does not combine with --model.early_stop"
            )
        if restart_lr_factors is not None and not (restart_lr_factors and all(f > 0 for f in restart_lr_factors)):
            raise DipLightningError(
                f"--model.restart_lr_factors ({restart_lr_factors}) must be a non-empty list of positive factors of the "
                "learning rate, cycled over the restarts (e.g. [0.5, 1, 1, 1]), or null"
            )
        if magnitude_smoothing is not None:
            if not isinstance(self.operator, MagnitudeMeasurements):
                raise DipLightningError(
                    f"--model.magnitude_smoothing smooths measured magnitudes, and {self.operator.name} measures none: "
                    "it is for phase retrieval (PhaseRetrieval, CodedDiffraction); set it to null"
                )
            if not magnitude_smoothing > 0 or not 0 < smoothing_until <= 1:
                raise DipLightningError(
                    f"--model.magnitude_smoothing ({magnitude_smoothing}) must be positive (e.g. 0.6) and "
                    f"--model.smoothing_until ({smoothing_until}) in (0, 1] (e.g. 0.8)"
                )
        self.magnitude_smoothing = magnitude_smoothing
        self.smoothing_until = smoothing_until
        self.restart_lr_factors = list(restart_lr_factors) if restart_lr_factors is not None else None
        self.retry_residual = retry_residual
        self.retry_every = retry_every
        self.retry_until = retry_until
        self.data_consistency = data_consistency
        self.restarts = restarts
        self.combine = combine
        self.best_radius = best_radius
        self.suspect_agreement = suspect_agreement
        self.initialization = initialization
        self.init_steps = init_steps
        self.input_noise = input_noise
        self.average = average
        self.early_stop = early_stop
        self.variance_rate = 2.0 / (early_stop_window + 1)
        build = prior if prior is not None else DeepDecoder
        self.prior = build(self.chunk_size * restarts, self.operator.image_shape, seed)
        self.hparams["prior"] = self.prior.describe()
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        if lr_scheduler is not None:
            scheduled_rates(lr_scheduler, [1.0], 1)  # a scheduler that cannot be used is refused before any work
        self.learning_rates: list[list[float]] = []  # [iteration][parameter group], set by build_optimizer
        self._evaluation_optimizer: Optimizer | None = None
        self.compile = compile
        mode = compile if isinstance(compile, str) else None
        self.network_loss = torch.compile(self._network_loss, dynamic=False, mode=mode) if compile else self._network_loss

    # ----------------------------------------------------------------------------- optimizer
    def configure_optimizers(self) -> Optimizer:
        return self.build_optimizer()

    def build_optimizer(self) -> Optimizer:
        """The configured optimizer of the networks' weights, and the learning rates of every outer iteration
        (:attr:`learning_rates`, each at most :meth:`lr_bound`); its rates are those of iteration 0."""
        optimizer = self.optimizer_factory(self.prior.parameters())
        self.learning_rates = self.schedule([group["lr"] for group in optimizer.param_groups])
        for group, lr in zip(optimizer.param_groups, self.learning_rates[0]):
            group["lr"] = lr
        return optimizer

    def schedule(self, configured: list[float]) -> list[list[float]]:
        """The learning rate of each parameter group at each outer iteration 0 .. iterations - 1: ``lr_scheduler``'s
        rates for the ``configured`` ones (:func:`scheduled_rates`), each capped at :meth:`lr_bound`.

        Worked out once, so that every chunk (and every network re-seeded by a retry) sees the rate of its
        chunk's iteration, whatever ran before it; without a scheduler, the configured rates throughout.
        """
        bound = self.lr_bound()
        if self.lr_scheduler_factory is None:
            return [[min(lr, bound) for lr in configured]]
        rates = scheduled_rates(self.lr_scheduler_factory, configured, self.iterations)
        return [[min(lr, bound) for lr in step] for step in rates]

    def set_learning_rates(self, iteration: int) -> None:
        """The optimizer's rates for outer iteration ``iteration`` of a chunk (see :meth:`schedule`)."""
        optimizer = self.optimizer()
        rates = self.learning_rates[min(iteration, len(self.learning_rates) - 1)]
        for group, lr in zip(optimizer.param_groups, rates):
            group["lr"] = lr

    def lr_bound(self) -> float:
        """The largest learning rate the method allows (inf: the rate as configured)."""
        return math.inf

    def optimizer(self) -> Optimizer:
        """The network optimizer: Lightning's during fit, a private one in validate/test."""
        if self._trainer is not None and self._trainer.training:
            return self.optimizers()
        if self._evaluation_optimizer is None:
            self._evaluation_optimizer = self.build_optimizer()
        return self._evaluation_optimizer

    def backward_sum(self, loss: Tensor) -> None:
        """Backpropagate the chunk's summed loss (through Lightning when a Trainer runs us)."""
        if self._trainer is not None:
            self.manual_backward(loss.sum())
        else:
            loss.sum().backward()

    def clear_optimizer_state(self) -> None:
        optimizer = self.optimizer()
        getattr(optimizer, "optimizer", optimizer).state.clear()

    # ----------------------------------------------------------------------------- chunk life
    def restart_numbers_per_round(self) -> int:
        """How many restart numbers one round of a chunk can use: ``restarts``, and ``restarts`` more for every
        retry checkpoint (a retried network takes the number of its restart plus ``restarts``)."""
        if self.retry_residual is None:
            return self.restarts
        checkpoints = [t for t in range(self.retry_every, self.iterations, self.retry_every)
                       if t <= self.retry_until * self.iterations]
        return self.restarts * (1 + len(checkpoints))

    def initialize(self, chunk: Chunk) -> None:
        """Fresh networks and optimizer state for the chunk (optionally fitted to a spectral estimate)."""
        first = chunk.round * self.restart_numbers_per_round()  # a rescue round's networks are new ones
        restart = first + torch.arange(self.restarts).repeat_interleave(chunk.size)
        self.prior.reset(chunk.index.repeat(self.restarts), restart)
        chunk.state["restart"] = restart
        chunk.state["started"] = torch.zeros_like(restart)  # the iteration each network started at (see after_step)
        self.clear_optimizer_state()
        self.set_learning_rates(0)
        if self.initialization == "spectral":
            self.fit_prior_to(chunk, chunk.per_decoder(truncated_spectral_estimate(self.operator, chunk.measurements)))
            self.clear_optimizer_state()
        with torch.no_grad():
            chunk.estimate = self.prior(chunk.decoders)

    def _network_loss(self, latent: Tensor, target: Tensor, through_operator: bool,
                      smoothing: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Per-network loss of the networks' outputs G(w_b; latent_b) and the outputs themselves.

        ``through_operator``: the data loss ``(1/m) ||target_b - A(G(w_b; latent_b))||^2`` against
        measurements (with ``smoothing`` (B,), the magnitudes smoothed by it:
        :meth:`~dip_lightning.operators.MagnitudeMeasurements.smoothed_data_loss`); otherwise
        ``(1/n) ||G(w_b; latent_b) - target_b||^2`` against images. (Compiled with ``compile``, as
        :attr:`network_loss`.)
        """
        outputs = self.prior.generate(latent)
        if through_operator and smoothing is not None:
            return self.operator.smoothed_data_loss(outputs, target, smoothing), outputs
        if through_operator:
            return self.operator.data_loss(outputs, target), outputs
        return (outputs - target).pow(2).flatten(1).mean(1), outputs

    def fitting_step(self, chunk: Chunk, target: Tensor, through_operator: bool,
                     smoothing: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One optimizer step of every network on :meth:`_network_loss` (inputs perturbed if ``input_noise``);
        returns the per-network loss and outputs, detached."""
        optimizer = self.optimizer()
        latent = self.prior.inputs(chunk.decoders, perturbation=self.input_noise)
        if self.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs may be overwritten
        loss, outputs = self.network_loss(latent, target, through_operator, smoothing)
        optimizer.zero_grad()
        self.backward_sum(loss)
        scaled = self.scaled_restarts(chunk)
        before = [view.clone() for view, _ in scaled]
        optimizer.step()
        with torch.no_grad():
            for (view, factor), old in zip(scaled, before):
                view.sub_(old).mul_(factor).add_(old)  # w_old + f (w_new - w_old), in place in the parameter
        if self.compile == "reduce-overhead":  # graph outputs live in memory the next replay reuses
            return loss.detach().clone(), outputs.detach().clone()
        return loss.detach(), outputs.detach()

    def scaled_restarts(self, chunk: Chunk) -> list[tuple[Tensor, float]]:
        """Views of the weights of the networks whose restart runs at a factor f != 1 of the rate, with f
        (``restart_lr_factors``): for each position j of the factors, every parameter's slice of restarts j, j + L,
        j + 2L, ... (decoder r * b + i, so a strided view, no copy); empty without factors."""
        if self.restart_lr_factors is None:
            return []
        if "scaled_restarts" not in chunk.state:
            period = len(self.restart_lr_factors)
            networks = chunk.restarts * chunk.size
            chunk.state["scaled_restarts"] = [
                (parameter.detach()[:networks].view(chunk.restarts, chunk.size, *parameter.shape[1:])[j::period], factor)
                for j, factor in enumerate(self.restart_lr_factors[: chunk.restarts]) if factor != 1
                for parameter in self.prior.parameters()
            ]
        return chunk.state["scaled_restarts"]

    def data_fitting_iterations(self) -> int:
        """How many of a chunk's first outer iterations are :meth:`data_fitting_step` s (T of ``magnitude_smoothing``)."""
        return self.iterations

    def smoothing_at(self, chunk: Chunk) -> Tensor | None:
        """epsilon_{b,t} of every network (restarts * b,) at the chunk's iteration t (see ``magnitude_smoothing``);
        ``None`` once every network's smoothed start is over (or without one)."""
        if self.magnitude_smoothing is None:
            return None
        started = chunk.state["started"]  # on the host: the schedule and its test need no device sync each step
        horizon = self.smoothing_until * (self.data_fitting_iterations() - started)
        remaining = (1.0 - (chunk.iteration - started) / horizon).clamp_min(0)
        if not remaining.any():
            return None
        if "measurement_rms" not in chunk.state:
            chunk.state["measurement_rms"] = chunk.decoder_measurements.pow(2).mean(dim=1).sqrt()
        rms = chunk.state["measurement_rms"]
        return self.magnitude_smoothing * remaining.to(rms.device, rms.dtype) * rms

    def data_fitting_step(self, chunk: Chunk) -> Tensor:
        """Net-GD's iteration: one optimizer step of every network on its data loss through the operator
        (smoothed at first, ``magnitude_smoothing``); returns the per-network loss before the step."""
        loss, outputs = self.fitting_step(chunk, chunk.decoder_measurements, through_operator=True,
                                          smoothing=self.smoothing_at(chunk))
        self.track(chunk, outputs)
        return loss

    def fit_prior_to(self, chunk: Chunk, images: Tensor, steps: int | None = None) -> Tensor:
        """Optimizer steps on sum_b (1/n) ||G(w_b; z_b) - images_b||^2; returns the last per-network loss."""
        for _ in range(self.init_steps if steps is None else steps):
            loss, _ = self.fitting_step(chunk, images, through_operator=False)
        return loss

    @torch.no_grad()
    def after_step(self, chunk: Chunk) -> None:
        """The next iteration's learning rates; re-seed the failing networks of images with no passing network
        (see ``retry_residual``), recording the iteration they start at in ``chunk.state["started"]``."""
        if self.lr_scheduler_factory is not None:
            self.set_learning_rates(chunk.iteration)
        if (self.retry_residual is None or chunk.iteration % self.retry_every
                or chunk.iteration > self.retry_until * self.iterations or chunk.iteration >= self.iterations):
            return
        outputs = self.prior(chunk.decoders)
        residual = self.operator.relative_residual(outputs, chunk.decoder_measurements).view(chunk.restarts, chunk.size)
        residual = residual.nan_to_num(torch.inf)
        failing_image = (residual > self.retry_residual).all(0)
        keep = torch.zeros_like(residual, dtype=torch.bool)
        keep[residual.argmin(0), torch.arange(chunk.size, device=residual.device)] = True
        retry = (failing_image[None] & ~keep).flatten()  # decoder r * b + i
        if not retry.any():
            return
        slots = retry.nonzero().squeeze(1).cpu()
        chunk.state["restart"][slots] += chunk.restarts  # fresh restart numbers, never reused
        chunk.state["started"][slots] = chunk.iteration
        self.prior.reset(chunk.index.repeat(chunk.restarts)[slots], chunk.state["restart"][slots], slots)
        optimizer = self.optimizer()
        for parameter in self.prior.parameters():
            for value in getattr(optimizer, "optimizer", optimizer).state.get(parameter, {}).values():
                if torch.is_tensor(value) and value.shape == parameter.shape:
                    value[slots.to(value.device)] = 0  # momentum and the like start afresh
        fresh = self.prior(chunk.decoders)
        on_device = slots.to(fresh.device)
        if chunk.estimate is not None:
            chunk.estimate[on_device] = fresh[on_device]
        if "average" in chunk.state:
            chunk.state["average"][on_device] = fresh[on_device]
        chunk.state["retried"] = chunk.state.get("retried", 0) + len(slots)

    @torch.no_grad()
    def track(self, chunk: Chunk, outputs: Tensor) -> None:
        """Record this iteration's network outputs (restarts * b, C, H, W): output average and stopping rule."""
        if self.average is not None:
            previous = chunk.state.get("average", outputs)
            chunk.state["average"] = self.average * previous + (1 - self.average) * outputs
        if self.early_stop is None:
            return
        # the variance is that of the raw outputs: the average's own variance only ever falls
        x, estimate = outputs, chunk.state.get("average", outputs)
        state, rate = chunk.state, self.variance_rate
        if "mean" not in state:
            state.update(mean=x.clone(), variance=x.new_zeros(len(x)), lowest=torch.full_like(x[:, 0, 0, 0], torch.inf),
                         kept=estimate.clone(), since=torch.zeros(len(x), dtype=torch.long, device=x.device))
            return
        change = (x - state["mean"]).flatten(1).pow(2).mean(1)
        state["variance"] = (1 - rate) * (state["variance"] + rate * change)
        state["mean"] = (1 - rate) * state["mean"] + rate * x
        running = state["since"] < self.early_stop
        # the variance starts at 0, so only lows after one window count
        improved = running & (state["variance"] < state["lowest"]) & (chunk.iteration >= 1 / rate)
        state["lowest"] = torch.where(improved, state["variance"], state["lowest"])
        state["kept"] = torch.where(improved[:, None, None, None], estimate, state["kept"])
        state["since"] = torch.where(improved, 0, state["since"] + running.long())

    def converged(self, chunk: Chunk) -> bool:
        return self.early_stop is not None and "since" in chunk.state and bool(
            (chunk.state["since"] >= self.early_stop).all())

    def decoder_estimates(self, chunk: Chunk) -> Tensor:
        """Every network's current estimate, (restarts * b, C, H, W)."""
        if "kept" in chunk.state:
            return chunk.state["kept"]
        if "average" in chunk.state:
            return chunk.state["average"]
        return self.prior(chunk.decoders)

    def reconstruction(self, chunk: Chunk) -> Tensor:
        """The current reconstruction x_hat of the chunk, (b, C, H, W): its restarts combined (after a rescue
        began, round 0's chunk holds each image's reconstruction over all its rounds)."""
        return self.reconstruction_and_agreement(chunk)[0]

    def reconstruction_and_agreement(self, chunk: Chunk) -> tuple[Tensor, Tensor | None]:
        """The reconstruction, and per image how many of its restarts (of all its rounds) lie within
        ``best_radius`` of the best one, the best included, (b,); None without ``best_radius``."""
        if "rescued" in chunk.state:
            return chunk.state["rescued"], chunk.state.get("agreeing")
        return self.combine_restarts(self.restarts_of(chunk), chunk.measurements)

    def suspect(self, residual: Tensor, agreeing: Tensor | None = None) -> Tensor:
        """Per image (b,): its ``residual`` (b,) above ``suspect_residual`` (or not finite), or, with
        ``suspect_agreement``, fewer of its restarts ``agreeing`` with the best one (b,; :meth:`combine_restarts`)."""
        failing = super().suspect(residual)
        if self.suspect_agreement is None:
            return failing
        return failing | (agreeing < min(self.suspect_agreement, self.restarts))

    def restarts_of(self, chunk: Chunk) -> Tensor:
        """Every network's current estimate, by restart: (restarts, b, C, H, W)."""
        estimates = self.decoder_estimates(chunk)
        return estimates.view(chunk.restarts, chunk.size, *estimates.shape[1:])

    def combine_restarts(self, estimates: Tensor, measurements: Tensor) -> tuple[Tensor, Tensor | None]:
        """Each image's restarts ``estimates`` (restarts, b, C, H, W) combined into x_hat (b, C, H, W) by ``combine``;
        ``best`` ranks them by their data loss against the image's ``measurements`` (b, *measurement_shape).
        Also returns, with ``best_radius``, how many restarts lie within it of the best one (b,), else None."""
        restarts, size = estimates.shape[:2]
        agreeing = None
        if self.combine != "best":
            x_hat = estimates.median(0).values if self.combine == "median" else estimates.mean(0)
        else:
            per_restart = measurements.repeat(restarts, *[1] * (measurements.dim() - 1))
            loss = self.operator.data_loss(estimates.flatten(0, 1), per_restart).nan_to_num(torch.inf)
            best = loss.view(restarts, size).argmin(0)
            x_hat = estimates[best, torch.arange(size, device=best.device)]
            if self.best_radius is not None:
                agreeing = self.near(estimates, x_hat).sum(0)
                x_hat = self.mean_near(estimates, x_hat)
        if self.data_consistency:
            x_hat = x_hat + self.operator.A_adjoint(measurements - self.operator.A(x_hat))
        return x_hat, agreeing

    def next_round(self, chunk: Chunk) -> Chunk | None:
        """A rescue round for the images of ``chunk`` (a chunk or a rescue round whose budget is spent) whose
        reconstruction over all their rounds so far is suspect: ``restarts`` fresh networks each (see ``rescue_rounds``
        above); None when every image passed or had ``rescue_rounds`` rounds. Records each image's reconstruction,
        and the rounds it was given, in round 0's chunk."""
        if not self.rescue_rounds:
            return None
        with torch.no_grad():
            pool = self.restarts_of(chunk)  # every restart of every round so far
            if "pool" in chunk.state:
                pool = torch.cat([chunk.state["pool"], pool])
            x_hat, agreeing = self.combine_restarts(pool, chunk.measurements)
            failing = self.suspect(self.operator.relative_residual(x_hat, chunk.measurements), agreeing)
        whole = chunk.first_round
        if chunk.whole is None:
            if not failing.any():
                return None  # no rescue: round 0's reconstruction stands as computed
            positions = torch.arange(chunk.size, device=chunk.index.device)
            whole.state["rescued"], whole.rounds = x_hat, torch.zeros_like(chunk.index)
            if agreeing is not None:
                whole.state["agreeing"] = agreeing
        else:
            positions = chunk.state["positions"]
            whole.state["rescued"][positions] = x_hat
            if agreeing is not None:
                whole.state["agreeing"][positions] = agreeing
        if chunk.round == self.rescue_rounds or not failing.any():
            return None
        again = failing.nonzero().squeeze(1).to(chunk.index.device)
        rescue = Chunk(chunk.index[again], None if chunk.target is None else chunk.target[again],
                       chunk.measurements[again], chunk.image_shape, restarts=chunk.restarts, round=chunk.round + 1,
                       whole=whole)
        rescue.state["pool"], rescue.state["positions"] = pool[:, again], positions[again]
        whole.rounds[positions[again]] += 1
        self.initialize(rescue)  # with gradients: a spectral start fits the networks
        return rescue

    def near(self, stacked: Tensor, best: Tensor) -> Tensor:
        """Per image, which of the restarts ``stacked`` (restarts, b, C, H, W) lie within relative distance
        ``best_radius`` of its ``best`` (b, C, H, W) one, :math:`\\|x_r - x_{r^*}\\| \\le \\rho \\|x_{r^*}\\|`
        (see ``best_radius``); (restarts, b) booleans. A diverged (NaN) restart is never near."""
        distance = (stacked - best).flatten(2).norm(dim=2) / best.flatten(1).norm(dim=1).clamp_min(1e-12)
        return distance <= self.best_radius

    def mean_near(self, stacked: Tensor, best: Tensor) -> Tensor:
        """Per image, the mean of the restarts ``stacked`` (restarts, b, C, H, W) within relative distance
        ``best_radius`` of its ``best`` (b, C, H, W) one (see ``best_radius``); (b, C, H, W)."""
        near = self.near(stacked, best).view(*stacked.shape[:2], *[1] * (stacked.dim() - 2))
        return torch.where(near, stacked, 0).sum(0) / near.sum(0)

    def describe(self) -> dict[str, Any]:
        stopping = {"early_stop": self.early_stop} if self.early_stop else {}
        retrying = ({"retry_residual": self.retry_residual, "retry_every": self.retry_every,
                     "retry_until": self.retry_until} if self.retry_residual is not None else {})
        return {**super().describe(), **self.prior.describe(), **retrying, "restarts": self.restarts, "combine": self.combine,
                **({"best_radius": self.best_radius} if self.best_radius is not None else {}),
                **({"suspect_agreement": self.suspect_agreement} if self.suspect_agreement is not None else {}),
                "initialization": self.initialization, "input_noise": self.input_noise, "average": self.average,
                "data_consistency": self.data_consistency, "compile": self.compile, **stopping,
                **({"restart_lr_factors": self.restart_lr_factors} if self.restart_lr_factors else {}),
                **({"magnitude_smoothing": self.magnitude_smoothing, "smoothing_until": self.smoothing_until}
                   if self.magnitude_smoothing is not None else {})}

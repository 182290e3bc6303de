"""What Net-GD and Net-PGD share: chunk bookkeeping, measurements, metrics and results."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor
from torch.optim import Optimizer

from dip_lightning.errors import DipLightningError
from dip_lightning.metrics import NormalizedMeanSquaredError, image_quality, normalized_mse
from dip_lightning.operators import CompressiveSensing, ImageShape, Operator, PhaseRetrieval
from dip_lightning.priors import DeepDecoder

Problem = Literal["cs", "cpr"]
OPERATORS: dict[str, type[Operator]] = {"cs": CompressiveSensing, "cpr": PhaseRetrieval}


def adam(params) -> Optimizer:
    return torch.optim.Adam(params, lr=0.01)


@dataclass
class Chunk:
    """The images being reconstructed now, and where their reconstruction stands."""

    index: Tensor  # (b,) dataset indices
    target: Tensor  # (b, C, H, W) ground truth, used for measuring and for metrics only
    measurements: Tensor  # (b, m)
    restarts: int = 1  # decoders per image; decoder r * b + i serves image i
    estimate: Tensor | None = None  # (restarts * b, C, H, W) per-decoder estimate (Net-PGD's x)
    iteration: int = 0
    started: float = field(default_factory=time.perf_counter)
    decoder_measurements: Tensor = field(init=False)  # (restarts * b, m): y for every decoder

    def __post_init__(self) -> None:
        self.decoder_measurements = self.per_decoder(self.measurements)  # once, not every step

    @property
    def size(self) -> int:
        return self.index.numel()

    @property
    def decoders(self) -> int:
        return self.size * self.restarts

    def per_decoder(self, t: Tensor) -> Tensor:
        """Repeat a per-image tensor (b, ...) for every restart: (restarts * b, ...)."""
        return t.repeat(self.restarts, *[1] * (t.dim() - 1))

    def combine(self, t: Tensor, how: str = "mean") -> Tensor:
        """Per-decoder images (restarts * b, ...) -> per-image (b, ...): pixelwise mean or median."""
        stacked = t.view(self.restarts, self.size, *t.shape[1:])
        return stacked.median(0).values if how == "median" else stacked.mean(0)


@dataclass
class ChunkResult:
    """Per-image outcome of one finished chunk (all tensors on the CPU, first dim b)."""

    index: Tensor
    target: Tensor
    reconstruction: Tensor
    metrics: dict[str, Tensor]  # nmse, psnr, ssim, residual
    seconds: float  # wall time of the chunk divided by its number of images
    status: list[str]

    def rows(self) -> list[dict[str, Any]]:
        names = list(self.metrics)
        return [
            {"index": int(i), **{k: float(self.metrics[k][b]) for k in names}, "seconds": self.seconds,
             "status": self.status[b]}
            for b, i in enumerate(self.index.tolist())
        ]


class ReconstructionModule(LightningModule):
    """Reconstruct each image from its measurements y = A(x) with an untrained Deep Decoder.

    Chunks of images are reconstructed together by independent decoders (``restarts`` per
    image, see :class:`~dip_lightning.priors.DeepDecoder`); an image's reconstruction is the
    pixelwise mean (or median) of its decoders' outputs. During ``fit`` one ``training_step`` is one
    outer iteration for the whole chunk; after ``iterations`` steps the chunk is finished, its
    per-image results are handed to the callbacks and the next chunk starts from fresh,
    seeded decoders. ``validate`` and ``test`` run the same reconstruction, a whole chunk per
    step. Subclasses implement :meth:`outer_step`. Every loss is a sum over images of per-image
    terms, so each decoder's gradient depends on its own image only.

    Args:
        image_shape: (C, H, W) of the images (the CLI links it from the datamodule).
        chunk_size: decoders held at once (the CLI links it from ``data.chunk_size``).
        problem: measurement model: ``cs`` (y = A x) or ``cpr`` (y = |A x|), Gaussian A.
        ratio: compression ratio f = m / n (in (0, 1] for ``cs``; any positive value for ``cpr``).
        iterations: outer iterations per image.
        channels: decoder channels [k_1, ..., k_L] (L-1 upsampling blocks).
        optimizer: optimizer of the decoder weights (a class path and its init args in config).
        restarts: independently seeded decoders fitted per image; the reconstruction combines
            them, which averages out the different ways single decoders overfit few measurements.
        combine: how restarts are combined: pixelwise ``mean`` or ``median``, or ``best``: per
            image the restart with the lowest data loss (measurements only, no ground truth).
        initialization: ``random`` (the freshly seeded decoders, as the paper's code) or
            ``spectral`` (phase retrieval: each decoder is first fitted for ``init_steps``
            optimizer steps to the truncated spectral estimate of its image).
        init_steps: optimizer steps of that fit.
        seed: base seed of the measurement matrix and of every image's decoder.
    """

    algorithm = "base"

    def __init__(
        self,
        image_shape: ImageShape = (1, 28, 28),
        chunk_size: int = 16,
        problem: Problem = "cs",
        ratio: float = 0.25,
        iterations: int = 1000,
        channels: list[int] = [25, 15, 10],  # noqa: B006 (jsonargparse needs a literal default)
        optimizer: OptimizerCallable = adam,
        restarts: int = 1,
        combine: Literal["mean", "median", "best"] = "mean",
        initialization: Literal["random", "spectral"] = "random",
        init_steps: int = 300,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if iterations < 1:
            raise DipLightningError(f"--model.iterations must be at least 1, got {iterations}")
        if restarts < 1:
            raise DipLightningError(f"--model.restarts must be at least 1, got {restarts}")
        if problem not in OPERATORS:
            raise DipLightningError(f"unknown problem {problem!r}; choose one of {sorted(OPERATORS)}")
        self.save_hyperparameters(ignore=["optimizer"])
        self.automatic_optimization = False
        self.problem = problem
        self.ratio = ratio
        self.iterations = iterations
        self.restarts = restarts
        self.combine = combine
        self.operator = OPERATORS[problem](image_shape, ratio=ratio, seed=seed)
        if initialization == "spectral" and not hasattr(self.operator, "spectral_estimate"):
            raise DipLightningError(
                f"spectral initialization is defined for phase retrieval, not for {self.operator.problem}; "
                "use --model.initialization random"
            )
        self.initialization = initialization
        self.init_steps = init_steps
        self.prior = DeepDecoder(chunk_size * restarts, image_shape, channels, seed=seed)
        self.optimizer_factory = optimizer
        self.nmse_mean = NormalizedMeanSquaredError()
        self.chunk: Chunk | None = None
        self._evaluation_optimizer: Optimizer | None = None

    # ----------------------------------------------------------------------------- optimizer
    def configure_optimizers(self) -> Optimizer:
        return self.optimizer_factory(self.prior.parameters())

    def optimizer(self) -> Optimizer:
        """The decoder optimizer: Lightning's during fit, a private one in validate/test."""
        if self._trainer is not None and self._trainer.training:
            return self.optimizers()
        if self._evaluation_optimizer is None:
            self._evaluation_optimizer = self.optimizer_factory(self.prior.parameters())
        return self._evaluation_optimizer

    def backward_sum(self, loss: Tensor) -> None:
        """Backpropagate the chunk's summed loss (through Lightning when a Trainer runs us)."""
        if self._trainer is not None:
            self.manual_backward(loss.sum())
        else:
            loss.sum().backward()

    def configure_callbacks(self):
        from dip_lightning.callbacks import ResultsWriter, WandbMediaLogger

        return [ResultsWriter(), WandbMediaLogger()]

    def on_fit_start(self) -> None:
        if isinstance(self.trainer.strategy.model, torch.nn.parallel.DistributedDataParallel):
            raise DipLightningError(
                "plain DDP would average the gradients of different images across processes; "
                "use --trainer.strategy ddp_independent for multi-process reconstruction"
            )

    # ----------------------------------------------------------------------------- chunk life
    def begin_chunk(self, batch: dict[str, Tensor]) -> Chunk:
        """Fresh decoders and optimizer state for a new chunk; measure its images."""
        index, target = batch["index"], batch["image"]
        if index.numel() * self.restarts > self.prior.num_decoders:
            raise DipLightningError(
                f"a chunk of {index.numel()} images needs more than the {self.prior.num_decoders} "
                "decoders allocated; keep model.chunk_size equal to data.chunk_size"
            )
        restart = torch.arange(self.restarts).repeat_interleave(index.numel())
        self.prior.reset(index.repeat(self.restarts), restart)
        self.clear_optimizer_state()
        with torch.no_grad():
            chunk = Chunk(index, target, self.operator(target), restarts=self.restarts)
        if self.initialization == "spectral":
            self.fit_prior_to(chunk, chunk.per_decoder(self.operator.spectral_estimate(chunk.measurements)))
            self.clear_optimizer_state()
        with torch.no_grad():
            chunk.estimate = self.prior(chunk.decoders)
        return chunk

    def clear_optimizer_state(self) -> None:
        optimizer = self.optimizer()
        getattr(optimizer, "optimizer", optimizer).state.clear()

    def fit_prior_to(self, chunk: Chunk, images: Tensor, steps: int | None = None) -> Tensor:
        """Optimizer steps on sum_b (1/n) ||G(w_b; z_b) - images_b||^2; returns the last per-decoder loss."""
        optimizer = self.optimizer()
        for _ in range(self.init_steps if steps is None else steps):
            loss = (self.prior(chunk.decoders) - images).pow(2).flatten(1).mean(1)
            optimizer.zero_grad()
            self.backward_sum(loss)
            optimizer.step()
        return loss.detach()

    def decoder_estimates(self, chunk: Chunk) -> Tensor:
        """Every decoder's current image, (restarts * b, C, H, W)."""
        return self.prior(chunk.decoders)

    def reconstruction(self, chunk: Chunk) -> Tensor:
        """The current reconstruction x_hat of the chunk, (b, C, H, W): its restarts combined."""
        estimates = self.decoder_estimates(chunk)
        if self.combine != "best":
            return chunk.combine(estimates, self.combine)
        loss = self.operator.data_loss(estimates, chunk.decoder_measurements).nan_to_num(torch.inf)
        best = loss.view(chunk.restarts, chunk.size).argmin(0)
        stacked = estimates.view(chunk.restarts, chunk.size, *estimates.shape[1:])
        return stacked[best, torch.arange(chunk.size, device=best.device)]

    def outer_step(self, chunk: Chunk) -> Tensor:
        """One outer iteration for the whole chunk; returns the per-image loss (b,)."""
        raise NotImplementedError

    def resolve_sign(self, x_hat: Tensor, target: Tensor) -> Tensor:
        """For sign-ambiguous problems, the one of +/- x_hat nearer the target (evaluation only)."""
        if not self.operator.sign_ambiguous:
            return x_hat
        flip = normalized_mse(-x_hat, target) < normalized_mse(x_hat, target)
        return torch.where(flip[:, None, None, None], -x_hat, x_hat)

    @torch.no_grad()
    def finish_chunk(self, chunk: Chunk) -> ChunkResult:
        x_hat = self.resolve_sign(self.reconstruction(chunk), chunk.target)
        metrics = image_quality(x_hat, chunk.target)
        metrics["residual"] = self.operator.relative_residual(x_hat, chunk.measurements)
        finite = torch.isfinite(x_hat.flatten(1)).all(1) & torch.isfinite(metrics["nmse"])
        self.nmse_mean.update(x_hat[finite], chunk.target[finite])
        means = {f"chunk/{k}": v[finite].mean() for k, v in metrics.items()}
        self.log_dict(means, batch_size=chunk.size, on_step=True, on_epoch=False)
        return ChunkResult(
            index=chunk.index.cpu(),
            target=chunk.target.cpu(),
            reconstruction=x_hat.cpu(),
            metrics={k: v.cpu() for k, v in metrics.items()},
            seconds=(time.perf_counter() - chunk.started) / chunk.size,
            status=["ok" if ok else "diverged" for ok in finite.tolist()],
        )

    # ----------------------------------------------------------------------------- Lightning
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        if batch["index"].numel() == 0:
            return {}  # this process has fewer images than the others: keep in step, do nothing
        if self.chunk is None:
            self.chunk = self.begin_chunk(batch)
        chunk = self.chunk
        loss = self.outer_step(chunk)
        chunk.iteration += 1
        if (batch_idx + 1) % self.trainer.log_every_n_steps == 0:  # when Lightning records logs
            self._log_progress(chunk, loss)
        if chunk.iteration < self.iterations:
            return {}
        self.chunk = None
        return {"chunk": self.finish_chunk(chunk)}

    def _log_progress(self, chunk: Chunk, loss: Tensor) -> None:
        with torch.no_grad():
            x_hat = self.resolve_sign(self.reconstruction(chunk), chunk.target)
            mse = (x_hat - chunk.target).flatten(1).pow(2).mean(1)
            nmse = normalized_mse(x_hat, chunk.target)
        self.log_dict(
            {"train/loss": loss.mean(), "train/nmse": nmse.mean(), "train/psnr": (-10 * torch.log10(mse)).mean()},
            prog_bar=True, batch_size=chunk.size, on_step=True, on_epoch=False,
        )

    def _reconstruct(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        if batch["index"].numel() == 0:
            return {}
        with torch.enable_grad():
            chunk = self.begin_chunk(batch)
            for _ in range(self.iterations):
                self.outer_step(chunk)
                chunk.iteration += 1
        return {"chunk": self.finish_chunk(chunk)}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        return self._reconstruct(batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        return self._reconstruct(batch)

    def on_train_epoch_end(self) -> None:
        self.log("nmse_mean", self.nmse_mean.compute(), sync_dist=False)  # compute() syncs processes
        self.nmse_mean.reset()

    def describe(self) -> dict[str, Any]:
        """What the summary records about the method."""
        return {"algorithm": self.algorithm, "problem": self.problem, "ratio": self.ratio,
                "num_measurements": self.operator.m, "iterations": self.iterations,
                "restarts": self.restarts, "combine": self.combine, "initialization": self.initialization}

"""What Net-GD and Net-PGD share: fresh seeded Deep Decoders per chunk, their optimizer, restarts."""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor
from torch.optim import Optimizer

from dip_lightning.algorithms.base import Chunk, ReconstructionModule
from dip_lightning.errors import DipLightningError
from dip_lightning.priors import DeepDecoder


def adam(params) -> Optimizer:
    return torch.optim.Adam(params, lr=0.01)


class UntrainedPriorModule(ReconstructionModule):
    """Reconstruction with an untrained Deep Decoder x = G(w; z) as the image prior.

    Chunks of images are reconstructed together by independent decoders (``restarts`` per
    image, see :class:`~dip_lightning.priors.DeepDecoder`); every chunk starts from fresh,
    seeded decoders. Every loss is a sum over images of per-image terms, so each decoder's
    gradient depends on its own image only.

    Args:
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
        **kwargs: image_shape, chunk_size, problem, ratio, iterations, seed: see
            :class:`~dip_lightning.algorithms.ReconstructionModule`.
    """

    def __init__(
        self,
        *args: Any,
        channels: list[int] = [25, 15, 10],  # noqa: B006 (jsonargparse needs a literal default)
        optimizer: OptimizerCallable = adam,
        restarts: int = 1,
        combine: Literal["mean", "median", "best"] = "mean",
        initialization: Literal["random", "spectral"] = "random",
        init_steps: int = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if restarts < 1:
            raise DipLightningError(f"--model.restarts must be at least 1, got {restarts}")
        if initialization == "spectral" and not hasattr(self.operator, "spectral_estimate"):
            raise DipLightningError(
                f"spectral initialization is defined for phase retrieval, not for {self.operator.problem}; "
                "use --model.initialization random"
            )
        self.restarts = restarts
        self.combine = combine
        self.initialization = initialization
        self.init_steps = init_steps
        self.prior = DeepDecoder(self.chunk_size * restarts, self.operator.image_shape, channels, seed=self.hparams.seed)
        self.optimizer_factory = optimizer
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

    def clear_optimizer_state(self) -> None:
        optimizer = self.optimizer()
        getattr(optimizer, "optimizer", optimizer).state.clear()

    # ----------------------------------------------------------------------------- chunk life
    def initialize(self, chunk: Chunk) -> None:
        """Fresh decoders and optimizer state for the chunk (optionally fitted to a spectral estimate)."""
        restart = torch.arange(self.restarts).repeat_interleave(chunk.size)
        self.prior.reset(chunk.index.repeat(self.restarts), restart)
        self.clear_optimizer_state()
        if self.initialization == "spectral":
            self.fit_prior_to(chunk, chunk.per_decoder(self.operator.spectral_estimate(chunk.measurements)))
            self.clear_optimizer_state()
        with torch.no_grad():
            chunk.estimate = self.prior(chunk.decoders)

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

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "restarts": self.restarts, "combine": self.combine,
                "initialization": self.initialization}

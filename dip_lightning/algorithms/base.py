"""What every reconstruction method shares: chunk bookkeeping, measurements, metrics and results."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import Tensor

from dip_lightning.algorithms.thresholds import Threshold, threshold_at_ratio
from dip_lightning.chunks import Chunk, ChunkResult
from dip_lightning.errors import DipLightningError
from dip_lightning.metrics import NormalizedMeanSquaredError, image_quality, normalized_mse
from dip_lightning.operators import Operator


class ReconstructionModule(LightningModule):
    r"""Reconstruct each image of a chunk from its measurements y = A(x); the shared machinery.

    A batch is ``{"index": (b,), "image": (b, C, H, W)}`` (clean images: the measurements are
    simulated, ``operator.measure``) or ``{"index", "measurements": (b, *operator.measurement_shape)}``
    with or without reference ``"image"`` (measured data, taken as they are: ``operator.observe``).
    The methods see only y and the operator; nMSE, PSNR and SSIM are computed where a reference
    is given, the relative measurement residual ||y - A(x_hat)|| / ||y|| always.

    Every way of running a chunk goes through :meth:`reconstruct`: ``fit``, ``validate`` and ``test`` take one
    step per chunk, which runs the chunk's ``iterations`` outer iterations (all its images at once, vectorized),
    then its rescue rounds, and hands the per-image results (:class:`~dip_lightning.chunks.ChunkResult`) to the
    callbacks. After every outer iteration the module calls ``on_reconstruction_step(trainer, module, chunk,
    loss)`` on each of the trainer's callbacks that has it (progress bars, curve loggers; :meth:`step_metrics` gives
    them the curves' values). Subclasses implement :meth:`initialize` (the chunk's starting point) and
    :meth:`outer_step`; every update is per image, so an image's result does not depend on its chunk mates.

    Args:
        operator: the measurement model y = A(x) + noise (:mod:`dip_lightning.operators`); in a
            config a class path and its arguments, its ``image_shape`` linked from the datamodule.
        chunk_size: images held at once (the CLI links it from ``data.chunk_size``).
        iterations: outer iterations per image (per round).
        suspect_residual: flag an image ``suspect`` (column ``status``) when its relative
            measurement residual ||y - A(x_hat)|| / ||y|| exceeds this: a failure detected from
            the measurements alone (the phase-retrieval configs set it; ``null`` for none). Either one
            threshold, or a table ``{f: threshold}`` of thresholds measured at sampling ratios f = m / n
            (:func:`~dip_lightning.algorithms.thresholds.threshold_at_ratio`).
        rescue_rounds: at most this many rescue rounds per image, for methods that start from random draws
            (untrained priors: :meth:`next_round`). When a chunk's ``iterations`` are spent, the images whose
            reconstruction is suspect are reconstructed again, together, from fresh random starts, with the full
            budget, while the images that passed are done; this repeats until each passes or has had
            ``rescue_rounds`` rounds. 0: none.
        data_consistency: replace the measured part of the reconstruction by the measurements,
            :math:`\hat x \leftarrow \hat x + A^\top (y - A \hat x)` (the projection onto
            :math:`\{x : A x = y\}` when :math:`A A^\top = I`): for noiseless inpainting, the observed
            pixels are kept as measured. Refused for noisy measurements and operators without orthonormal rows.
    """

    algorithm = "base"
    linear_only = False  # True for methods that need y = A x (no phase retrieval)
    randomized = False  # True for methods whose result depends on random draws, which a rescue round draws afresh

    def __init__(self, operator: Operator, chunk_size: int = 16, iterations: int = 1000,
                 suspect_residual: Threshold = None, rescue_rounds: int = 0, data_consistency: bool = False) -> None:
        super().__init__()
        if iterations < 1:
            raise DipLightningError(f"iterations must be at least 1, got {iterations} (--model.iterations)")
        self.check_operator(operator)
        suspect_residual = threshold_at_ratio(suspect_residual, operator.m / operator.n, "suspect_residual")
        if suspect_residual is not None and not suspect_residual > 0:
            raise DipLightningError(f"suspect_residual must be positive or null, got {suspect_residual} (--model.suspect_residual)")
        if chunk_size < 1:
            raise DipLightningError(f"chunk_size must be a positive integer, got {chunk_size}")
        if rescue_rounds < 0:
            raise DipLightningError(f"rescue_rounds must be 0 or more, got {rescue_rounds} (--model.rescue_rounds)")
        if rescue_rounds and not self.randomized:
            raise DipLightningError(
                f"{type(self).__name__} draws nothing at random, so a rescue round would give the same reconstruction "
                "again: set --model.rescue_rounds 0")
        if rescue_rounds and suspect_residual is None:
            raise DipLightningError(
                f"--model.rescue_rounds ({rescue_rounds}) rescues the images whose residual is above "
                "--model.suspect_residual, which is null: set suspect_residual (e.g. 0.13) or rescue_rounds 0")
        if data_consistency and not (operator.orthonormal_rows and operator.noise_sigma == 0):
            raise DipLightningError(
                "--model.data_consistency keeps the measurements as they are, which needs noiseless measurements "
                f"and an operator with A A^T = I (inpainting); {operator.name} with noise_sigma "
                f"{operator.noise_sigma} is not one: set it to false")
        self.save_hyperparameters(ignore=["operator", "optimizer", "prior"])
        for key, value in list(self.hparams.items()):  # grouped settings (dataclasses) as plain mappings
            if dataclasses.is_dataclass(value):
                self.hparams[key] = dataclasses.asdict(value)
        self.hparams["operator"] = {"class": type(operator).__name__, **operator.describe()}
        self.automatic_optimization = False
        self.iterations = iterations
        self.chunk_size = chunk_size
        self.suspect_residual = suspect_residual
        self.rescue_rounds = rescue_rounds
        self.data_consistency = data_consistency
        self.operator = operator
        self.nmse_mean = NormalizedMeanSquaredError()

    @property
    def ratio(self) -> float:
        """The sampling ratio f = m / n."""
        return self.operator.m / self.operator.n

    @property
    def chunk_iterations(self) -> int:
        """The most outer iterations a chunk can take: ``iterations`` for every round (see ``rescue_rounds``)."""
        return self.iterations * (1 + self.rescue_rounds)

    def estimates_per_image(self) -> int:
        """Estimates a chunk holds per image (the restarts of untrained priors)."""
        return 1

    def check_operator(self, operator: Operator) -> None:
        """Refuse measurement models the method cannot solve (a DipLightningError naming the fix)."""
        if not isinstance(operator, Operator):
            raise DipLightningError(f"operator must be a dip_lightning.operators.Operator, got {type(operator).__name__}")
        if self.linear_only and not operator.linear:
            raise DipLightningError(
                f"{type(self).__name__} solves linear inverse problems, not {operator.name}; "
                "use a linear operator (compressive sensing, inpainting, ...) or another method"
            )

    def configure_optimizers(self) -> None:
        return None  # methods with weights to fit (untrained priors) return their optimizer

    def on_fit_start(self) -> None:
        if isinstance(self.trainer.strategy.model, torch.nn.parallel.DistributedDataParallel):
            raise DipLightningError(
                "plain DDP would average the gradients of different images across processes; "
                "use --trainer.strategy ddp_independent for multi-process reconstruction"
            )

    # ----------------------------------------------------------------------------- chunk life
    def begin_chunk(self, batch: dict[str, Tensor]) -> Chunk:
        """Take (or simulate) a new chunk's measurements and set up its starting point."""
        index, target = batch["index"], batch.get("image")
        if index.numel() > self.chunk_size:
            raise DipLightningError(
                f"a chunk of {index.numel()} images is larger than model.chunk_size={self.chunk_size}; "
                "keep model.chunk_size equal to data.chunk_size"
            )
        with torch.no_grad():
            if "measurements" in batch:
                y = self.operator.observe(batch["measurements"])
            else:
                y = self.operator.measure(target, index)
        chunk = Chunk(index, target, y, self.operator.image_shape, restarts=self.estimates_per_image())
        self.initialize(chunk)
        return chunk

    def advance(self, chunk: Chunk) -> Tensor:
        """One outer iteration of the chunk, with the method's bookkeeping; returns the per-image loss (b,).
        Every way of running a chunk (``fit``'s training steps, :meth:`reconstruct`) goes through it."""
        loss = self.outer_step(chunk)
        chunk.iteration += 1
        self.after_step(chunk)
        return loss

    def reconstruct(self, batch: dict[str, Tensor], on_step: Callable[[Chunk, Tensor], None] | None = None,
                    stop_early: bool = True) -> ChunkResult:
        """Reconstruct one chunk from start to finish without a Trainer (``validate``, ``test``, scripts, tests).

        ``batch`` is what the datamodule serves (``datamodule.test_dataloader()``), on the module's device.
        The chunk runs ``iterations`` outer iterations, or fewer where the method's stopping rule
        (:meth:`converged`) ends it and ``stop_early`` is true, then the rescue rounds its images need
        (:meth:`next_round`). ``on_step(chunk, loss)`` is called after every outer iteration (``chunk.iteration``
        counts them, ``chunk.round`` the round), under ``torch.enable_grad``: for curves, probes and profilers.
        """
        with torch.enable_grad():
            chunk: Chunk | None = self.begin_chunk(batch)
            while chunk is not None:
                while not self.round_done(chunk, stop_early):
                    loss = self.advance(chunk)
                    if on_step is not None:
                        on_step(chunk, loss)
                whole, chunk = chunk.first_round, self.next_round(chunk)
        return self.finish_chunk(whole)

    def round_done(self, chunk: Chunk, stop_early: bool = True) -> bool:
        """Whether the chunk (or rescue round) has spent its ``iterations``, or its stopping rule ended it."""
        return chunk.iteration >= self.iterations or (stop_early and self.converged(chunk))

    def next_round(self, chunk: Chunk) -> Chunk | None:
        """Called when a round of a chunk is done: the next round, a chunk of the images that need one
        (``rescue_rounds``), or None when the chunk is finished. Methods that draw nothing at random have none."""
        return None

    def initialize(self, chunk: Chunk) -> None:
        """Set ``chunk.estimate`` (and any solver state) to the method's starting point."""
        raise NotImplementedError

    def outer_step(self, chunk: Chunk) -> Tensor:
        """One outer iteration for the whole chunk; returns the per-image loss (b,)."""
        raise NotImplementedError

    def after_step(self, chunk: Chunk) -> None:
        """Called after every outer iteration (``chunk.iteration`` counts it): a method's bookkeeping."""

    def reconstruction(self, chunk: Chunk) -> Tensor:
        """The current reconstruction x_hat of the chunk, (b, C, H, W)."""
        return self.consistent(chunk.estimate, chunk.measurements)

    def consistent(self, x_hat: Tensor, measurements: Tensor) -> Tensor:
        """``x_hat`` with its measured part replaced by the ``measurements`` where ``data_consistency`` is set."""
        if not self.data_consistency:
            return x_hat
        return x_hat + self.operator.A_adjoint(measurements - self.operator.A(x_hat))

    def converged(self, chunk: Chunk) -> bool:
        """Whether every image of the chunk is done before the budget (a method's stopping rule)."""
        return False

    def resolve_sign(self, x_hat: Tensor, target: Tensor | None) -> Tensor:
        """For sign-ambiguous problems, the one of +/- x_hat nearer the target (evaluation only);
        without a target, the one whose pixels sum to more (images are non-negative)."""
        if not self.operator.sign_ambiguous:
            return x_hat
        if target is None:
            flip = x_hat.flatten(1).sum(1) < 0
        else:
            flip = normalized_mse(-x_hat, target) < normalized_mse(x_hat, target)
        return torch.where(flip[:, None, None, None], -x_hat, x_hat)

    @torch.no_grad()
    def finish_chunk(self, chunk: Chunk) -> ChunkResult:
        """The per-image results of a finished chunk (round 0's: every image of it)."""
        x_hat, agreeing = self.reconstruction_and_agreement(chunk)
        x_hat = self.resolve_sign(x_hat, chunk.target)
        if chunk.target is not None:
            metrics = image_quality(x_hat, chunk.target)
        else:
            metrics = {k: x_hat.new_full((chunk.size,), float("nan")) for k in ("nmse", "psnr", "ssim")}
        metrics["residual"] = self.operator.relative_residual(x_hat, chunk.measurements)
        finite = torch.isfinite(x_hat.flatten(1)).all(1) & torch.isfinite(metrics["residual"])
        if chunk.target is not None:
            finite &= torch.isfinite(metrics["nmse"])
            self.nmse_mean.update(x_hat[finite], chunk.target[finite])
        if self._trainer is not None:  # under Lightning; reconstruct() also runs without a Trainer
            means = {f"chunk/{k}": v[finite].mean() for k, v in metrics.items()
                     if chunk.target is not None or k == "residual"}
            self.log_dict(means, batch_size=chunk.size, on_step=True, on_epoch=False)
        return ChunkResult(
            index=chunk.index.cpu(),
            target=None if chunk.target is None else chunk.target.cpu(),
            reconstruction=x_hat.cpu(),
            metrics={k: v.cpu() for k, v in metrics.items()},
            seconds=(time.perf_counter() - chunk.started) / chunk.size,
            status=self.status(finite, self.suspect(metrics["residual"], agreeing)),
            measured=None if (preview := self.operator.preview(chunk.measurements)) is None else preview.cpu(),
            rounds=None if chunk.rounds is None else chunk.rounds.tolist(),
            agreeing=None if agreeing is None else agreeing.tolist(),
        )

    def suspect(self, residual: Tensor, agreeing: Tensor | None = None) -> Tensor:
        """Per image (b,), whether a reconstruction of relative residual ``residual`` (b,) is suspect: the residual
        above ``suspect_residual``, or not finite (where a threshold is set). ``agreeing`` (b,), the restarts that
        agree with it (:meth:`reconstruction_and_agreement`), is for methods that also flag on those."""
        if self.suspect_residual is None:
            return torch.zeros_like(residual, dtype=torch.bool)
        return ~(residual <= self.suspect_residual)

    def reconstruction_and_agreement(self, chunk: Chunk) -> tuple[Tensor, Tensor | None]:
        """:meth:`reconstruction`, and per image (b,) how many of its restarts agree with it (methods that combine
        restarts; results.csv's ``agreeing``), or None where that is not defined."""
        return self.reconstruction(chunk), None

    @staticmethod
    def status(finite: Tensor, suspect: Tensor) -> list[str]:
        """Per image: ``diverged`` (NaN/Inf), ``suspect`` (``suspect``, see :meth:`suspect`) or ``ok``."""
        return ["diverged" if not ok else "suspect" if bad else "ok"
                for ok, bad in zip(finite.tolist(), suspect.tolist())]

    # ----------------------------------------------------------------------------- Lightning
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        return self._run_chunk(batch)

    def _run_chunk(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        if batch["index"].numel() == 0:
            return {}  # this process has fewer images than the others: keep in step, do nothing
        followers = [hook for callback in self.trainer.callbacks
                     if (hook := getattr(callback, "on_reconstruction_step", None)) is not None]
        return {"chunk": self.reconstruct(batch, on_step=lambda chunk, loss: [
            follow(self.trainer, self, chunk, loss) for follow in followers])}

    @torch.no_grad()
    def step_metrics(self, chunk: Chunk, loss: Tensor) -> dict[str, float]:
        """Where a chunk stands after an outer iteration, for curves and progress bars: its mean loss and iteration
        (and round, with ``rescue_rounds``), and where references are given the mean nMSE and PSNR."""
        metrics = {"train/loss": loss.mean().item(), "train/iteration": float(chunk.iteration)}
        if self.rescue_rounds:
            metrics["train/round"] = float(chunk.round)  # a rescue round's curves are those of its images only
        if chunk.target is not None:
            x_hat = self.resolve_sign(self.reconstruction(chunk), chunk.target)
            mse = (x_hat - chunk.target).flatten(1).pow(2).mean(1)
            metrics |= {"train/nmse": normalized_mse(x_hat, chunk.target).mean().item(),
                        "train/psnr": (-10 * torch.log10(mse)).mean().item()}
        return metrics

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        return self._run_chunk(batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        return self._run_chunk(batch)

    def on_train_epoch_end(self) -> None:
        if getattr(self.trainer.datamodule, "has_references", True):  # the same on every process
            self.log("nmse_mean", self.nmse_mean.compute(), sync_dist=False)  # compute() syncs processes
        self.nmse_mean.reset()

    def describe(self) -> dict[str, Any]:
        """What the summary records about the method."""
        rescue = {"suspect_residual": self.suspect_residual} if self.suspect_residual is not None else {}
        rescue |= {"rescue_rounds": self.rescue_rounds} if self.rescue_rounds else {}
        rescue |= {"data_consistency": True} if self.data_consistency else {}
        return {"algorithm": self.algorithm, **self.operator.describe(), "iterations": self.iterations, **rescue}

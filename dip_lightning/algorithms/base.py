"""What every reconstruction method shares: chunk bookkeeping, measurements, metrics and results."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule
from torch import Tensor

from dip_lightning.chunks import Chunk, ChunkResult
from dip_lightning.errors import DipLightningError
from dip_lightning.metrics import NormalizedMeanSquaredError, image_quality, normalized_mse
from dip_lightning.operators import Operator


def threshold_at_ratio(table: float | dict[float, float] | None, ratio: float, option: str) -> float | None:
    """A residual threshold at sampling ratio f = m / n (``suspect_residual``, ``retry_residual``): one number is
    the threshold at every f (``None`` none), a table ``{f_j: t_j}`` holds thresholds measured at other ratios.

    With the table's ratios f_1 < ... < f_k and thresholds t_1, ..., t_k: t_1 for f <= f_1, t_k for
    f >= f_k, and between f_j and f_{j+1} the straight line
    :math:`t_j + (f - f_j) (t_{j+1} - t_j) / (f_{j+1} - f_j)`.
    """
    if not isinstance(table, dict):
        return table
    entries = sorted((float(f), float(t)) for f, t in table.items())
    if not entries or any(not f > 0 or not t > 0 for f, t in entries):
        raise DipLightningError(
            f"--model.{option} {table} must map sampling ratios f = m / n to thresholds, both positive, "
            "e.g. {0.3: 0.13, 1.0: 0.2}")
    ratios, thresholds = zip(*entries)
    return float(np.interp(ratio, ratios, thresholds))  # constant beyond the ends, as documented


class ReconstructionModule(LightningModule):
    """Reconstruct each image of a chunk from its measurements y = A(x); the shared machinery.

    A batch is ``{"index": (b,), "image": (b, C, H, W)}`` (clean images: the measurements are
    simulated, ``operator.measure``) or ``{"index", "measurements": (b, *operator.measurement_shape)}``
    with or without reference ``"image"`` (measured data, taken as they are: ``operator.observe``).
    The methods see only y and the operator; nMSE, PSNR and SSIM are computed where a reference
    is given, the relative measurement residual ||y - A(x_hat)|| / ||y|| always.

    During ``fit`` one ``training_step`` runs ``iterations_per_step`` outer iterations of the method
    for the whole chunk (all its images at once, vectorized); after ``iterations`` of them the chunk is finished
    (or, with ``rescue_rounds``, its suspect images go on to a rescue round), its per-image results are handed
    to the callbacks (:class:`~dip_lightning.callbacks.ResultsWriter`) and the next chunk starts. ``validate``
    and ``test`` run the same reconstruction, a whole chunk per step. Subclasses implement :meth:`initialize` (the chunk's starting point) and
    :meth:`outer_step`; every update is per image, so an image's result does not depend on its
    chunk mates.

    Args:
        operator: the measurement model y = A(x) + noise (:mod:`dip_lightning.operators`); in a
            config a class path and its arguments, its ``image_shape`` linked from the datamodule.
        chunk_size: images held at once (the CLI links it from ``data.chunk_size``).
        iterations: outer iterations per image.
        iterations_per_step: outer iterations per ``training_step`` (the CLI links it to the datamodule's).
            Lightning's loop costs about 0.3 ms per step on a 2-core CPU, 5% of an eager MNIST iteration
            (``docs/results/speed/``), so the default 10 runs ten between them. The result does not depend on it.
            The progress bar and the loggers' step count training steps (``trainer.global_step`` still counts
            optimizer steps); the curves carry ``train/iteration``, the chunk's outer iteration, and are logged
            every ``log_every_n_steps`` steps.
        suspect_residual: flag an image ``suspect`` (column ``status``) when its relative
            measurement residual ||y - A(x_hat)|| / ||y|| exceeds this: a failure detected from
            the measurements alone (the phase-retrieval configs set it; ``null`` for none). Either one
            threshold, or a table ``{f: threshold}`` of thresholds measured at sampling ratios f = m / n, for
            residuals of good reconstructions that grow with m: the threshold at the operator's f is
            :func:`threshold_at_ratio` of the table (piecewise linear in f, constant beyond its ends).
        rescue_rounds: at most this many rescue rounds per image, for methods that start from random draws
            (untrained priors: :meth:`next_round`). When a chunk's ``iterations`` are spent, the images whose
            reconstruction is suspect (above ``suspect_residual``, or not finite) are reconstructed again, together,
            from fresh random starts, with the full budget, while the images that passed are done; this repeats
            until each passes or has had ``rescue_rounds`` rounds. So compute goes where it is needed, within the same
            run. A chunk takes at most ``iterations * (1 + rescue_rounds)`` outer iterations. 0: none.
    """

    algorithm = "base"
    linear_only = False  # True for methods that need y = A x (no phase retrieval)
    randomized = False  # True for methods whose result depends on random draws, which a rescue round draws afresh

    def __init__(self, operator: Operator, chunk_size: int = 16, iterations: int = 1000,
                 iterations_per_step: int = 10, suspect_residual: float | dict[float, float] | None = None,
                 rescue_rounds: int = 0) -> None:
        super().__init__()
        if iterations < 1:
            raise DipLightningError(f"iterations must be at least 1, got {iterations} (--model.iterations)")
        if iterations_per_step < 1:
            raise DipLightningError(
                f"iterations_per_step must be at least 1, got {iterations_per_step} (--model.iterations_per_step)")
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
        self.check_operator(operator)
        self.save_hyperparameters(ignore=["operator", "optimizer", "prior"])
        self.hparams["operator"] = {"class": type(operator).__name__, **operator.describe()}
        self.automatic_optimization = False
        self.iterations = iterations
        self.iterations_per_step = iterations_per_step
        self.chunk_size = chunk_size
        self.suspect_residual = suspect_residual
        self.rescue_rounds = rescue_rounds
        self.restarts = 1
        self.operator = operator
        self.nmse_mean = NormalizedMeanSquaredError()
        self.chunk: Chunk | None = None  # the chunk (or rescue round) being reconstructed during fit
        self._finished: Tensor | None = None  # indices of the last chunk finished during fit

    @property
    def chunk_iterations(self) -> int:
        """The most outer iterations a chunk can take: ``iterations`` for every round (see ``rescue_rounds``)."""
        return self.iterations * (1 + self.rescue_rounds)

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

    def configure_callbacks(self):
        from lightning.pytorch.callbacks import TQDMProgressBar

        from dip_lightning.callbacks import ResultsWriter, WandbMediaLogger

        # Lightning replaces the trainer's callbacks of these types by the module's: keep the user's
        given = {type(c) for c in self.trainer.callbacks} if self._trainer is not None else set()
        callbacks = [c() for c in (ResultsWriter, WandbMediaLogger) if c not in given]
        bar = self.trainer.progress_bar_callback if self._trainer is not None else None
        if type(bar) is TQDMProgressBar and bar.refresh_rate == 1:
            # Lightning's default bar redraws (and reads the logged metrics) after every step, about 0.8 ms of
            # a 4-5 ms compiled step (docs/results/speed/); the metrics change only when logged, so redraw then
            callbacks.append(TQDMProgressBar(refresh_rate=self.trainer.log_every_n_steps))
        return callbacks

    def on_fit_start(self) -> None:
        served = getattr(self.trainer.datamodule, "iterations_per_step", self.iterations_per_step)
        if served != self.iterations_per_step:
            raise DipLightningError(
                f"the datamodule serves each chunk for {served} iterations per step but model.iterations_per_step is "
                f"{self.iterations_per_step}; give both the same value (dip-lightning links them)"
            )
        served = getattr(self.trainer.datamodule, "iterations", self.chunk_iterations)
        if served < self.chunk_iterations:
            raise DipLightningError(
                f"the datamodule serves each chunk for {served} outer iterations, but a chunk can take "
                f"{self.chunk_iterations} (model.iterations {self.iterations} for each of 1 + model.rescue_rounds "
                f"{self.rescue_rounds} rounds): set the datamodule's iterations to {self.chunk_iterations} "
                "(dip-lightning links them)"
            )
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
        chunk = Chunk(index, target, y, self.operator.image_shape, restarts=self.restarts)
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
        return chunk.estimate

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
        if batch["index"].numel() == 0:
            return {}  # this process has fewer images than the others: keep in step, do nothing
        if self.chunk is None:
            if self._finished is not None and torch.equal(batch["index"], self._finished):
                return {}  # the rest of the steps served for a chunk that finished before them
            self._finished = None
            self.chunk = self.begin_chunk(batch)
        finished = False
        for _ in range(self.iterations_per_step):
            stepped = self.chunk
            loss = self.advance(stepped)
            if self.round_done(stepped):
                self.chunk = self.next_round(stepped)  # a rescue round goes on within the same step
                if self.chunk is None:
                    finished = True
                    break
        if (batch_idx + 1) % self.trainer.log_every_n_steps == 0:  # when Lightning records logs
            self._log_progress(stepped, loss)
        if not finished:
            return {}
        whole = stepped.first_round
        self._finished = whole.index
        return {"chunk": self.finish_chunk(whole)}

    def _log_progress(self, chunk: Chunk, loss: Tensor) -> None:
        logged = {"train/loss": loss.mean(), "train/iteration": float(chunk.iteration)}
        if self.rescue_rounds:
            logged["train/round"] = float(chunk.round)  # a rescue round's curves are those of its images only
        if chunk.target is not None:
            with torch.no_grad():
                x_hat = self.resolve_sign(self.reconstruction(chunk), chunk.target)
                mse = (x_hat - chunk.target).flatten(1).pow(2).mean(1)
                logged |= {"train/nmse": normalized_mse(x_hat, chunk.target).mean(),
                           "train/psnr": (-10 * torch.log10(mse)).mean()}
        self.log_dict(logged, prog_bar=True, batch_size=chunk.size, on_step=True, on_epoch=False)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        return {"chunk": self.reconstruct(batch)} if batch["index"].numel() else {}

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        return {"chunk": self.reconstruct(batch)} if batch["index"].numel() else {}

    def on_train_epoch_end(self) -> None:
        if getattr(self.trainer.datamodule, "has_references", True):  # the same on every process
            self.log("nmse_mean", self.nmse_mean.compute(), sync_dist=False)  # compute() syncs processes
        self.nmse_mean.reset()

    def describe(self) -> dict[str, Any]:
        """What the summary records about the method."""
        rescue = {"suspect_residual": self.suspect_residual} if self.suspect_residual is not None else {}
        rescue |= {"rescue_rounds": self.rescue_rounds} if self.rescue_rounds else {}
        return {"algorithm": self.algorithm, **self.operator.describe(), "iterations": self.iterations, **rescue}

"""Following a reconstruction iteration by iteration: a progress bar and the curves sent to the loggers.

Both implement ``on_reconstruction_step(trainer, module, chunk, loss)``, which the module calls on every callback
that has it after each outer iteration (one Lightning step runs a whole chunk, so Lightning's own per-step bar and
logging would move once per chunk).
"""

from __future__ import annotations

import sys
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar
from tqdm.auto import tqdm

SHORT_NAMES = {"train/loss": "loss", "train/nmse": "nmse", "train/psnr": "psnr", "train/round": "round"}


class IterationProgressBar(ProgressBar):
    """A bar over the outer iterations of this run's chunks (on the first process), showing where the current chunk
    stands (loss, and nMSE / PSNR where references are given, its rescue round) every ``refresh_every`` iterations.
    A rescue round adds its iterations to the total when it starts; a chunk that stops early counts as done."""

    def __init__(self, refresh_every: int = 25) -> None:
        super().__init__()
        self.refresh_every = refresh_every
        self._enabled = True
        self._bar: tqdm | None = None
        self._done = 0  # iterations of the finished chunks (as budgeted)
        self._round = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _open(self, module: LightningModule, chunks: int | float, description: str) -> None:
        self._close()
        if not self._enabled or not chunks or chunks == float("inf"):
            return
        iterations = int(chunks) * module.iterations
        self._bar = tqdm(total=iterations, desc=f"{description} {int(chunks)} chunk{'s' * (chunks != 1)}", unit="it",
                         dynamic_ncols=True, file=sys.stdout, smoothing=0.05)
        self._done, self._round = 0, 0

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._open(pl_module, self.total_train_batches, pl_module.algorithm)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.training:
            self._open(pl_module, sum(trainer.num_val_batches), pl_module.algorithm)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._open(pl_module, sum(trainer.num_test_batches), pl_module.algorithm)

    def on_reconstruction_step(self, trainer: Trainer, pl_module: LightningModule, chunk: Any, loss: Any) -> None:
        bar = self._bar
        if bar is None:
            return
        if chunk.round > self._round:  # a rescue round began: its budget joins the total
            self._round = chunk.round
            bar.total += pl_module.iterations
        if chunk.iteration % self.refresh_every == 0:
            metrics = pl_module.step_metrics(chunk, loss)
            bar.set_postfix({SHORT_NAMES[k]: f"{v:.4g}" for k, v in metrics.items() if k in SHORT_NAMES}, refresh=False)
            bar.n = self._done + self._round * pl_module.iterations + chunk.iteration
            bar.refresh()

    def _chunk_done(self, pl_module: LightningModule) -> None:
        if self._bar is not None:
            self._done += (1 + self._round) * pl_module.iterations
            self._round = 0
            self._bar.n = self._done
            self._bar.refresh()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self._chunk_done(pl_module)

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self._chunk_done(pl_module)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self._chunk_done(pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._close()  # before Lightning's closing message

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._close()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.training:
            self._close()

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._close()

    def print(self, *args: Any, **kwargs: Any) -> None:
        (tqdm.write if self._bar is not None else print)(" ".join(map(str, args)), **kwargs)


class CurveLogger(Callback):
    """Sends where each chunk stands (``module.step_metrics``: train/loss, train/iteration, train/nmse,
    train/psnr, train/round) to the trainer's loggers every ``every`` outer iterations, at a step that counts this
    process's outer iterations over the whole run (so the curves of successive chunks follow each other)."""

    def __init__(self, every: int = 50) -> None:
        if every < 1:
            raise ValueError(f"CurveLogger.every must be at least 1, got {every}")
        self.every = every
        self.step = 0

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.step = 0

    def on_reconstruction_step(self, trainer: Trainer, pl_module: LightningModule, chunk: Any, loss: Any) -> None:
        self.step += 1
        if not trainer.loggers or chunk.iteration % self.every:
            return
        metrics = pl_module.step_metrics(chunk, loss)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=self.step)

"""Logs a run's reconstructions and per-image results to Weights & Biases."""

from __future__ import annotations

import math
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger

from dip_lightning.callbacks.results import ResultsWriter
from dip_lightning.results import COLUMNS


class WandbMediaLogger(Callback):
    """At the end of a run, sends what the trainer's :class:`ResultsWriter` holds to every ``WandbLogger``:
    the target/reconstruction grid, the per-image table (typed values), a per-image nMSE curve and the summary.

    The curves are logged as the run goes (:class:`~dip_lightning.callbacks.CurveLogger`, ``chunk/*``). Does
    nothing without a ``WandbLogger`` or a ``ResultsWriter`` that finished.
    """

    def _log(self, trainer: Trainer) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        writer = next((c for c in trainer.callbacks if isinstance(c, ResultsWriter)), None)
        if not loggers or not trainer.is_global_zero or writer is None or writer.rows is None:
            return
        import wandb

        rows, summary = writer.rows, writer.summary
        data = [[row[c] for c in COLUMNS] for row in rows]
        grid = Path(trainer.default_root_dir) / "reconstructions.png"
        for logger in loggers:
            nmse = sorted(v for v in (row["nmse"] for row in rows) if math.isfinite(v))
            curve = wandb.Table(columns=["image", "nmse"], data=[[rank, v] for rank, v in enumerate(nmse)])
            media = {
                "results/per_image": wandb.Table(columns=COLUMNS, data=data),
                "results/nmse_sorted": wandb.plot.line(curve, "image", "nmse", title="per-image nMSE, sorted"),
            }
            if grid.is_file():
                media["results/reconstructions"] = wandb.Image(
                    str(grid), caption="rows of references, measurements (where they are images) and reconstructions")
            logger.experiment.log(media)
            logger.experiment.summary.update({f"summary/{k}": v for k, v in summary.items()})

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.training:
            self._log(trainer)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer)

"""Logs a run's reconstructions and per-image results to Weights & Biases."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger


class WandbMediaLogger(Callback):
    """At the end of a run, sends what :class:`ResultsWriter` wrote to every ``WandbLogger``:
    the target/reconstruction grid, the per-image table, a per-image nMSE curve and the summary.

    The step-wise nMSE/PSNR curves are logged by the algorithm itself (``train/nmse``,
    ``train/psnr``, ``chunk/*``). Does nothing without a ``WandbLogger``.
    """

    def _log(self, trainer: Trainer) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        out = Path(trainer.default_root_dir)
        if not loggers or not trainer.is_global_zero or not (out / "results.csv").is_file():
            return
        import wandb

        with open(out / "results.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        columns = list(rows[0]) if rows else []
        data = [[row[c] for c in columns] for row in rows]
        summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
        for logger in loggers:
            run = logger.experiment
            table = wandb.Table(columns=columns, data=data)
            curve = wandb.Table(
                columns=["image", "nmse"],
                data=[[rank, v] for rank, v in enumerate(sorted(v for v in (float(r["nmse"]) for r in rows) if math.isfinite(v)))],
            )
            media = {
                "results/per_image": table,
                "results/nmse_sorted": wandb.plot.line(curve, "image", "nmse", title="per-image nMSE, sorted"),
            }
            if (out / "reconstructions.png").is_file():
                media["results/reconstructions"] = wandb.Image(
                    str(out / "reconstructions.png"), caption="rows of references, measurements (where they are images) and reconstructions"
                )
            run.log(media)
            run.summary.update({f"summary/{k}": v for k, v in summary.items()})

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.training:
            self._log(trainer)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer)

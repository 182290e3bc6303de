"""Logs a run's reconstructions and per-image results to Weights & Biases."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger

from dip_lightning.callbacks.results import ResultsWriter
from dip_lightning.results import COLUMNS, RunFolder

RESULT_FILES = ("results.csv", "summary.json", "reconstructions.pt", "reconstructions.png")


def shown_rows(rows: list[dict[str, Any]], limit: int, seed: int = 0) -> list[dict[str, Any]]:
    """At most ``limit`` of the per-image ``rows`` for the table with images: every row when they are few; else the
    worst half of the limit (by nMSE, or by residual without references) and a seeded sample of the others, in index
    order."""
    if len(rows) <= limit:
        return rows
    key = "nmse" if any(math.isfinite(row["nmse"]) for row in rows) else "residual"
    ranked = sorted(rows, key=lambda row: -row[key] if math.isfinite(row[key]) else -math.inf)
    worst = ranked[: limit // 2]
    rest = ranked[limit // 2:]
    sample = random.Random(seed).sample(rest, limit - len(worst))
    return sorted(worst + sample, key=lambda row: row["index"])


class WandbMediaLogger(Callback):
    """At the end of a run, sends what the trainer's :class:`ResultsWriter` holds to every ``WandbLogger``:

    - ``results/per_image``: a table of every image's numbers (typed: index, name, nmse, psnr, ssim, residual,
      seconds, status, rounds, agreeing);
    - ``results/images``: a table of at most ``max_images`` images with the reference, the measurement where it is an
      image, and the reconstruction as ``wandb.Image`` beside their numbers (all images when they are few, else the
      worst half of the limit and a sample of the others), to compare reconstructions in W&B's table view;
    - the target/reconstruction grid, a sorted per-image nMSE curve, the summary, and the results files
      (``results.csv``, ``summary.json``, ``reconstructions.pt``, ``reconstructions.png``) as a W&B Artifact.

    The curves are logged as the run goes (:class:`~dip_lightning.callbacks.CurveLogger`, ``chunk/*``). Does nothing
    without a ``WandbLogger`` or a ``ResultsWriter`` that finished.
    """

    def __init__(self, max_images: int = 64) -> None:
        self.max_images = max_images

    def image_table(self, rows: list[dict[str, Any]], root: Path):
        import wandb

        shown = shown_rows(rows, self.max_images)
        tensors = RunFolder(root).tensors({row["index"] for row in shown})
        columns = [*COLUMNS, "target", "measured", "reconstruction"]
        data = []
        for row in shown:
            saved = tensors.get(row["index"], {})
            images = [wandb.Image(saved[key].clamp(0, 1).float()) if key in saved else None
                      for key in ("target", "measured", "reconstruction")]
            data.append([row[c] for c in COLUMNS] + images)
        return wandb.Table(columns=columns, data=data)

    def _log(self, trainer: Trainer) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        writer = next((c for c in trainer.callbacks if isinstance(c, ResultsWriter)), None)
        if not loggers or not trainer.is_global_zero or writer is None or writer.rows is None:
            return
        import wandb

        rows, summary, root = writer.rows, writer.summary, Path(trainer.default_root_dir)
        grid = root / "reconstructions.png"
        for logger in loggers:
            run = logger.experiment
            nmse = sorted(v for v in (row["nmse"] for row in rows) if math.isfinite(v))
            curve = wandb.Table(columns=["image", "nmse"], data=[[rank, v] for rank, v in enumerate(nmse)])
            media = {
                "results/per_image": wandb.Table(columns=COLUMNS, data=[[row[c] for c in COLUMNS] for row in rows]),
                "results/images": self.image_table(rows, root),
                "results/nmse_sorted": wandb.plot.line(curve, "image", "nmse", title="per-image nMSE, sorted"),
            }
            if grid.is_file():
                media["results/reconstructions"] = wandb.Image(
                    str(grid), caption="rows of references, measurements (where they are images) and reconstructions")
            run.log(media)
            run.summary.update({f"summary/{k}": v for k, v in summary.items()})
            finite = {k: v for k, v in summary.items() if not (isinstance(v, float) and not math.isfinite(v))}
            artifact = wandb.Artifact(f"results-{run.id}", type="results", metadata=finite)
            for name in RESULT_FILES:
                if (root / name).is_file():
                    artifact.add_file(str(root / name))
            run.log_artifact(artifact)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.training:
            self._log(trainer)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer)

"""Writes a run's results: per-image CSV (as chunks finish), summary JSON and an image grid."""

from __future__ import annotations

import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor
from torchvision.utils import make_grid, save_image

from dip_lightning.algorithms.base import ChunkResult

COLUMNS = ["index", "nmse", "psnr", "ssim", "residual", "seconds", "status"]


def write_atomically(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: row["index"]))

    write_atomically(path, write)


def comparison_grid(targets: Tensor, reconstructions: Tensor, per_row: int = 8) -> Tensor:
    """Rows of up to ``per_row`` targets, each row followed by the matching reconstructions."""
    rows = []
    for start in range(0, len(targets), per_row):
        for images in (targets[start : start + per_row], reconstructions[start : start + per_row]):
            blank = torch.ones(per_row - len(images), *images.shape[1:])
            rows.append(torch.cat([images.clamp(0, 1), blank]))
    return make_grid(torch.cat(rows), nrow=per_row, padding=2, pad_value=1.0)


class ResultsWriter(Callback):
    """Collects every finished chunk and writes into ``trainer.default_root_dir``:

    - ``results.csv``: one row per image (index, nmse, psnr, ssim, residual, seconds, status),
      rewritten atomically after each chunk;
    - ``summary.json``: means and medians over the images, wall time, method and dataset;
    - ``reconstructions.png``: the first ``max_grid_images`` targets above their reconstructions;
    - ``reconstructions.pt``: ``{"index": (N,), "reconstruction": (N, C, H, W)}``, sorted by index.

    With several processes, results are gathered and written by rank 0.
    """

    def __init__(self, max_grid_images: int = 32) -> None:
        self.max_grid_images = max_grid_images
        self.rows: list[dict[str, Any]] = []
        self.gallery: list[tuple[int, Tensor, Tensor]] = []
        self.reconstructions: dict[int, Tensor] = {}
        self.started = time.perf_counter()

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.rows, self.gallery, self.reconstructions = [], [], {}
        self.started = time.perf_counter()

    def output_dir(self, trainer: Trainer) -> Path:
        return Path(trainer.default_root_dir)

    def _collect(self, trainer: Trainer, outputs: Any) -> None:
        if not isinstance(outputs, dict) or "chunk" not in outputs:
            return
        result: ChunkResult = outputs["chunk"]
        self.rows.extend(result.rows())
        for b, index in enumerate(result.index.tolist()):
            self.gallery.append((index, result.target[b], result.reconstruction[b]))
            self.reconstructions[index] = result.reconstruction[b]
        self.gallery = sorted(self.gallery, key=lambda item: item[0])[: self.max_grid_images]
        if trainer.world_size == 1:
            write_csv(self.output_dir(trainer) / "results.csv", self.rows)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._collect(trainer, outputs)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, outputs)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, outputs)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.training:
            self._finish(trainer, pl_module)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish(trainer, pl_module)

    def _finish(self, trainer: Trainer, pl_module: LightningModule) -> None:
        rows, gallery, reconstructions = self.rows, self.gallery, self.reconstructions
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(gathered, (rows, gallery, reconstructions))
            rows = [row for part in gathered for row in part[0]]
            gallery = sorted((g for part in gathered for g in part[1]), key=lambda g: g[0])
            gallery = gallery[: self.max_grid_images]
            reconstructions = {i: x for part in gathered for i, x in part[2].items()}
        if not trainer.is_global_zero or not rows:
            return
        out = self.output_dir(trainer)
        write_csv(out / "results.csv", rows)
        summary = self.summary(trainer, pl_module, rows)
        write_atomically(out / "summary.json", lambda handle: json.dump(summary, handle, indent=2))
        targets = torch.stack([g[1] for g in gallery])
        save_image(comparison_grid(targets, torch.stack([g[2] for g in gallery])), out / "reconstructions.png")
        order = sorted(reconstructions)
        torch.save(
            {"index": torch.tensor(order), "reconstruction": torch.stack([reconstructions[i] for i in order])},
            out / "reconstructions.pt",
        )
        print(
            f"\n{summary['num_images']} images, nMSE mean {summary['nmse_mean']:.4g} "
            f"(median {summary['nmse_median']:.4g}), PSNR {summary['psnr_mean']:.2f} dB, "
            f"SSIM {summary['ssim_mean']:.3f}, {summary['wall_seconds']:.1f} s\n"
            f"Results written to {out.resolve()}/ (results.csv, summary.json, reconstructions.png, "
            "reconstructions.pt)",
            flush=True,
        )

    def summary(self, trainer: Trainer, pl_module: LightningModule, rows: list[dict[str, Any]]) -> dict[str, Any]:
        ok = [row for row in rows if row["status"] == "ok"]
        values = {key: [row[key] for row in ok] for key in ("nmse", "psnr", "ssim", "residual")}

        def mean(key: str) -> float:
            return statistics.fmean(values[key]) if ok else float("nan")

        datamodule = trainer.datamodule
        return {
            "num_images": len(rows),
            "num_diverged": len(rows) - len(ok),
            "nmse_mean": mean("nmse"),
            "nmse_median": statistics.median(values["nmse"]) if ok else float("nan"),
            "psnr_mean": mean("psnr"),
            "ssim_mean": mean("ssim"),
            "residual_mean": mean("residual"),
            "wall_seconds": time.perf_counter() - self.started,
            "dataset": datamodule.describe() if hasattr(datamodule, "describe") else None,
            "num_processes": trainer.world_size,
            **pl_module.describe(),
        }

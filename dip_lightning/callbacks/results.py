"""Writes a run's results as chunks finish, resumes interrupted runs, and summarizes at the end."""

from __future__ import annotations

import csv
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor
from torchvision.utils import make_grid, save_image

from dip_lightning.chunks import ChunkResult
from dip_lightning.errors import DipLightningError
from dip_lightning.files import write_png

COLUMNS = ["index", "name", "nmse", "psnr", "ssim", "residual", "seconds", "status", "rounds", "agreeing"]
FLOAT_COLUMNS = ["nmse", "psnr", "ssim", "residual", "seconds"]


def write_atomically(path: Path, write, mode: str = "w") -> None:
    """Write through a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as handle:
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


def read_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    # "rounds" is missing from the files of runs made before rescue rounds existed: none had any; "agreeing" is
    # empty for methods that do not combine restarts by their distance to the best one, and missing from older files
    return [{**row, "index": int(row["index"]), **{k: float(row[k]) for k in FLOAT_COLUMNS},
             "rounds": int(row.get("rounds") or 0), "agreeing": int(row["agreeing"]) if row.get("agreeing") else None}
            for row in rows]


def image_name(trainer: Trainer, index: int) -> str:
    """The file name stem of dataset image ``index`` (the datamodule's, else its number)."""
    name = getattr(trainer.datamodule, "image_name", None)
    return name(index) if name is not None else f"{index:06d}"


def comparison_grid(*groups: Tensor | None, per_row: int = 8) -> Tensor:
    """Rows of up to ``per_row`` images of the first group, each row followed by the matching
    images of the other groups (e.g. targets, measurements, reconstructions); None groups are left out."""
    groups = [g for g in groups if g is not None]
    count = len(groups[0])
    rows = []
    per_row = max(1, min(per_row, count))
    for start in range(0, count, per_row):
        for images in (group[start : start + per_row] for group in groups):
            blank = torch.ones(per_row - len(images), *images.shape[1:])
            rows.append(torch.cat([images.clamp(0, 1), blank]))
    return make_grid(torch.cat(rows), nrow=per_row, padding=2, pad_value=1.0)


def peak_memory(device: torch.device) -> dict[str, float]:
    """This process's peak resident memory in MB (what the operating system saw), and on a GPU the
    peak memory PyTorch allocated there."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    memory = {"peak_memory_mb": round(peak, 1)}
    if device.type == "cuda":
        memory["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return memory


class ResultsWriter(Callback):
    """Writes a run's results into ``trainer.default_root_dir``, every process its own chunks:

    - as each chunk finishes: every reconstruction as an image file at full resolution,
      ``reconstructions/<name>.png`` (named after its input file, or its dataset index;
      ``png_bits`` 8 or 16 per channel); ``chunks/chunk-<first index>.csv`` and ``.pt`` (rows;
      indices, references, measurement previews and reconstructions); then ``results.csv``
      rebuilt atomically from all chunks so far: one row per image (index, name, nmse, psnr, ssim,
      residual, seconds, status, rounds (rescue rounds given), agreeing (restarts within ``best_radius`` of the
      best one, the best included; empty without ``best_radius``); nmse, psnr and ssim empty (NaN) where no
      reference was given);
    - at the end (rank 0, after every process finished): ``results.csv``, ``summary.json``
      (means and medians, wall time, method, dataset), ``reconstructions.pt``
      (``{"index": (N,), "reconstruction": (N, C, H, W)}``) and ``reconstructions.png`` (the
      first ``max_grid_images`` references, measurements where they are images, and
      reconstructions, in rows).

    To change its settings, add it to the trainer's callbacks (the module then uses that one), e.g.
    ``--trainer.callbacks+=dip_lightning.callbacks.ResultsWriter --trainer.callbacks.png_bits=16``.

    A run started again in the same folder resumes: it keeps the chunks already there and skips
    their images (the datamodule is told through ``exclude``), provided the method and dataset
    are the same (``chunks/run.json``; the chunk size and iterations per step may differ, as they do
    not change an image's result); otherwise it stops with an error before any work.
    """

    def __init__(self, max_grid_images: int = 32, png_bits: int = 8) -> None:
        if png_bits not in (8, 16):
            raise DipLightningError(f"png_bits must be 8 or 16, got {png_bits}")
        self.max_grid_images = max_grid_images
        self.png_bits = png_bits
        self.started = time.perf_counter()

    def chunk_dir(self, trainer: Trainer) -> Path:
        return Path(trainer.default_root_dir) / "chunks"

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.started = time.perf_counter()
        chunks = self.chunk_dir(trainer)
        run = {"dataset": getattr(trainer.datamodule, "describe", lambda: None)(),
               **{k: v for k, v in pl_module.hparams.items() if k not in ("chunk_size", "iterations_per_step")}}
        run = json.loads(json.dumps(run, default=str))
        saved = chunks / "run.json"
        if saved.is_file():
            previous = json.loads(saved.read_text())
            if previous != run:
                changed = sorted(k for k in run.keys() | previous.keys() if run.get(k) != previous.get(k))
                raise DipLightningError(
                    f"{chunks.parent} holds results of another configuration (differs in: "
                    f"{', '.join(changed)}); choose another --trainer.default_root_dir, or delete "
                    f"{chunks} to start over"
                )
        if trainer.is_global_zero:
            write_atomically(saved, lambda handle: json.dump(run, handle, indent=2))
        trainer.strategy.barrier()
        finished = {row["index"] for row in self.rows(trainer)}
        if finished and hasattr(trainer.datamodule, "exclude"):
            trainer.datamodule.exclude(finished)

    def rows(self, trainer: Trainer) -> list[dict[str, Any]]:
        return [row for part in sorted(self.chunk_dir(trainer).glob("chunk-*.csv")) for row in read_csv(part)]

    def _collect(self, trainer: Trainer, outputs: Any) -> None:
        if not isinstance(outputs, dict) or "chunk" not in outputs:
            return
        result: ChunkResult = outputs["chunk"]
        name = f"chunk-{int(result.index.min()):09d}"
        chunks = self.chunk_dir(trainer)
        names = [image_name(trainer, i) for i in result.index.tolist()]
        for stem, image in zip(names, result.reconstruction):
            write_png(Path(trainer.default_root_dir) / "reconstructions" / f"{stem}.png", image, self.png_bits)
        payload = {"index": result.index, "reconstruction": result.reconstruction}
        for key, value in (("target", result.target), ("measured", result.measured)):
            if value is not None:
                payload[key] = value
        write_atomically(chunks / f"{name}.pt", lambda handle: torch.save(payload, handle), mode="wb")
        rows = [{**row, "name": stem} for row, stem in zip(result.rows(), names)]
        write_csv(chunks / f"{name}.csv", rows)  # the .csv marks the chunk finished
        write_csv(Path(trainer.default_root_dir) / "results.csv", self.rows(trainer))

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
        trainer.strategy.barrier()  # every process has written its chunks
        if not trainer.is_global_zero:
            return
        out = Path(trainer.default_root_dir)
        rows = self.rows(trainer)
        if not rows:
            return
        write_csv(out / "results.csv", rows)
        summary = self.summary(trainer, pl_module, rows)
        write_atomically(out / "summary.json", lambda handle: json.dump(summary, handle, indent=2))
        parts = [torch.load(p) for p in sorted(self.chunk_dir(trainer).glob("chunk-*.pt"))]
        index = torch.cat([p["index"] for p in parts])
        order = index.argsort()
        reconstructions = torch.cat([p["reconstruction"] for p in parts])[order]
        torch.save({"index": index[order], "reconstruction": reconstructions}, out / "reconstructions.pt")
        shown = order[: self.max_grid_images]

        def gathered(key: str) -> Tensor | None:
            return torch.cat([p[key] for p in parts])[shown] if all(key in p for p in parts) else None

        save_image(comparison_grid(gathered("target"), gathered("measured"), reconstructions[: self.max_grid_images]),
                   out / "reconstructions.png")
        quality = (f"nMSE mean {summary['nmse_mean']:.4g} (median {summary['nmse_median']:.4g}), "
                   f"PSNR {summary['psnr_mean']:.2f} dB, SSIM {summary['ssim_mean']:.3f}, "
                   if summary["num_with_reference"] else "no reference images, ")
        print(
            f"\n{summary['num_images']} images, {quality}measurement residual {summary['residual_mean']:.4g}, "
            f"{summary['wall_seconds']:.1f} s\n"
            f"Results written to {out.resolve()}/ (reconstructions/*.png, results.csv, summary.json, "
            "reconstructions.png, reconstructions.pt)",
            flush=True,
        )

    def summary(self, trainer: Trainer, pl_module: LightningModule, rows: list[dict[str, Any]]) -> dict[str, Any]:
        ok = [row for row in rows if row["status"] != "diverged"]  # suspect images count: they are images
        values = {key: [row[key] for row in ok if math.isfinite(row[key])] for key in ("nmse", "psnr", "ssim", "residual")}

        def mean(key: str) -> float:
            return statistics.fmean(values[key]) if values[key] else float("nan")

        datamodule = trainer.datamodule
        return {
            "num_images": len(rows),
            "num_diverged": len(rows) - len(ok),
            "num_suspect": sum(row["status"] == "suspect" for row in rows),
            "num_rescued": sum(row["rounds"] > 0 for row in rows),  # images given at least one rescue round
            "num_with_reference": len(values["nmse"]),
            "nmse_mean": mean("nmse"),
            "nmse_median": statistics.median(values["nmse"]) if values["nmse"] else float("nan"),
            "psnr_mean": mean("psnr"),
            "ssim_mean": mean("ssim"),
            "residual_mean": mean("residual"),
            "wall_seconds": time.perf_counter() - self.started,
            "image_seconds_total": sum(row["seconds"] for row in rows),
            **peak_memory(pl_module.device),
            **(datamodule.describe() if hasattr(datamodule, "describe") else {"dataset": None}),
            "num_processes": trainer.world_size,
            **pl_module.describe(),
        }

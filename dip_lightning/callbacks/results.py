"""Writes a run's results into its folder as chunks finish, and the final files and summary at the end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from dip_lightning.chunks import ChunkResult
from dip_lightning.errors import DipLightningError
from dip_lightning.results import RunFolder, summarize
from dip_lightning.results.summary import one_line, peak_memory


@contextmanager
def written(root: str | Path) -> Iterator[None]:
    """Turn a failed write into a DipLightningError of one line naming the folder and the fix."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and "inline_container" not in str(error) and "write" not in str(error):
            raise  # not a failed write (torch.save reports a full disk as a RuntimeError of its zip writer)
        reason = getattr(error, "strerror", None) or "the write was cut short; is the disk full?"
        raise DipLightningError(
            f"writing the results to {root} failed ({reason}): free space or choose another --trainer.default_root_dir, "
            "then run the same command again; the chunks already written are kept") from error


def image_name(trainer: Trainer, index: int) -> str:
    """The file name stem of dataset image ``index`` (the datamodule's, else its number)."""
    name = getattr(trainer.datamodule, "image_name", None)
    return name(index) if name is not None else f"{index:06d}"


class ResultsWriter(Callback):
    """Writes a run's results into ``trainer.default_root_dir`` (:class:`~dip_lightning.results.RunFolder`), every
    process its own chunks:

    - as each chunk finishes: every reconstruction as ``reconstructions/<name>.png`` (named after its input
      file, or its dataset index; ``png_bits`` 8 or 16 per channel), the chunk's files, and ``results.csv``
      rebuilt from all chunks so far: one row per image (index, name, nmse, psnr, ssim, residual, seconds, status,
      rounds (rescue rounds given), agreeing (restarts within ``best_radius`` of the best one, the best included;
      empty without it); nmse, psnr and ssim empty (NaN) where no reference was given);
    - at the end (rank 0, after every process finished): ``results.csv``, ``summary.json`` (means and medians,
      wall time, method, dataset), ``reconstructions.pt`` and ``reconstructions.png`` (references, measurements
      where they are images, and reconstructions, in rows), and the summary line. The rows and the summary stay in
      memory (:attr:`rows`, :attr:`summary`) for the other callbacks (W&B).

    The final files are derived from the chunk files, so a run started again in a finished folder rebuilds them
    (a run with no chunk left to do still ends with them), and ``wall_seconds`` sums every invocation's time.
    A failed write (a full disk, a folder made read-only) stops the run with one line; what was written is kept.

    ``dip-lightning`` adds one; to change its settings, give your own, e.g.
    ``--trainer.callbacks+=dip_lightning.callbacks.ResultsWriter --trainer.callbacks.png_bits=16``.
    """

    def __init__(self, max_grid_images: int = 32, png_bits: int = 8) -> None:
        if png_bits not in (8, 16):
            raise DipLightningError(f"png_bits must be 8 or 16, got {png_bits}")
        self.max_grid_images = max_grid_images
        self.png_bits = png_bits
        self.started = time.perf_counter()
        self.rows: list[dict[str, Any]] | None = None
        self.summary: dict[str, Any] | None = None

    def folder(self, trainer: Trainer) -> RunFolder:
        return RunFolder(trainer.default_root_dir)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.started = time.perf_counter()
        self.rows = self.summary = None
        self._done = False

    def _collect(self, trainer: Trainer, outputs: Any) -> None:
        if not isinstance(outputs, dict) or "chunk" not in outputs:
            return
        result: ChunkResult = outputs["chunk"]
        names = [image_name(trainer, i) for i in result.index.tolist()]
        with written(trainer.default_root_dir):
            self.folder(trainer).write_chunk(result, names, self.png_bits)

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

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._done:  # nothing was left to reconstruct (Lightning skips the epoch): rebuild the final files
            self._finish(trainer, pl_module)

    def _finish(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._done = True
        trainer.strategy.barrier()  # every process has written its chunks
        if not trainer.is_global_zero:
            return
        folder = self.folder(trainer)
        rows = folder.rows()
        if not rows:
            return
        datamodule = trainer.datamodule
        with written(folder.root):
            wall_seconds = folder.add_seconds(time.perf_counter() - self.started)
            summary = summarize(
                rows, wall_seconds=wall_seconds, **peak_memory(pl_module.device),
                **(datamodule.describe() if hasattr(datamodule, "describe") else {"dataset": None}),
                num_processes=trainer.world_size, **pl_module.describe())
            folder.write_final(rows, summary, self.max_grid_images)
        self.rows, self.summary = rows, summary
        print(f"\n{one_line(summary)}\nResults written to {folder.root.resolve()}/ (reconstructions/*.png, results.csv, "
              "summary.json, reconstructions.png, reconstructions.pt)", flush=True)

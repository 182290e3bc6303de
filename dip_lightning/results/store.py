"""The run folder: what a run writes as chunks finish, what identifies the run, and the final files derived
from the chunks.

Layout (``root``): ``chunks/run.json`` (the run's identity), ``chunks/chunk-<first index>.pt`` and ``.csv`` (one
pair per finished chunk; the ``.csv`` marks it finished), ``reconstructions/<name>.png``, and the final files
``results.csv``, ``summary.json``, ``reconstructions.pt`` and ``reconstructions.png``.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from dip_lightning.chunks import ChunkResult
from dip_lightning.errors import DipLightningError
from dip_lightning.files import write_png

COLUMNS = ["index", "name", "nmse", "psnr", "ssim", "residual", "seconds", "status", "rounds", "agreeing"]
FLOAT_COLUMNS = ["nmse", "psnr", "ssim", "residual", "seconds"]


def write_atomically(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
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
    def write(handle) -> None:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: row["index"]))

    write_atomically(path, write)


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a results CSV with their types: index, rounds and agreeing as integers (agreeing None where
    empty), the metrics and seconds as floats. Files of older runs may lack ``rounds`` (0) and ``agreeing``."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{**row, "index": int(row["index"]), **{k: float(row[k]) for k in FLOAT_COLUMNS},
             "rounds": int(row.get("rounds") or 0), "agreeing": int(row["agreeing"]) if row.get("agreeing") else None}
            for row in rows]


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


class RunFolder:
    """A run's folder (see the module docstring): written chunk by chunk by every process, read back to resume
    and to derive the final files."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.chunks = self.root / "chunks"

    # ----------------------------------------------------------------------------- identity and resuming
    def claim(self, identity: dict[str, Any]) -> None:
        """Make the folder this run's: record ``identity`` (the method and data settings that decide every
        image's result), or check it against the one recorded; a folder of another configuration is refused
        before any work. Every process may call it (the record is written atomically, the same by each)."""
        identity = json.loads(json.dumps(identity, default=str))
        saved = self.chunks / "run.json"
        if saved.is_file():
            previous = json.loads(saved.read_text())
            if previous != identity:
                changed = sorted(k for k in identity.keys() | previous.keys() if identity.get(k) != previous.get(k))
                raise DipLightningError(
                    f"{self.root} holds results of another configuration (differs in: {', '.join(changed)}); choose "
                    f"another --trainer.default_root_dir, or delete {self.chunks} to start over")
            return
        write_atomically(saved, lambda handle: json.dump(identity, handle, indent=2))

    def rows(self) -> list[dict[str, Any]]:
        """Every finished chunk's rows."""
        return [row for part in sorted(self.chunks.glob("chunk-*.csv")) for row in read_csv(part)]

    def finished(self) -> set[int]:
        """The dataset indices of the images already reconstructed."""
        return {row["index"] for row in self.rows()}

    # ----------------------------------------------------------------------------- as chunks finish
    def write_chunk(self, result: ChunkResult, names: list[str], png_bits: int = 8) -> None:
        """A finished chunk's files: every reconstruction as ``reconstructions/<name>.png``, the chunk's tensors
        and rows, then ``results.csv`` rebuilt from every chunk so far."""
        for stem, image in zip(names, result.reconstruction):
            write_png(self.root / "reconstructions" / f"{stem}.png", image, png_bits)
        payload = {"index": result.index, "reconstruction": result.reconstruction}
        for key, value in (("target", result.target), ("measured", result.measured)):
            if value is not None:
                payload[key] = value
        name = f"chunk-{int(result.index.min()):09d}"
        write_atomically(self.chunks / f"{name}.pt", lambda handle: torch.save(payload, handle), mode="wb")
        rows = [{**row, "name": stem} for row, stem in zip(result.rows(), names)]
        write_csv(self.chunks / f"{name}.csv", rows)  # the .csv marks the chunk finished
        write_csv(self.root / "results.csv", self.rows())

    # ----------------------------------------------------------------------------- at the end
    def write_final(self, rows: list[dict[str, Any]], summary: dict[str, Any], max_grid_images: int = 32) -> None:
        """``results.csv``, ``summary.json``, ``reconstructions.pt`` (``{"index": (N,), "reconstruction": (N, C, H,
        W)}`` in index order) and ``reconstructions.png`` (the first ``max_grid_images`` references, measurements
        where they are images, and reconstructions, in rows), from the chunk files."""
        write_csv(self.root / "results.csv", rows)
        write_atomically(self.root / "summary.json", lambda handle: json.dump(summary, handle, indent=2))
        parts = [torch.load(p) for p in sorted(self.chunks.glob("chunk-*.pt"))]
        index = torch.cat([p["index"] for p in parts])
        order = index.argsort()
        reconstructions = torch.cat([p["reconstruction"] for p in parts])[order]
        saved = {"index": index[order], "reconstruction": reconstructions}
        write_atomically(self.root / "reconstructions.pt", lambda handle: torch.save(saved, handle), mode="wb")
        shown = order[:max_grid_images]

        def gathered(key: str) -> Tensor | None:
            return torch.cat([p[key] for p in parts])[shown] if all(key in p for p in parts) else None

        save_image(comparison_grid(gathered("target"), gathered("measured"), reconstructions[:max_grid_images]),
                   self.root / "reconstructions.png")

"""Shared helpers for the tests: running reconstructions in-process and through the CLI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import lightning as L

from dip_lightning.run import run

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("DIP_LIGHTNING_DATA", REPO.parent / "shared" / "data"))


def fit(module: L.LightningModule, datamodule: L.LightningDataModule, root: Path, **trainer_kwargs):
    """``dip-lightning fit``'s run in this process (the CLI's trainer settings and callbacks), quiet; results.csv."""
    run(module, datamodule, default_root_dir=str(root), logger=False, enable_progress_bar=False, **trainer_kwargs)
    return read_results(root)


def read_results(root: Path) -> dict[int, dict[str, str]]:
    with open(root / "results.csv", newline="") as handle:
        return {int(row["index"]): row for row in csv.DictReader(handle)}


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "dip_lightning.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )

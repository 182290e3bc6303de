"""Shared helpers for the tests: running reconstructions in-process and through the CLI."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import lightning as L
import torch

from dip_lightning.cli import main
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
    """``dip-lightning ARGS`` run in this process (its ``main``, as the console script runs it), with its exit status
    and what it printed. In-process saves the 6 s of importing torch and Lightning per run; runs that start several
    processes or must be killed use :func:`cli_process`, and so do runs that log to W&B (a W&B run stays open in its
    process: the next run there would log into it)."""
    if uses_wandb(args):
        return cli_process(*args, cwd=cwd)
    stdout, stderr, previous = io.StringIO(), io.StringIO(), os.getcwd()
    os.environ["WANDB_SILENT"] = "true"
    code = 0
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                main(list(args))
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            except Exception:  # what the console script would show: a traceback, exit status 1
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(previous)
        torch.set_float32_matmul_precision("highest")  # what each run set stays process-wide
    return subprocess.CompletedProcess(["dip-lightning", *args], code, stdout.getvalue(), stderr.getvalue())


def uses_wandb(args: tuple[str, ...]) -> bool:
    """Whether a run with these arguments logs to W&B (the CLI's default logger)."""
    if "--trainer.logger" not in args:
        return args[:1] in (("fit",), ("validate",), ("test",))
    last = len(args) - 1 - args[::-1].index("--trainer.logger")  # the last one given wins
    return "Wandb" in args[last + 1]


def cli_process(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``dip-lightning ARGS`` in a fresh process (several processes, signals, a clean interpreter)."""
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "dip_lightning.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )

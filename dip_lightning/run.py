"""How a run is set up, the same for the ``dip-lightning`` command, scripts and tests: the trainer's settings, the
callbacks a run needs, the checks before any work, and resuming a run folder.

    from dip_lightning.run import run
    run(NetGD(CompressiveSensing((1, 28, 28), ratio=0.25)), MNISTDataModule(num_images=16), default_root_dir="runs/x")
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from lightning.pytorch import Callback, LightningDataModule, Trainer
from lightning.pytorch.callbacks import ProgressBar

from dip_lightning.algorithms import ReconstructionModule
from dip_lightning.callbacks import CurveLogger, IterationProgressBar, ResultsWriter, WandbMediaLogger
from dip_lightning.data import ImageDataModule
from dip_lightning.results import RunFolder
from dip_lightning.results.store import first_process

# fit is the reconstruction itself, so the datamodule gives it no validation batches on purpose
warnings.filterwarnings("ignore", message="Total length of .* across ranks is zero")
# the baselines have no weights to fit, hence no optimizer
warnings.filterwarnings("ignore", message=".*configure_optimizers` returned `None`")

TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 1,  # one step per chunk, each chunk once
    "log_every_n_steps": 1,  # each chunk's means (chunk/*); the curves follow iterations (CurveLogger)
    "num_sanity_val_steps": 0,
    "enable_checkpointing": False,  # results are written per chunk by ResultsWriter instead
    "enable_model_summary": False,  # the networks are many small ones, fitted afresh per chunk
    "inference_mode": False,  # validate/test fit networks, so they need gradients
    "use_distributed_sampler": False,  # the datamodule shards the images itself
    "default_root_dir": "runs/default",
}


def with_run_callbacks(callbacks: list[Callback] | Callback | None, progress_bar: bool = True) -> list[Callback]:
    """``callbacks`` and, of the ones a run needs, each of a type not among them: :class:`ResultsWriter`,
    :class:`WandbMediaLogger`, :class:`CurveLogger` and, with ``progress_bar``, :class:`IterationProgressBar` (unless
    another progress bar is given). A callback of one of these types given by the user replaces the default."""
    given = [] if callbacks is None else list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
    defaults: list[Callback] = [ResultsWriter(), WandbMediaLogger(), CurveLogger()]
    if progress_bar and not any(isinstance(c, ProgressBar) for c in given):
        defaults.insert(0, IterationProgressBar())  # first: it closes before the results' summary line is printed
    return given + [c for c in defaults if not any(isinstance(g, type(c)) for g in given)]


def make_trainer(**settings: Any) -> Trainer:
    """A Trainer with :data:`TRAINER_DEFAULTS` under ``settings`` and the callbacks a run needs."""
    settings = {**TRAINER_DEFAULTS, **settings}
    settings["callbacks"] = with_run_callbacks(settings.get("callbacks"), settings.get("enable_progress_bar", True))
    return Trainer(**settings)


def run_identity(module: ReconstructionModule, datamodule: LightningDataModule) -> dict[str, Any]:
    """What decides every image's result: the method's settings and the data's (not the chunk size, which does
    not change an image's result)."""
    describe = getattr(datamodule, "describe", lambda: None)
    return {"dataset": describe(), **{k: v for k, v in module.hparams.items() if k != "chunk_size"}}


def check_inputs(module: ReconstructionModule, datamodule: LightningDataModule) -> None:
    """Load the data and check given measurements against the operator now, before a Trainer starts anything
    (loggers, processes), so that bad input costs nothing."""
    if isinstance(datamodule, ImageDataModule):
        datamodule.check_measurements(module.operator)


def prepare(module: ReconstructionModule, datamodule: LightningDataModule, root: str) -> RunFolder:
    """Before any work: check the inputs and that ``root`` can be written, take the folder for this run (a lock
    held until the process ends), claim it for this configuration, set aside damaged chunks (their images are done
    again), and leave out the images a run there already reconstructed (resuming it). Returns the folder, held
    until its :meth:`~dip_lightning.results.RunFolder.release` or the end of the process."""
    check_inputs(module, datamodule)
    folder = RunFolder(root)
    folder.check_writable()
    folder.lock()
    folder.claim(run_identity(module, datamodule))
    for line in folder.set_aside_damaged():
        notice(line)
    finished = folder.finished()
    if finished and isinstance(datamodule, ImageDataModule):
        datamodule.exclude(finished)
        selected = set(datamodule.selection)
        notice(f"resuming {root}: {len(finished & selected)} of {len(selected)} images already reconstructed")
    return folder


def notice(line: str) -> None:
    """One line to the user on stderr, from the first process of a run only (not a Python warning, which
    ``PYTHONWARNINGS`` or a notebook may hide)."""
    if first_process():
        print(f"dip-lightning: {line}", file=sys.stderr, flush=True)


def run(module: ReconstructionModule, datamodule: LightningDataModule, stage: str = "fit", **settings: Any) -> Trainer:
    """Reconstruct the datamodule's images with ``module`` as ``dip-lightning <stage>`` does, into
    ``settings["default_root_dir"]``; ``settings`` are the Trainer's (:func:`make_trainer`)."""
    trainer = make_trainer(**settings)
    folder = RunFolder(trainer.default_root_dir)
    try:
        prepare(module, datamodule, trainer.default_root_dir)
        getattr(trainer, stage)(module, datamodule)
    finally:
        folder.release()
    return trainer

"""The ``dip-lightning`` command: LightningCLI over the algorithms and datamodules."""

from __future__ import annotations

import csv
import json
import os
import sys
import warnings
from argparse import ArgumentError
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

import dip_lightning.strategies  # noqa: F401 (registers --trainer.strategy ddp_independent)
from dip_lightning.algorithms import ReconstructionModule
from dip_lightning.data import ImageDataModule
from dip_lightning.errors import DipLightningError
from dip_lightning.precision import PRECISIONS, choose_matmul_precision
from dip_lightning.results import RunFolder
from dip_lightning.results.store import first_process
from dip_lightning.run import TRAINER_DEFAULTS, prepare, with_run_callbacks

# main() hands LightningCLI the command line it read (less --debug) as `args`
warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")

CLI_TRAINER_DEFAULTS = {
    **TRAINER_DEFAULTS,
    "logger": {
        "class_path": "lightning.pytorch.loggers.WandbLogger",
        "init_args": {"project": "dip-lightning", "offline": True},
    },
}


class DipLightningCLI(LightningCLI):
    """LightningCLI with the links between data and model that users should never type."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--float32_matmul_precision", default="highest", choices=list(PRECISIONS),
            help="precision of the measurement matrix products: highest = full float32 (reproducible: an image's "
                 "result is bitwise the same in any chunk; float64 on a GPU), high = float32 / TF32, medium = bfloat16, "
                 "auto = medium where the device computes bfloat16 natively, else highest; see "
                 "dip_lightning.operators.CompressiveSensing and dip_lightning.precision",
        )
        parser.link_arguments(
            "data.image_shape", "model.init_args.operator.init_args.image_shape", apply_on="instantiate"
        )
        parser.link_arguments("data.init_args.chunk_size", "model.init_args.chunk_size")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        precision, note, warning = choose_matmul_precision(config.float32_matmul_precision, config.trainer.accelerator)
        torch.set_float32_matmul_precision(precision)  # before the operator is built
        if note:
            rank_zero_info(note)
        if warning:
            rank_zero_warn(warning)
        several = several_devices(config.trainer.accelerator, config.trainer.devices) or (config.trainer.num_nodes or 1) > 1
        if config.trainer.strategy == "auto" and several:
            # Lightning's auto choice, plain DDP, would average different images' gradients
            config.trainer.strategy = "ddp_independent"
        folder = RunFolder(config.trainer.default_root_dir)
        folder.check_writable()  # a folder that cannot be written is refused before anything is built
        logger = config.trainer.logger
        if getattr(logger, "class_path", "").endswith("WandbLogger"):
            if logger.init_args.get("save_dir") in (None, "", "."):  # the W&B run lives beside the results
                logger.init_args.save_dir = str(folder.root)
            if not logger.init_args.get("id"):  # a resumed run goes on logging into the same W&B run
                logger.init_args.id, logger.init_args.resume = folder.wandb_id(), "allow"
            # the images of W&B tables are staged beside the run (not in ~/.local/share), so an offline run is whole
            os.environ.setdefault("WANDB_DATA_DIR", str(Path(logger.init_args.save_dir) / "wandb"))

    def instantiate_trainer(self, **kwargs: Any):
        """The trainer, with the callbacks a run needs that the user did not give (:func:`with_run_callbacks`)."""
        config = self._get(self.config_init, "trainer", default={})
        callbacks = with_run_callbacks(config.get("callbacks"), config.get("enable_progress_bar", True) is not False)
        return super().instantiate_trainer(**{"callbacks": callbacks, **kwargs})

    def prepare_run(self) -> None:
        """Check the inputs and take (or resume) the run folder before the Trainer starts anything."""
        self.run_folder = prepare(self.model, self.datamodule, self.trainer.default_root_dir)  # held for the run

    before_fit = before_validate = before_test = prepare_run


def several_devices(accelerator: Any, devices: Any) -> bool:
    """Whether ``--trainer.devices`` (with ``--trainer.accelerator``) asks for more than one process."""
    if isinstance(devices, (list, tuple)):
        return len(devices) > 1
    text = str(devices).strip()
    if "," in text:
        return len([d for d in text.split(",") if d.strip()]) > 1
    if text in ("auto", "-1"):  # every device: several only where several GPUs are visible
        return str(accelerator) in ("auto", "gpu", "cuda") and torch.cuda.device_count() > 1
    return text.isdigit() and int(text) > 1


def user_error(error: BaseException) -> DipLightningError | None:
    """The DipLightningError behind ``error``, if any (jsonargparse wraps errors raised in __init__)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, DipLightningError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


@contextmanager
def user_errors_raised() -> Iterator[None]:
    """Re-raise the DipLightningError behind an error (jsonargparse and Lightning wrap them) as itself."""
    try:
        yield
    except Exception as error:
        reason = user_error(error)
        if reason is None:
            raise
        raise reason from error


def build(args: list[str], run: bool = True) -> DipLightningCLI:
    """The CLI for ``args`` (e.g. ``["fit", "--config", "configs/mnist_cs_netgd.yaml"]``), run unless
    ``run`` is False. User errors raise; :func:`main` turns them into one line and exit code 2."""
    return DipLightningCLI(
        ReconstructionModule,
        ImageDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults=CLI_TRAINER_DEFAULTS,
        seed_everything_default=False,  # every random draw is seeded explicitly per image
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False},  # a parse error is raised, and main() prints it in one line
        args=args,
        run=run,
    )


def config_arguments(config: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """``--config`` for each of ``config`` (one file, or several: each overrides the ones before it)."""
    configs = [config] if isinstance(config, (str, os.PathLike)) else list(config)
    return [word for each in configs for word in ("--config", str(each))]


def instantiate(config: str | os.PathLike | Sequence[str | os.PathLike],
                overrides: Sequence[str] = ()) -> tuple[ReconstructionModule, ImageDataModule]:
    """The model and datamodule exactly as ``dip-lightning fit --config config *overrides`` builds them (``config``
    one file or several, in order), set up but not run: for scripts and notebooks that call
    :meth:`ReconstructionModule.reconstruct` on the datamodule's chunks (``datamodule.test_dataloader()``). A user
    error raises its DipLightningError."""
    with user_errors_raised():
        cli = build([*config_arguments(config), "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
                     *overrides], run=False)
        cli.datamodule.check_measurements(cli.model.operator)
    return cli.model, cli.datamodule


def run_fit(config: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike,
            overrides: Sequence[str] = (), reuse: bool = False) -> dict[str, Any]:
    """One quiet ``dip-lightning fit`` in this process (no logger, no progress bar), the way scripts run
    experiments: returns ``{"rows": results.csv rows, "summary": summary.json}`` of the run folder ``out``.
    ``config`` is one file or several (each overriding the ones before), all given before the run's settings.
    With ``reuse``, a folder that already holds a summary is read instead of run again. A user error
    raises its DipLightningError (no ``sys.exit``), so that a sweep can report it and go on.

    Each run starts from fresh ``torch.compile`` caches (:func:`torch.compiler.reset`): every run's module is new, so
    its compiled step is a recompile of the same code, and after torch's ``recompile_limit`` (8) of them a sweep's
    later runs would silently fall back to eager steps, slower and rounded differently from the same run on its own."""
    out = Path(out)
    if not (reuse and (out / "summary.json").is_file()):
        torch.compiler.reset()
        try:
            with user_errors_raised():
                build(["fit", *config_arguments(config), "--trainer.default_root_dir", str(out), "--trainer.logger",
                       "false", "--trainer.enable_progress_bar", "false", *overrides])
        finally:
            RunFolder(out).release()  # the next run of a sweep may use the folder
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {"rows": rows, "summary": json.loads((out / "summary.json").read_text())}


BOILERPLATE = ("Does not validate against any of the Union subtypes", "Subtypes:", "Errors:", "Given value",
               "Expected a <class 'NoneType'>")


def parse_error_line(error: ArgumentError) -> str:
    """A parse error in one line: what was wrong (an unknown option, a value of the wrong type), without
    jsonargparse's list of the types it tried."""
    lines = [line.strip(" -").rstrip(":") for line in str(error).splitlines()]
    reasons = [line for line in lines[1:] if line and not line.startswith(BOILERPLATE)]
    reasons = [r for r in reasons if not r.startswith("Problem with given class_path")] or reasons
    where = lines[0] if lines and lines[0].startswith("Parser key") else ""
    return "; ".join(filter(None, [where, *reasons[-2:]])) or str(error)


def main(args: list[str] | None = None) -> None:
    """Entry point. ``--debug`` (or ``DIP_LIGHTNING_DEBUG=1``) shows tracebacks of user errors."""
    argv = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in argv or os.environ.get("DIP_LIGHTNING_DEBUG") == "1"
    try:
        build([a for a in argv if a != "--debug"])
    except SIGTERMException:  # a scheduler's notice (SLURM before preempting): the chunk in progress was finished first
        if first_process():
            print("dip-lightning: stopped by SIGTERM; the finished chunks are kept: run the same command again to go on",
                  file=sys.stderr)
        sys.exit(143)
    except ArgumentError as error:
        if debug:
            raise
        print(f"dip-lightning: error: {parse_error_line(error)} (dip-lightning {argv[0] if argv else 'fit'} --help lists "
              "every option)", file=sys.stderr)
        sys.exit(2)
    except Exception as error:
        reason = user_error(error)
        if reason is None or debug:
            raise
        if first_process():  # the other processes of a run stop with it, without saying it again
            print(f"dip-lightning: error: {reason}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

"""How a run is set up and followed: one training step per chunk, every outer iteration handed to the callbacks,
the default callbacks and the user's own."""

from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import Logger

from dip_lightning.algorithms import EarlyStopping, NetGD, Restarts
from dip_lightning.callbacks import CurveLogger, IterationProgressBar, ResultsWriter, WandbMediaLogger
from dip_lightning.data import MNISTDataModule
from dip_lightning.operators import CompressiveSensing
from dip_lightning.run import run, with_run_callbacks
from tests.helpers import fit

DIGITS = [3, 5, 8]  # two chunks: [3, 5] and [8]


def sgd(params):
    return torch.optim.SGD(params, lr=0.08, momentum=0.9)


def model(**kwargs) -> NetGD:
    return NetGD(CompressiveSensing((1, 28, 28), ratio=0.25), chunk_size=2, iterations=25, optimizer=sgd,
                 restarts=Restarts(count=2), **kwargs)


class Recorder(L.Callback):
    """Records every outer iteration the module hands out, and the training steps."""

    def __init__(self) -> None:
        self.iterations: list[tuple[tuple[int, ...], int]] = []
        self.steps = 0

    def on_reconstruction_step(self, trainer, module, chunk, loss) -> None:
        self.iterations.append((tuple(chunk.index.tolist()), chunk.iteration))

    def on_train_batch_end(self, *args) -> None:
        self.steps += 1


class MemoryLogger(Logger):
    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[int, dict[str, float]]] = []

    name, version = "memory", 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.logged.append((step, dict(metrics)))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass


def test_one_step_per_chunk_and_every_iteration_reaches_the_callbacks(tmp_path, data_root):
    recorder, logger = Recorder(), MemoryLogger()
    datamodule = MNISTDataModule(root=str(data_root), indices=DIGITS, chunk_size=2)
    run(model(), datamodule, default_root_dir=str(tmp_path), enable_progress_bar=False, logger=logger,
        callbacks=[recorder, CurveLogger(every=10)])
    assert recorder.steps == 2  # one training step per chunk
    assert recorder.iterations == [((3, 5), t) for t in range(1, 26)] + [((8,), t) for t in range(1, 26)]
    curves = [(step, metrics["train/iteration"]) for step, metrics in logger.logged if "train/iteration" in metrics]
    assert curves == [(10, 10), (20, 20), (35, 10), (45, 20)]  # steps count the run's iterations: the chunks follow
    assert all(0 < metrics["train/nmse"] < 2 for _, metrics in logger.logged if "train/nmse" in metrics)


def test_a_chunk_that_stops_early_hands_out_fewer_iterations(tmp_path, data_root):
    recorder = Recorder()
    stopping = model(early_stop=EarlyStopping(patience=2, window=2))
    fit(stopping, MNISTDataModule(root=str(data_root), indices=DIGITS, chunk_size=2), tmp_path, callbacks=[recorder])
    per_chunk = [sum(1 for index, _ in recorder.iterations if index == chunk) for chunk in ((3, 5), (8,))]
    assert recorder.steps == 2 and all(0 < count < 25 for count in per_chunk)


def test_the_progress_bar_counts_outer_iterations(tmp_path, data_root, capsys):
    datamodule = MNISTDataModule(root=str(data_root), indices=DIGITS, chunk_size=2)
    run(model(), datamodule, default_root_dir=str(tmp_path), logger=False, callbacks=[IterationProgressBar(10)])
    out = capsys.readouterr().out
    assert "net-gd 2 chunks" in out and "50/50" in out and "nmse=" in out


def test_default_callbacks_and_the_users_own():
    types = [type(c) for c in with_run_callbacks(None)]
    assert types == [IterationProgressBar, ResultsWriter, WandbMediaLogger, CurveLogger]
    assert IterationProgressBar not in [type(c) for c in with_run_callbacks(None, progress_bar=False)]
    mine, bar = ResultsWriter(png_bits=16), TQDMProgressBar()
    chosen = with_run_callbacks([mine, bar])
    assert [c for c in chosen if isinstance(c, ResultsWriter)] == [mine]  # the user's writer replaces the default
    assert not any(isinstance(c, IterationProgressBar) for c in chosen)  # and their bar is the bar


def test_curve_logger_refuses_a_zero_interval():
    with pytest.raises(ValueError, match="at least 1"):
        CurveLogger(every=0)


def test_the_wandb_image_table_keeps_the_worst_and_a_sample_of_a_large_run():
    from dip_lightning.callbacks.wandb_media import shown_rows

    rows = [{"index": i, "nmse": float(i % 97) / 100, "residual": 0.1} for i in range(1000)]
    assert shown_rows(rows[:10], 64) == rows[:10]  # few images: all of them
    shown = shown_rows(rows, 64)
    worst = sorted(rows, key=lambda row: -row["nmse"])[:32]
    assert len(shown) == 64 and [r["index"] for r in shown] == sorted(r["index"] for r in shown)
    assert {r["index"] for r in worst} <= {r["index"] for r in shown}  # the 32 worst, then 32 others
    assert shown == shown_rows(rows, 64)  # the same sample every time
    unreferenced = [{**row, "nmse": float("nan"), "residual": row["nmse"]} for row in rows]
    assert {r["index"] for r in shown_rows(unreferenced, 64)} >= {r["index"] for r in worst}  # ranked by residual

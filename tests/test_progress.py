"""The progress bar redraws when metrics are logged, not after every fitting step."""

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import TQDMProgressBar

from dip_lightning.algorithms import NetGD
from dip_lightning.operators import CompressiveSensing


def bars(model, **trainer_args):
    model.trainer = Trainer(logger=False, accelerator="cpu", **trainer_args)
    return [c for c in model.configure_callbacks() if isinstance(c, TQDMProgressBar)]


def test_default_bar_refreshes_every_logging_interval_and_a_users_bar_is_kept():
    model = NetGD(CompressiveSensing((1, 28, 28), ratio=0.25), chunk_size=1, iterations=1)
    assert [bar.refresh_rate for bar in bars(model, log_every_n_steps=7)] == [7]
    assert bars(model, callbacks=[TQDMProgressBar(refresh_rate=3)]) == []  # the user's own bar stays
    assert bars(model, enable_progress_bar=False) == []

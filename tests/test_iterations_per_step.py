"""Several outer iterations per training step: the same reconstructions, fewer Lightning steps."""

from functools import partial

import lightning as L
import pytest
import torch

from dip_lightning.algorithms import NetGD
from dip_lightning.cli import instantiate
from dip_lightning.data import MNISTDataModule
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing, Denoising
from dip_lightning.priors import DeepDecoder
from tests.helpers import REPO, fit

DIGITS = [3, 5, 8]  # two chunks: [3, 5] and [8]


def sgd(params):
    return torch.optim.SGD(params, lr=0.08, momentum=0.9)


class CountingSteps(L.Callback):
    def __init__(self) -> None:
        self.steps = 0

    def on_train_batch_end(self, *args) -> None:
        self.steps += 1


def run(per_step: int, root, data_root, **kwargs) -> tuple[torch.Tensor, int, int]:
    """Reconstructions, training steps and optimizer steps of a 25-iteration fit of DIGITS."""
    dm = MNISTDataModule(root=str(data_root), indices=DIGITS, chunk_size=2, iterations=25, iterations_per_step=per_step)
    operator = kwargs.pop("operator", CompressiveSensing(dm.image_shape, ratio=0.25))
    model = NetGD(operator, chunk_size=2, iterations=25, iterations_per_step=per_step, optimizer=sgd, restarts=2,
                  **kwargs)
    counter = CountingSteps()
    trainer_steps = {}

    class Recorder(L.Callback):
        def on_train_end(self, trainer, pl_module) -> None:
            trainer_steps["global"] = trainer.global_step
            trainer_steps["logged iteration"] = float(trainer.callback_metrics["train/iteration"])

    fit(model, dm, root, callbacks=[counter, Recorder()], log_every_n_steps=1)
    if not kwargs.get("early_stop"):  # the last step logged the last chunk's last iteration
        assert trainer_steps["logged iteration"] == 25
    saved = torch.load(root / "reconstructions.pt")
    assert saved["index"].tolist() == DIGITS
    return saved["reconstruction"], counter.steps, trainer_steps["global"]


@pytest.mark.parametrize("stopping", [{}, {"early_stop": 3, "early_stop_window": 4}])
def test_iterations_per_step_changes_the_steps_not_the_reconstruction(stopping, tmp_path, data_root):
    if stopping:  # the stopping rule ends chunks in the middle of a step
        stopping = {**stopping, "operator": Denoising((1, 28, 28), noise_sigma=0.1),
                    "prior": partial(DeepDecoder, channels=[8, 8, 8])}
    one, one_steps, one_updates = run(1, tmp_path / "one", data_root, **dict(stopping))
    seven, seven_steps, seven_updates = run(7, tmp_path / "seven", data_root, **dict(stopping))
    assert torch.equal(one, seven)
    assert (one_steps, seven_steps) == (2 * 25, 2 * 4)  # ceil(25 / 7) steps per chunk
    assert one_updates == seven_updates  # global_step (the logs' axis) counts optimizer steps either way
    assert one_updates == 2 * 25 if not stopping else one_updates < 2 * 25


def test_a_datamodule_serving_other_steps_is_refused(tmp_path, data_root):
    dm = MNISTDataModule(root=str(data_root), indices=DIGITS, chunk_size=2, iterations=25, iterations_per_step=1)
    model = NetGD(CompressiveSensing(dm.image_shape, ratio=0.25), chunk_size=2, iterations=25, iterations_per_step=5)
    with pytest.raises(DipLightningError, match="iterations_per_step"):
        fit(model, dm, tmp_path)


def test_the_cli_links_iterations_per_step_to_the_data(data_root):
    model, dm = instantiate(REPO / "configs" / "mnist_cs_netgd.yaml",
                            ["--data.root", str(data_root), "--model.iterations_per_step", "4"])
    assert model.iterations_per_step == dm.iterations_per_step == 4
    with pytest.raises(DipLightningError, match="iterations_per_step"):
        NetGD(CompressiveSensing((1, 28, 28), ratio=0.25), iterations_per_step=0)

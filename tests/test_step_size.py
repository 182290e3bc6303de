"""Net-GD's learning rate relative to the data loss's curvature (``relative_lr``)."""

import numpy as np
import pytest
import torch

from dip_lightning.algorithms import NetGD
from dip_lightning.operators import CompressiveSensing


def sgd(params):
    return torch.optim.SGD(params, lr=0.02, momentum=0.9)


@pytest.mark.parametrize("ratio", [0.1, 0.25])
def test_relative_lr_divides_by_the_curvature_of_the_data_loss(ratio):
    operator = CompressiveSensing((1, 28, 28), ratio=ratio)
    model = NetGD(operator, chunk_size=2, iterations=1, relative_lr=True, optimizer=sgd)
    # independent reference: the largest singular value of the explicit matrix, from numpy's SVD
    matrix = np.stack([operator.A(e.view(1, 1, 28, 28)).double().flatten().numpy() for e in torch.eye(784)], axis=1)
    curvature = 2 * np.linalg.norm(matrix, 2) ** 2 / operator.m
    for optimizer in (model.configure_optimizers(), model.optimizer()):  # under fit, and without a Trainer
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 / curvature, rel=0.02)


def test_relative_lr_makes_one_setting_suit_every_ratio():
    """The curvature grows about fivefold from f = 0.25 to f = 0.1, and the relative rate shrinks with it."""
    rates = [NetGD(CompressiveSensing((1, 28, 28), ratio=f), chunk_size=1, iterations=1, relative_lr=True,
                   optimizer=sgd).optimizer().param_groups[0]["lr"] for f in (0.1, 0.25)]
    assert 4 < rates[1] / rates[0] < 6


def test_plain_lr_is_the_configured_one():
    assert NetGD(CompressiveSensing((1, 28, 28), ratio=0.25), chunk_size=1, iterations=1,
                 optimizer=sgd).optimizer().param_groups[0]["lr"] == 0.02

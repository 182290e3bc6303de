"""Net-GD's learning rate bounded by the data loss's curvature (``curvature_lr``)."""

import numpy as np
import pytest
import torch

from dip_lightning.algorithms import NetGD
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing


def sgd(lr: float):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9)


@pytest.mark.parametrize("ratio", [0.1, 0.25])
def test_the_bound_is_the_curvature_lr_over_the_curvature_of_the_data_loss(ratio):
    operator = CompressiveSensing((1, 28, 28), ratio=ratio)
    model = NetGD(operator, chunk_size=2, iterations=1, curvature_lr=0.02, optimizer=sgd(10.0))
    # independent reference: the largest singular value of the explicit matrix, from numpy's SVD
    matrix = np.stack([operator.A(e.view(1, 1, 28, 28)).double().flatten().numpy() for e in torch.eye(784)], axis=1)
    curvature = 2 * np.linalg.norm(matrix, 2) ** 2 / operator.m
    for optimizer in (model.configure_optimizers(), model.optimizer()):  # under fit, and without a Trainer
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 / curvature, rel=0.02)


def test_the_configured_lr_holds_where_the_curvature_allows_more():
    """The curvature grows about fivefold from f = 0.25 to f = 0.1: lr 0.15 is bounded at f = 0.1 only."""
    rates = [NetGD(CompressiveSensing((1, 28, 28), ratio=f), chunk_size=1, iterations=1, curvature_lr=0.02,
                   optimizer=sgd(0.15)).optimizer().param_groups[0]["lr"] for f in (0.1, 0.25)]
    assert rates[0] < 0.06 and rates[1] == 0.15
    assert NetGD(CompressiveSensing((1, 28, 28), ratio=0.1), chunk_size=1, iterations=1,
                 optimizer=sgd(0.15)).optimizer().param_groups[0]["lr"] == 0.15  # no bound by default


def test_a_non_positive_curvature_lr_is_refused():
    with pytest.raises(DipLightningError, match="--model.curvature_lr"):
        NetGD(CompressiveSensing((1, 28, 28), ratio=0.1), chunk_size=1, iterations=1, curvature_lr=0.0)

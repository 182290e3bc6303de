"""Normalized mean squared error, the paper's per-image quality measure."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor
from torchmetrics import Metric


def normalized_mse(preds: Tensor, target: Tensor) -> Tensor:
    r"""Per-image :math:`\mathrm{nMSE} = \|\hat x - x\|_2^2 / \|x\|_2^2`; (B, ...) -> (B,)."""
    if preds.shape != target.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
    error = (preds - target).flatten(1).pow(2).sum(1)
    return error / target.flatten(1).pow(2).sum(1).clamp_min(torch.finfo(target.dtype).tiny)


class NormalizedMeanSquaredError(Metric):
    r"""Normalized mean squared error over a set of images, synced across processes.

    .. math:: \mathrm{nMSE}_i = \frac{\|\hat x_i - x_i\|_2^2}{\|x_i\|_2^2}

    ``reduction="mean"`` returns :math:`\frac{1}{N}\sum_i \mathrm{nMSE}_i` over every image seen
    by every process; ``reduction="none"`` returns the per-image values (concatenated across
    processes in rank order).
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False

    def __init__(self, reduction: Literal["mean", "none"] = "mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.reduction = reduction
        if reduction == "mean":
            self.add_state("sum_nmse", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        else:
            self.add_state("values", default=[], dist_reduce_fx="cat")

    def update(self, preds: Tensor, target: Tensor) -> None:
        values = normalized_mse(preds, target)
        if self.reduction == "mean":
            self.sum_nmse += values.sum().double()
            self.total += values.numel()
        else:
            self.values.append(values)

    def compute(self) -> Tensor:
        if self.reduction == "mean":
            return (self.sum_nmse / self.total).float()
        values = self.values
        return torch.cat(values) if isinstance(values, list) else values

"""Restarts: several independently seeded networks per image, and how they become one reconstruction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from dip_lightning.errors import DipLightningError


@dataclass
class Restarts:
    r"""How many networks fit each image, and how their estimates are combined into its reconstruction.

    Pure tensor code on the restarts' estimates, stacked ``(R, b, C, H, W)``: restart r of image i.

    Args:
        count: R, independently seeded networks per image; combining them averages out the different ways single
            networks overfit few measurements.
        combine: pixelwise ``mean`` or ``median``, or ``best``: per image the restart with the lowest data loss
            (measurements only, no ground truth).
        best_radius: with ``combine: best``, the reconstruction is instead the pixelwise mean of the best restart
            :math:`x_{r^*}` and every restart that found the same image,
            :math:`\{r : \|x_r - x_{r^*}\| \le \rho \|x_{r^*}\|\}` for this radius rho: the restarts in the right
            basin each fit the few measurements in their own way, and their mean averages that out, while restarts
            that found another image stay out. ``null``: the best restart alone.
        suspect_agreement: with ``best_radius``, an image is also suspect (and, with ``rescue_rounds``, rescued)
            when fewer than this many of its restarts, the best one included, lie within ``best_radius`` of the best
            (results.csv column ``agreeing``): when few measurements do not single out one image, networks that fit
            them equally well end on different images, and the residual alone cannot tell. ``2``: flag an image none
            of whose other restarts found its reconstruction. With fewer restarts than this, all must agree.
        lr_factors: restart r runs at the learning rate times ``lr_factors[r % len]`` (e.g. ``[0.5, 1, 1, 1]``: a
            quarter of the restarts at half the rate), so that the search over restarts also covers step sizes.
            ``null``: every restart at the configured rate.
    """

    count: int = 1
    combine: Literal["mean", "median", "best"] = "mean"
    best_radius: float | None = None
    suspect_agreement: int | None = None
    lr_factors: list[float] | None = None

    def check(self) -> None:
        """Refuse settings that cannot work, naming the option to fix."""
        if self.count < 1:
            raise DipLightningError(f"--model.restarts.count must be at least 1, got {self.count}")
        if self.best_radius is not None and not (self.combine == "best" and self.best_radius >= 0):
            raise DipLightningError(
                f"--model.restarts.best_radius ({self.best_radius}) averages the restarts near the best one, so it "
                f"needs --model.restarts.combine best (got {self.combine}) and a radius >= 0 (e.g. 0.3), or null")
        if self.suspect_agreement is not None and not (self.best_radius is not None and self.suspect_agreement >= 1):
            raise DipLightningError(
                f"--model.restarts.suspect_agreement ({self.suspect_agreement}) counts the restarts within "
                f"best_radius ({self.best_radius}) of the best one, so it needs a best_radius (e.g. 0.3) and a count of "
                "at least 1 (e.g. 2), or null")
        if self.lr_factors is not None and not (self.lr_factors and all(f > 0 for f in self.lr_factors)):
            raise DipLightningError(
                f"--model.restarts.lr_factors ({self.lr_factors}) must be a non-empty list of positive factors of the "
                "learning rate, cycled over the restarts (e.g. [0.5, 1, 1, 1]), or null")

    def needs_losses(self) -> bool:
        """Whether :meth:`combine_estimates` ranks the restarts by their data loss."""
        return self.combine == "best"

    def combine_estimates(self, estimates: Tensor, losses: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Each image's restarts ``estimates`` (R, b, C, H, W) combined into x_hat (b, C, H, W) by ``combine``;
        ``best`` ranks them by their data ``losses`` (R, b; NaN ranks last). Also returns, with ``best_radius``, how
        many restarts lie within it of the best one, the best included (b,), else None."""
        if self.combine != "best":
            return (estimates.median(0).values if self.combine == "median" else estimates.mean(0)), None
        if losses is None:
            raise ValueError("combine: best ranks the restarts by their data losses; pass them")
        size = estimates.shape[1]
        best = losses.nan_to_num(torch.inf).argmin(0)
        x_hat = estimates[best, torch.arange(size, device=best.device)]
        if self.best_radius is None:
            return x_hat, None
        return self.mean_near(estimates, x_hat), self.near(estimates, x_hat).sum(0)

    def near(self, estimates: Tensor, best: Tensor) -> Tensor:
        """Which restarts (R, b, C, H, W) lie within relative distance ``best_radius`` of their image's ``best``
        (b, C, H, W), :math:`\\|x_r - x_{r^*}\\| \\le \\rho \\|x_{r^*}\\|`: (R, b) booleans; a NaN restart never is."""
        distance = (estimates - best).flatten(2).norm(dim=2) / best.flatten(1).norm(dim=1).clamp_min(1e-12)
        return distance <= self.best_radius

    def mean_near(self, estimates: Tensor, best: Tensor) -> Tensor:
        """Per image, the mean of its restarts (R, b, C, H, W) within ``best_radius`` of its ``best``: (b, C, H, W)."""
        near = self.near(estimates, best).view(*estimates.shape[:2], *[1] * (estimates.dim() - 2))
        return torch.where(near, estimates, 0).sum(0) / near.sum(0)

    def disagreeing(self, agreeing: Tensor | None) -> Tensor | None:
        """Per image (b,), whether fewer of its restarts than ``suspect_agreement`` agree with its reconstruction
        (``agreeing`` from :meth:`combine_estimates`); None without the flag."""
        if self.suspect_agreement is None or agreeing is None:
            return None
        return agreeing < min(self.suspect_agreement, self.count)

    def scaled_weights(self, parameters: Iterable[Tensor], size: int) -> list[tuple[Tensor, float]]:
        """Views of the weights of the restarts that run at a factor f != 1 of the rate (``lr_factors``), with f:
        for position j of the factors, every parameter's slice of restarts j, j + L, j + 2L, ... of a chunk of
        ``size`` images (network r * size + i, so a strided view, no copy); empty without factors."""
        if self.lr_factors is None:
            return []
        parameters = list(parameters)
        period, networks = len(self.lr_factors), self.count * size
        return [(parameter.detach()[:networks].view(self.count, size, *parameter.shape[1:])[j::period], factor)
                for j, factor in enumerate(self.lr_factors[: self.count]) if factor != 1
                for parameter in parameters]

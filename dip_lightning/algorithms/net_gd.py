"""Net-GD: gradient descent on the decoder weights through the measurement model."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from dip_lightning.algorithms.untrained_prior import UntrainedPriorModule
from dip_lightning.chunks import Chunk
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import MagnitudeMeasurements


class NetGD(UntrainedPriorModule):
    r"""Net-GD (Jagatap & Hegde, 2019, Algorithm 1), for every image of the chunk at once:

    .. math:: \min_{w_b} \; \frac{1}{m} \| y_b - \mathcal{A}(G(w_b; z_b)) \|_2^2 ,

    one optimizer step per outer iteration, the loss summed over the chunk's images. With a
    denoising, inpainting or super-resolution operator and the skip network this is the Deep
    Image Prior (Ulyanov et al., 2018); with the Deep Decoder, Heckel & Hand (2019).

    Args:
        curvature_lr: an upper bound on the learning rate in units of :math:`1/L`, where
            :math:`L = 2 \|A\|_2^2 / m` is the curvature of the data loss in image space (the
            Lipschitz constant of its gradient, :math:`\|A\|_2^2` by power iteration): the optimizer
            runs with ``min(lr, curvature_lr / L)``. For Gaussian compressive sensing L grows about
            fivefold from f = 0.25 to f = 0.1 (MNIST: 0.090 and 0.436), so a learning rate fast at
            one ratio diverges at the other; the configured lr then bounds the rate where L is small,
            since too large a step also collapses a network to a blank image whatever L is
            (``docs/results/speed/``). ``null``: the configured lr at every ratio.
        magnitude_smoothing: phase retrieval only: s in a smoothed start. For the first fraction u
            (``smoothing_until``) of its own budget, each network fits the magnitudes smoothed at zero,
            :math:`\sqrt{|A x|^2 + \epsilon^2}`
            (:meth:`~dip_lightning.operators.MagnitudeMeasurements.smoothed_data_loss`), with

            .. math:: \epsilon_{b,t} = s \, \mathrm{rms}(y_b) \,
                      \max\Bigl(0, 1 - \frac{t - t_b}{u (T - t_b)}\Bigr),
                      \quad \mathrm{rms}(y_b) = \|y_b\| / \sqrt{m},

            at outer iteration t of T (``iterations``), falling linearly to 0, after which it fits the
            magnitudes themselves; t_b is the iteration network b started at (0, or the iteration a retry
            re-seeded it at, ``retry_residual``). Random starts at m < n are trapped where many
            measurements' signs are wrong, at the kink of :math:`|z|`; the smoothed loss has none there.
            ``null``: the plain loss throughout.
        smoothing_until: u above, a fraction of each network's budget in (0, 1].
        **kwargs: see :class:`UntrainedPriorModule`.
    """

    algorithm = "net-gd"

    def __init__(self, *args: Any, curvature_lr: float | None = None, magnitude_smoothing: float | None = None,
                 smoothing_until: float = 0.8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if curvature_lr is not None and not curvature_lr > 0:
            raise DipLightningError(f"curvature_lr must be positive or null, got {curvature_lr} (--model.curvature_lr)")
        if magnitude_smoothing is not None:
            if not isinstance(self.operator, MagnitudeMeasurements):
                raise DipLightningError(
                    f"--model.magnitude_smoothing smooths measured magnitudes, and {self.operator.name} measures none: "
                    "it is for phase retrieval (PhaseRetrieval, CodedDiffraction); set it to null"
                )
            if not magnitude_smoothing > 0 or not 0 < smoothing_until <= 1:
                raise DipLightningError(
                    f"--model.magnitude_smoothing ({magnitude_smoothing}) must be positive (e.g. 0.6) and "
                    f"--model.smoothing_until ({smoothing_until}) in (0, 1] (e.g. 0.8)"
                )
        self.curvature_lr = curvature_lr
        self.magnitude_smoothing = magnitude_smoothing
        self.smoothing_until = smoothing_until
        self._curvature: float | None = None

    def lr_bound(self) -> float:
        if self.curvature_lr is None:
            return math.inf
        if self._curvature is None:
            self._curvature = 2 * self.operator.norm_squared(iterations=100, margin=1.0) / self.operator.m
        return self.curvature_lr / self._curvature

    def smoothing_at(self, chunk: Chunk) -> Tensor | None:
        """epsilon_{b,t} of every network (restarts * b,) at the chunk's iteration t (see ``magnitude_smoothing``);
        ``None`` once every network's smoothed start is over (or without one)."""
        if self.magnitude_smoothing is None:
            return None
        started = chunk.state["started"]  # on the host: the schedule and its test need no device sync each step
        remaining = (1.0 - (chunk.iteration - started) / (self.smoothing_until * (self.iterations - started))).clamp_min(0)
        if not remaining.any():
            return None
        if "measurement_rms" not in chunk.state:
            chunk.state["measurement_rms"] = chunk.decoder_measurements.pow(2).mean(dim=1).sqrt()
        rms = chunk.state["measurement_rms"]
        return self.magnitude_smoothing * remaining.to(rms.device, rms.dtype) * rms

    def outer_step(self, chunk: Chunk) -> Tensor:
        loss, outputs = self.fitting_step(chunk, chunk.decoder_measurements, through_operator=True,
                                          smoothing=self.smoothing_at(chunk))
        self.track(chunk, outputs)
        return loss

    def describe(self) -> dict[str, Any]:
        smoothing = ({"magnitude_smoothing": self.magnitude_smoothing, "smoothing_until": self.smoothing_until}
                     if self.magnitude_smoothing is not None else {})
        return {**super().describe(), "curvature_lr": self.curvature_lr, **smoothing}

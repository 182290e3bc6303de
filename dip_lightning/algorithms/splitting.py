"""Net-GD whose output may leave the network's range: its reconstruction anchors a total-variation image step."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from dip_lightning.algorithms.net_gd import NetGD
from dip_lightning.algorithms.thresholds import Threshold, threshold_at_ratio
from dip_lightning.algorithms.total_variation import AnchoredTV
from dip_lightning.chunks import Chunk
from dip_lightning.errors import DipLightningError


class NetGDTV(NetGD):
    r"""Net-GD, then an image step of half-quadratic splitting with total variation:

    .. math:: \hat x = \arg\min_{x \in [0, 1]^n} \tfrac12 \| A x - y \|_2^2 + \lambda \, \mathrm{TV}(x)
              + \tfrac{\rho}{2} \| x - g \|_2^2 ,

    g the Net-GD reconstruction (its restarts combined, after its whole search), solved per image by Chambolle-Pock
    (:class:`~dip_lightning.algorithms.total_variation.AnchoredTV`). The untrained network's range limits Net-GD
    to its representation error (about nMSE 0.01 on MNIST), where total variation recovers a digit almost exactly
    once measurements are not scarce; TV alone is poor where they are. The image step keeps both: a strong pull
    rho towards g where measurements are few, a weak one where they are many, so that x leaves the network's range
    only where the measurements and TV support it. lambda and rho are tables by sampling ratio f = m / n
    (:func:`~dip_lightning.algorithms.thresholds.threshold_at_ratio`), chosen on MNIST training digits
    (``scripts/tune_splitting.py``), so that one config serves every f.

    Args:
        tv_weight: lambda, one number or ``{f: lambda}``.
        coupling: rho, one number or ``{f: rho}``.
        tv_iterations: primal-dual steps of the image step, started from g.
        **kwargs: see :class:`~dip_lightning.algorithms.NetGD` (no rescue rounds).
    """

    algorithm = "net-gd-tv"
    linear_only = True

    def __init__(self, *args: Any, tv_weight: Threshold = 0.001, coupling: Threshold = 0.01, tv_iterations: int = 4000,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.rescue_rounds:
            raise DipLightningError("NetGDTV takes no rescue rounds (its image step follows the search): set "
                                    "--model.rescue_rounds 0")
        if tv_iterations < 1:
            raise DipLightningError(f"--model.tv_iterations must be at least 1, got {tv_iterations}")
        self.tv_weight = threshold_at_ratio(tv_weight, self.ratio, "tv_weight")
        self.coupling = threshold_at_ratio(coupling, self.ratio, "coupling")
        if self.tv_weight is None or self.coupling is None or not (self.tv_weight >= 0 and self.coupling > 0):
            raise DipLightningError(
                f"--model.tv_weight ({tv_weight}) must be at least 0 and --model.coupling ({coupling}) positive (numbers "
                "or tables {f: value} by sampling ratio)")
        self.tv_iterations = tv_iterations
        self._solver: AnchoredTV | None = None

    def reconstruction_and_agreement(self, chunk: Chunk) -> tuple[Tensor, Tensor | None]:
        """Before the search is over, the networks' reconstruction g; after it, the image step's x (computed once)."""
        anchor, agreeing = super().reconstruction_and_agreement(chunk)
        if chunk.state.image is None and self.round_done(chunk):
            if self._solver is None:
                self._solver = AnchoredTV(self.operator)
            chunk.state.image = self._solver.solve(chunk.measurements, anchor, self.tv_weight, self.coupling,
                                                   self.tv_iterations)
        return (anchor, agreeing) if chunk.state.image is None else (chunk.state.image, agreeing)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "tv_weight": self.tv_weight, "coupling": self.coupling,
                "tv_iterations": self.tv_iterations}

"""The state of a chunk's networks while an untrained prior reconstructs it (``chunk.state``)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from dip_lightning.algorithms.trackers import StoppingState


@dataclass
class NetworkState:
    """Where a chunk's networks stand (``chunk.state`` of an untrained prior); per network in slot order r * b + i."""

    restart: Tensor  # (R b,) restart numbers, on the host (:class:`~dip_lightning.algorithms.retry.RestartNumbers`)
    started: Tensor  # (R b,) the iteration each network started at (0, or a retry's), on the host
    average: Tensor | None = None  # (R b, C, H, W) the outputs' moving average (``average``)
    stopping: StoppingState | None = None  # the stopping rule's state (``early_stop``)
    measurement_rms: Tensor | None = None  # (R b,) for the smoothed start
    scaled: list[tuple[Tensor, float]] | None = None  # weight views of restarts at another rate (``lr_factors``)
    retried: int = 0  # networks re-seeded by retries so far
    pool: Tensor | None = None  # rescue round: (R', b, C, H, W) the images' restarts of their earlier rounds
    positions: Tensor | None = None  # rescue round: (b,) the images' positions in round 0's chunk
    rescued: Tensor | None = None  # round 0, once a rescue began: (b, C, H, W) each image's reconstruction so far
    agreeing: Tensor | None = None  # round 0, once a rescue began: (b,) the restarts agreeing with it
    image: Tensor | None = None  # (b, C, H, W) an image-space step's result that replaces the networks' (NetGDTV)

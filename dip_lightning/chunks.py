"""A chunk: the images reconstructed together, where their reconstruction stands, and its per-image result.

The algorithms fill a :class:`Chunk` step by step and turn it into a :class:`ChunkResult`, which the callbacks
(results files, W&B) consume; neither side imports the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass
class Chunk:
    """The images being reconstructed now, and where their reconstruction stands.

    A rescue round (``rescue_rounds``) reconstructs some images of a chunk again: it is a chunk of its own, of
    those images, with ``round`` k >= 1 and ``whole`` the chunk of all of them (round 0), which holds every image's
    reconstruction so far and is the one that finishes (``ReconstructionModule.finish_chunk``).
    """

    index: Tensor  # (b,) dataset indices
    target: Tensor | None  # (b, C, H, W) reference images, for metrics only (None for measured data without them)
    measurements: Tensor  # (b, m)
    image_shape: tuple[int, int, int]  # (C, H, W) of the reconstruction
    restarts: int = 1  # estimates per image (decoders of untrained priors); estimate r * b + i serves image i
    estimate: Tensor | None = None  # (restarts * b, C, H, W) current per-estimate image (the iterate x)
    state: Any = None  # the method's own state of the chunk, a dataclass (network bookkeeping, a solver's iterates)
    iteration: int = 0
    round: int = 0  # 0: every image of the chunk; k >= 1: the k-th rescue round of some of them
    whole: Chunk | None = None  # in a rescue round, the chunk of all the images (round 0); None in round 0
    rounds: Tensor | None = None  # in round 0, once a rescue has begun: (b,) the rescue rounds each image was given
    started: float = field(default_factory=time.perf_counter, init=False)  # when the chunk began, for its seconds
    decoder_measurements: Tensor = field(init=False)  # (restarts * b, m): y for every estimate

    def __post_init__(self) -> None:
        self.decoder_measurements = self.per_decoder(self.measurements)  # once, not every step

    @property
    def first_round(self) -> Chunk:
        """The chunk of all the images (round 0): this one, or the one this rescue round is part of."""
        return self if self.whole is None else self.whole

    @property
    def size(self) -> int:
        return self.index.numel()

    @property
    def decoders(self) -> int:
        return self.size * self.restarts

    def zeros(self) -> Tensor:
        """A zero image per image of the chunk, (b, C, H, W), in the measurements' dtype and device."""
        y = self.measurements
        return y.new_zeros(self.size, *self.image_shape)

    def per_decoder(self, t: Tensor) -> Tensor:
        """Repeat a per-image tensor (b, ...) for every restart: (restarts * b, ...)."""
        return t.repeat(self.restarts, *[1] * (t.dim() - 1))

    def combine(self, t: Tensor, how: str = "mean") -> Tensor:
        """Per-decoder images (restarts * b, ...) -> per-image (b, ...): pixelwise mean or median."""
        stacked = t.view(self.restarts, self.size, *t.shape[1:])
        return stacked.median(0).values if how == "median" else stacked.mean(0)


@dataclass
class ChunkResult:
    """Per-image outcome of one finished chunk (all tensors on the CPU, first dim b)."""

    index: Tensor
    target: Tensor | None  # None where the measurements came without reference images
    reconstruction: Tensor
    metrics: dict[str, Tensor]  # nmse, psnr, ssim (NaN without a reference), residual
    seconds: float  # wall time of the chunk divided by its number of images
    status: list[str]
    measured: Tensor | None = None  # the measurements shown as images, where they are images (operator.preview)
    rounds: list[int] | None = None  # rescue rounds each image was given (None: 0 for all)
    agreeing: list[int] | None = None  # restarts that agree with each reconstruction (None: not defined)

    def rows(self) -> list[dict[str, Any]]:
        names = list(self.metrics)
        rounds = self.rounds if self.rounds is not None else [0] * len(self.status)
        agreeing = self.agreeing if self.agreeing is not None else [None] * len(self.status)
        return [
            {"index": int(i), **{k: float(self.metrics[k][b]) for k in names}, "seconds": self.seconds,
             "status": self.status[b], "rounds": rounds[b], "agreeing": agreeing[b]}
            for b, i in enumerate(self.index.tolist())
        ]

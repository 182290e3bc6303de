"""Seeds for every use of randomness: each a named stream, a function of (seed, image index, restart) only.

An image's randomness never depends on its chunk, position, process or device, and no two uses
(streams) ever share a generator. A stream's generator is seeded from numpy's ``SeedSequence``
over a key of 32-bit words:

============================  ==================================  ==========================================
stream                        key                                 used for
============================  ==================================  ==========================================
``MEASUREMENT_MATRIX``        ``[seed, 0, 1]``                    Gaussian matrix of CS / phase retrieval
``NETWORK``                   ``[seed, index, 2 + restart]``      a network's fixed input and initial weights
``MEASUREMENT_NOISE``         ``[seed, index, 0, 3]``             additive noise on an image's measurements
``INPUT_PERTURBATION``        ``[seed, index, restart, 4]``       DIP's input noise, drawn every step
``INPAINTING_MASK``           ``[seed, 0, 0, 5]``                 the random mask of missing pixels
============================  ==================================  ==========================================

Why the keys cannot collide: ``SeedSequence`` treats a short key as if padded with zeros
(``[a, b, c]`` and ``[a, b, c, 0]`` give the same state) and splits integers of 2^32 and more
into several words (``[2**32, 2, 3]`` is ``[0, 1, 2, 3]``). Every word is therefore checked to
lie in [0, 2^32), and the four-word keys end in their stream's number (3, 4, 5: never 0), so
they differ from every three-word key and from each other. The two three-word keys differ in
their third word (1 against 2 + restart >= 2). The three-word keys are those of the first
releases, kept so that noiseless compressive sensing and phase retrieval results are unchanged.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import torch

from dip_lightning.errors import DipLightningError

WORD = 2**32


class Stream(IntEnum):
    """The uses of randomness; each value is that stream's tag in its key (see the module table)."""

    MEASUREMENT_MATRIX = 1
    NETWORK = 2
    MEASUREMENT_NOISE = 3
    INPUT_PERTURBATION = 4
    INPAINTING_MASK = 5


PER_IMAGE = {Stream.NETWORK, Stream.MEASUREMENT_NOISE, Stream.INPUT_PERTURBATION}  # index varies
PER_RESTART = {Stream.NETWORK, Stream.INPUT_PERTURBATION}  # restart varies


def stream_key(stream: Stream, seed: int, index: int = 0, restart: int = 0) -> list[int]:
    """The ``SeedSequence`` key of ``stream`` for (seed, dataset index, restart); see the module table."""
    stream = Stream(stream)
    if (index and stream not in PER_IMAGE) or (restart and stream not in PER_RESTART):
        raise ValueError(f"stream {stream.name} is shared by all images and restarts: index and restart must be 0")
    if stream is Stream.MEASUREMENT_MATRIX:
        key = [seed, 0, 1]
    elif stream is Stream.NETWORK:
        key = [seed, index, 2 + restart]
    else:
        key = [seed, index, restart, int(stream)]
    if not all(0 <= word < WORD for word in key):
        raise DipLightningError(
            f"seeds, image indices and restarts must lie in [0, 2^32), got seed {seed}, index {index}, restart "
            f"{restart}; choose a smaller --model.seed / --model.operator.seed"
        )
    return key


def derive_seed(stream: Stream, seed: int, index: int = 0, restart: int = 0) -> int:
    """A 63-bit seed for ``stream`` of image ``index``, restart ``restart``: independent of chunk, position,
    process or device."""
    state = np.random.SeedSequence(stream_key(stream, seed, index, restart)).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def generator(stream: Stream, seed: int, index: int = 0, restart: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` (CPU so every device agrees)."""
    return torch.Generator(device="cpu").manual_seed(derive_seed(stream, seed, index, restart))

"""Per-image seeds that depend only on a base seed and the image's dataset index."""

import numpy as np
import torch


def derive_seed(seed: int, index: int, stream: int = 0) -> int:
    """A 63-bit seed for image ``index``: independent of chunk, position, process or device.

    ``stream`` separates independent uses (latent code, weights, noise) of the same image.
    """
    state = np.random.SeedSequence([seed, index, stream]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def generator(seed: int, index: int = 0, stream: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` (CPU so every device agrees)."""
    return torch.Generator(device="cpu").manual_seed(derive_seed(seed, index, stream))

"""What every untrained generator prior shares: a bank of independent networks with fixed random inputs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from dip_lightning.operators.base import ImageShape
from dip_lightning.seeding import Stream, generator


class UntrainedPrior(nn.Module):
    """``num_decoders`` independent generators ``x_b = G(w_b; z_b)``, evaluated together.

    Each network has its own weights ``w_b`` and its own fixed random input ``z_b`` (the buffer
    ``latent``, (B, *latent_shape)); only the weights are fitted. Network ``b`` is initialized by
    :meth:`reset` from ``(seed, dataset index, restart)`` alone, never from its slot, so an image's
    reconstruction does not depend on which other images share its chunk.

    Subclasses define ``latent_shape``, :meth:`reset_weights` (one slot from a generator) and
    :meth:`generate` (``(b, *latent_shape) -> (b, C, H, W)``).

    Args:
        num_decoders: networks held at once (the chunk size times the restarts per image).
        image_shape: (C, H, W) of the images.
        seed: base seed of the inputs and weights.
    """

    latent_shape: tuple[int, ...]

    def __init__(self, num_decoders: int, image_shape: ImageShape, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.image_shape = tuple(int(s) for s in image_shape)
        self._perturbation_rngs: list[torch.Generator] = [generator(Stream.INPUT_PERTURBATION, seed)] * num_decoders

    @property
    def num_decoders(self) -> int:
        return self.latent.shape[0]

    def describe(self) -> dict[str, Any]:
        """The prior's class and settings (recorded in summaries, compared on resume)."""
        raise NotImplementedError

    @torch.no_grad()
    def reset(self, indices: Tensor, restarts: Tensor | None = None, slots: Tensor | None = None) -> None:
        """Re-initialize networks ``slots`` (default ``0 .. len(indices)-1``) for the dataset images ``indices``.

        Network ``slots[k]`` gets an input ``z ~ U[0, 0.1)`` and weights drawn from
        (seed, indices[k], restarts[k]) alone (restart 0 by default).
        """
        restarts = torch.zeros_like(indices) if restarts is None else restarts
        slots = range(len(indices)) if slots is None else slots.tolist()
        with self._on_host():
            for slot, index, restart in zip(slots, indices.tolist(), restarts.tolist()):
                rng = generator(Stream.NETWORK, self.seed, index, restart)
                self.latent[slot].copy_(0.1 * torch.rand(self.latent_shape, generator=rng))
                self.reset_weights(slot, rng)
                self._perturbation_rngs[slot] = generator(Stream.INPUT_PERTURBATION, self.seed, index, restart)

    @contextlib.contextmanager
    def _on_host(self) -> Iterator[None]:
        """Hold the parameters and buffers on the CPU for the duration, then copy them back in place.

        The generators are CPU generators, so on a GPU a slot-by-slot reset would be thousands of
        tiny host-to-device copies; this is one copy per tensor each way. The device tensors keep
        their storage (the optimizer and CUDA graphs hold on to it).
        """
        tensors = [*self.parameters(), *self.buffers()]
        if all(t.device.type == "cpu" for t in tensors):
            yield
            return
        originals = [t.data for t in tensors]
        for t in tensors:
            t.data = t.data.cpu()
        try:
            yield
        finally:
            for t, original in zip(tensors, originals):
                original.copy_(t.data)
                t.data = original

    def reset_weights(self, slot: int, rng: torch.Generator) -> None:
        raise NotImplementedError

    def generate(self, latent: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, num_images: int | None = None, perturbation: float = 0.0) -> Tensor:
        """Outputs of the first ``num_images`` networks (all by default), shape (B, C, H, W).

        With ``perturbation`` > 0 every input is perturbed, ``z_b + perturbation * e_b`` with a
        fresh ``e_b ~ N(0, I)`` drawn from network b's own generator (DIP's input-noise
        regularization); the stored inputs are unchanged.
        """
        return self.generate(self.inputs(num_images, perturbation))

    def inputs(self, num_images: int | None = None, perturbation: float = 0.0) -> Tensor:
        """The (perturbed) inputs of the first ``num_images`` networks, (B, *latent_shape): see :meth:`forward`."""
        b = self.num_decoders if num_images is None else num_images
        latent = self.latent[:b]
        if perturbation > 0:
            noise = torch.stack([torch.randn(self.latent_shape, generator=rng) for rng in self._perturbation_rngs[:b]])
            latent = latent + perturbation * noise.to(latent)
        return latent


PriorFactory = Callable[[int, ImageShape, int], UntrainedPrior]
"""Builds a prior from (num_decoders, image_shape, seed); in a config, a class path and its other arguments."""

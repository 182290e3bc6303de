"""Seed streams: every use of randomness has its own generator, for any (seed, image index, restart)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import dip_lightning.seeding as seeding
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing, Inpainting
from dip_lightning.priors import DeepDecoder
from dip_lightning.seeding import PER_IMAGE, PER_RESTART, Stream, derive_seed, stream_key


def test_no_two_streams_share_a_generator_state():
    seen: dict[tuple, tuple] = {}
    for stream, seed in itertools.product(Stream, [0, 1, 2, 2**32 - 1]):
        indices = range(40) if stream in PER_IMAGE else [0]
        restarts = range(12) if stream in PER_RESTART else [0]
        for index, restart in itertools.product(indices, restarts):
            state = tuple(np.random.SeedSequence(stream_key(stream, seed, index, restart)).generate_state(4))
            assert state not in seen, f"{(stream.name, seed, index, restart)} collides with {seen[state]}"
            seen[state] = (stream.name, seed, index, restart)


def test_keys_that_numpy_would_merge_are_refused():
    # SeedSequence splits integers >= 2^32 into words: [2**32, 2, 3] is [0, 1, 2, 3]
    with pytest.raises(DipLightningError, match="2\\^32"):
        derive_seed(Stream.NETWORK, 2**32)
    with pytest.raises(DipLightningError):
        derive_seed(Stream.MEASUREMENT_NOISE, 0, index=-1)
    with pytest.raises(ValueError, match="shared by all images"):
        derive_seed(Stream.INPAINTING_MASK, 0, index=3)


def test_streams_of_the_first_releases_keep_their_seeds():
    """Noiseless CS / phase retrieval results stay as published: matrix and network keys are unchanged."""
    legacy = lambda *key: int((s := np.random.SeedSequence(list(key)).generate_state(2, dtype=np.uint32))[0]) << 31 ^ int(s[1])  # noqa: E731
    assert derive_seed(Stream.MEASUREMENT_MATRIX, 7) == legacy(7, 0, 1)
    assert derive_seed(Stream.NETWORK, 7, index=12, restart=3) == legacy(7, 12, 5)


def test_components_draw_from_disjoint_generators(monkeypatch):
    """Record the seed of every generator that the operators and priors create, by purpose; with the
    default seeds (all 0) the inpainting mask, the networks, their input noise and the measurement
    noise must never share one (before the named streams, the mask was image 0's network stream and
    the noise of image i was the input perturbation of image i's restart 3)."""
    drawn: list[int] = []
    original = seeding.derive_seed
    monkeypatch.setattr(seeding, "derive_seed", lambda *args, **kwargs: drawn.append(original(*args, **kwargs)) or drawn[-1])

    def seeds_of(action) -> set[int]:
        drawn.clear()
        action()
        return set(drawn)

    mask = seeds_of(lambda: Inpainting((1, 8, 8), seed=0))
    matrix = seeds_of(lambda: CompressiveSensing((1, 8, 8), ratio=0.5, seed=0))
    indices = torch.arange(6)
    noisy = CompressiveSensing((1, 8, 8), ratio=0.5, noise_sigma=0.1, seed=0)
    noise = seeds_of(lambda: noisy.measure(torch.rand(6, 1, 8, 8), indices))
    prior = DeepDecoder(4 * 6, (1, 8, 8), seed=0, channels=[4, 3])
    networks_and_perturbations = seeds_of(lambda: prior.reset(indices.repeat(4), torch.arange(4).repeat_interleave(6)))
    perturbations = {rng.initial_seed() for rng in prior._perturbation_rngs}
    networks = networks_and_perturbations - perturbations

    assert len(networks) == len(perturbations) == 24
    groups = {"mask": mask, "matrix": matrix, "noise": noise, "networks": networks, "perturbations": perturbations}
    assert len(noise) == 6
    for (name_a, a), (name_b, b) in itertools.combinations(groups.items(), 2):
        assert not a & b, f"the {name_a} and the {name_b} share a generator"

"""Failing restarts are replaced by fresh networks in the same pass, and failures are flagged."""

import torch

from dip_lightning.algorithms import NetGD
from dip_lightning.operators import PhaseRetrieval
from dip_lightning.priors import DeepDecoder


def module(retry_residual: float, **kwargs) -> NetGD:
    return NetGD(PhaseRetrieval((1, 8, 8), ratio=1.0), chunk_size=2, iterations=20, restarts=3, combine="best",
                 prior=lambda b, shape, seed: DeepDecoder(b, shape, seed, channels=[6, 4]), retry_residual=retry_residual,
                 retry_every=4, retry_until=0.5, optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), **kwargs)


def start(model: NetGD):
    images = torch.rand(2, 1, 8, 8)
    with torch.enable_grad():
        chunk = model.begin_chunk({"index": torch.tensor([7, 3]), "image": images})
        for _ in range(4):
            model.outer_step(chunk)
            chunk.iteration += 1
    return chunk


def test_failing_images_get_fresh_restarts_except_their_best():
    model = module(retry_residual=1e-9)  # every network fails this bar
    chunk = start(model)
    outputs = model.prior(chunk.decoders).detach()
    residual = model.operator.relative_residual(outputs, chunk.decoder_measurements).view(3, 2)
    best = residual.argmin(0)
    momentum = model.optimizer().state[model.prior.weights[0]]["momentum_buffer"].clone()
    model.after_step(chunk)
    restarts = chunk.state["restart"].view(3, 2)
    for image in range(2):
        for r in range(3):
            slot = r * 2 + image
            if r == best[image]:  # kept as it was
                assert restarts[r, image] == r
                torch.testing.assert_close(model.prior(chunk.decoders)[slot], outputs[slot])
            else:  # a fresh network, seeded by (image, new restart number) alone, with no momentum
                assert restarts[r, image] == r + 3
                fresh = DeepDecoder(1, (1, 8, 8), 0, channels=[6, 4])
                fresh.reset(chunk.index[image : image + 1], torch.tensor([r + 3]))
                torch.testing.assert_close(model.prior(chunk.decoders)[slot], fresh()[0])
                torch.testing.assert_close(chunk.estimate[slot], fresh()[0])
                assert model.optimizer().state[model.prior.weights[0]]["momentum_buffer"][slot].abs().max() == 0
            if r == best[image]:
                assert torch.equal(model.optimizer().state[model.prior.weights[0]]["momentum_buffer"][slot],
                                   momentum[slot])
    assert chunk.state["retried"] == 4


def test_nothing_is_retried_when_every_image_passes_or_the_window_is_over():
    model = module(retry_residual=10.0)
    chunk = start(model)
    model.after_step(chunk)
    assert "retried" not in chunk.state and chunk.state["restart"].tolist() == [0, 0, 1, 1, 2, 2]
    late = module(retry_residual=1e-9)
    chunk = start(late)
    chunk.iteration = 12  # past retry_until * iterations = 10
    late.after_step(chunk)
    assert "retried" not in chunk.state


def test_images_above_the_suspect_residual_are_flagged():
    model = module(retry_residual=None, suspect_residual=0.2)
    finite = torch.tensor([True, True, False])
    assert model.status(finite, torch.tensor([0.1, 0.3, 0.1])) == ["ok", "suspect", "diverged"]

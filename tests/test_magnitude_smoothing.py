"""Net-GD's smoothed start for phase retrieval: the loss it fits, its schedule, and the settings it refuses."""

import numpy as np
import pytest
import torch

from dip_lightning.algorithms import MagnitudeSmoothing, NetGD, Restarts, Retry
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CodedDiffraction, CompressiveSensing, PhaseRetrieval
from dip_lightning.priors import DeepDecoder


def smoothed_loss_reference(matrix: np.ndarray, x: np.ndarray, y: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """mean_j (sqrt((A x)_j^2 + eps^2) - y_j)^2 per image, in float64 NumPy."""
    ax = x.reshape(len(x), -1) @ matrix.T
    return ((np.sqrt(ax**2 + eps[:, None] ** 2) - y) ** 2).mean(axis=1)


def test_smoothed_loss_is_the_formula_and_tends_to_the_magnitude_loss():
    operator = PhaseRetrieval((1, 8, 8), ratio=0.5).double()
    x, truth = torch.rand(3, 1, 8, 8, dtype=torch.float64), torch.rand(3, 1, 8, 8, dtype=torch.float64)
    y, eps = operator(truth), torch.tensor([0.05, 0.3, 1.0], dtype=torch.float64)
    expected = smoothed_loss_reference(operator.matrix.numpy(), x.numpy(), y.numpy(), eps.numpy())
    np.testing.assert_allclose(operator.smoothed_data_loss(x, y, eps).numpy(), expected, rtol=1e-12)
    # smoothing only ever raises a magnitude, and vanishes as epsilon -> 0
    tiny = torch.full((3,), 1e-7, dtype=torch.float64)
    torch.testing.assert_close(operator.smoothed_data_loss(x, y, tiny), operator.data_loss(x, y), rtol=1e-6, atol=1e-12)


def test_smoothed_loss_has_a_gradient_where_measurements_vanish():
    """At A x = 0 (the kink of |z|) the smoothed loss is differentiable: a finite gradient, also for complex A."""
    for operator in (PhaseRetrieval((1, 8, 8), ratio=0.5), CodedDiffraction((1, 8, 8), masks=2)):
        x = torch.zeros(2, 1, 8, 8, requires_grad=True)
        y = operator(torch.rand(2, 1, 8, 8))
        operator.smoothed_data_loss(x, y, torch.full((2,), 0.1)).sum().backward()
        assert torch.isfinite(x.grad).all()
        small = torch.full((2,), 1e-6)
        torch.testing.assert_close(operator.smoothed_data_loss(x.detach() + 0.5, y, small),
                                   operator.data_loss(x.detach() + 0.5, y), rtol=1e-5, atol=1e-8)


def test_an_image_whose_smoothing_has_ended_gets_exactly_the_plain_loss_and_gradient():
    """Whether a chunk mate is still smoothing (the smoothed loss, epsilon 0 here) or not (the plain loss), an image's
    loss and gradient are bitwise the same, so its result does not depend on its chunk mates' schedules."""
    operator = PhaseRetrieval((1, 8, 8), ratio=0.5)
    y = operator(torch.rand(2, 1, 8, 8))
    x = torch.rand(2, 1, 8, 8)
    mixed, plain = x.clone().requires_grad_(), x.clone().requires_grad_()
    smoothed_loss = operator.smoothed_data_loss(mixed, y, torch.tensor([0.0, 0.3]))
    plain_loss = operator.data_loss(plain, y)
    smoothed_loss.sum().backward()
    plain_loss.sum().backward()
    assert torch.equal(smoothed_loss[0], plain_loss[0]) and torch.equal(mixed.grad[0], plain.grad[0])
    assert smoothed_loss[1] != plain_loss[1]


def netgd(**kwargs) -> NetGD:
    return NetGD(PhaseRetrieval((1, 8, 8), ratio=0.5), chunk_size=2, iterations=10, prior=lambda b, shape, seed: DeepDecoder(b, shape, seed, channels=[6, 4]), optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), **kwargs, restarts=Restarts(count=2, combine="best"))


def test_netgd_fits_the_smoothed_magnitudes_then_the_magnitudes():
    model = netgd(smoothing=MagnitudeSmoothing(scale=0.6, until=0.5))
    truth = torch.rand(2, 1, 8, 8)
    chunk = model.begin_chunk({"index": torch.tensor([4, 9]), "image": truth})
    y = chunk.decoder_measurements  # (restarts * 2, m): each network sees its image's magnitudes
    rms = y.double().pow(2).mean(1).sqrt()
    matrix = model.operator.matrix.double().numpy()
    for t in range(10):
        outputs = model.prior(chunk.decoders).detach()
        eps = model.smoothing_at(chunk)
        loss = model.advance(chunk)  # the loss of the networks before this iteration's step
        if t < 5:  # epsilon = s rms(y) (1 - t / (u T)), u T = 5
            torch.testing.assert_close(eps.double(), 0.6 * rms * (1 - t / 5), rtol=1e-6, atol=0)
            expected = smoothed_loss_reference(matrix, outputs.double().numpy(), y.double().numpy(), eps.double().numpy())
        else:
            assert eps is None
            expected = model.operator.data_loss(outputs, y).double().numpy()
        np.testing.assert_allclose(loss.double().numpy(), expected, rtol=2e-5)
    assert netgd().smoothing_at(chunk) is None


def test_a_retried_network_gets_a_smoothed_start_of_its_own():
    """Networks re-seeded at iteration t_b start again at epsilon = s rms(y) and reach 0 after u (T - t_b) more."""
    model = netgd(smoothing=MagnitudeSmoothing(scale=0.5, until=0.5), retry=Retry(residual=1e-9, every=4, until=0.5))
    chunk = model.begin_chunk({"index": torch.tensor([4, 9]), "image": torch.rand(2, 1, 8, 8)})
    rms = chunk.decoder_measurements.double().pow(2).mean(1).sqrt()
    seen = {}
    while chunk.iteration < 10:
        seen[chunk.iteration] = model.smoothing_at(chunk)
        model.advance(chunk)
    retried = chunk.state.started == 4  # every image fails so low a bar: all but each image's best, at t = 4
    assert retried.sum() == 2 and (chunk.state.started[~retried] == 0).all()
    for t in (4, 5, 6):  # re-seeded networks: u (T - t_b) = 3 iterations; the others: u T = 5
        expected = torch.where(retried, 0.5 * rms * (1 - (t - 4) / 3), 0.5 * rms * max(0.0, 1 - t / 5))
        torch.testing.assert_close(seen[t].double(), expected, rtol=1e-6, atol=0)
    assert seen[7] is None


def test_settings_it_cannot_use_are_refused():
    with pytest.raises(DipLightningError, match="smoothing smooths measured magnitudes"):
        NetGD(CompressiveSensing((1, 8, 8), ratio=0.5), chunk_size=1, iterations=5, smoothing=MagnitudeSmoothing(scale=0.6))
    for bad in ({"smoothing": MagnitudeSmoothing(scale=0.0)}, {"smoothing": MagnitudeSmoothing(scale=0.6, until=0.0)},
                {"smoothing": MagnitudeSmoothing(scale=0.6, until=1.5)}):
        with pytest.raises(DipLightningError, match="smoothing.until"):
            netgd(**bad)

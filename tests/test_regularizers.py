"""DIP's regularizers: output averaging and the running-variance early stop, on synthetic output sequences
and end to end."""

import math
from functools import partial

import torch

from dip_lightning.algorithms import EarlyStopping, NetGD
from dip_lightning.algorithms.network_state import NetworkState
from dip_lightning.chunks import Chunk
from dip_lightning.data import NaturalImagesDataModule
from dip_lightning.operators import Denoising
from dip_lightning.priors import DeepDecoder
from tests.helpers import fit


def module(**kwargs) -> NetGD:
    return NetGD(Denoising((1, 8, 8)), chunk_size=2, iterations=1000, **kwargs)


def two_images() -> Chunk:
    """A chunk of two 8x8 images whose networks' outputs the tests feed in by hand."""
    chunk = Chunk(torch.arange(2), torch.zeros(2, 1, 8, 8), torch.zeros(2, 64), (1, 8, 8))
    chunk.state = NetworkState(restart=torch.zeros(2, dtype=torch.long), started=torch.zeros(2, dtype=torch.long))
    return chunk


def test_average_is_the_exponential_moving_average_of_the_outputs():
    net = module(average=0.9)
    chunk = two_images()
    outputs = torch.rand(5, 2, 1, 8, 8)
    for t in range(5):
        net.track(chunk, outputs[t])
    expected = outputs[0]
    for t in range(1, 5):
        expected = 0.9 * expected + 0.1 * outputs[t]
    torch.testing.assert_close(net.reconstruction(chunk), expected)


def test_early_stop_keeps_the_estimate_at_the_lowest_running_variance_and_stops_after_the_patience():
    """Image 0 settles (its fluctuation shrinks until t = 300, then grows, like a DIP fit that starts fitting
    the noise); image 1 keeps settling. The estimate kept for image 0 is the one near t = 300, and the chunk is
    only done once image 1 has stopped improving too."""
    net = module(early_stop=EarlyStopping(patience=60, window=20))
    chunk = two_images()
    rng = torch.Generator().manual_seed(0)
    kept_at = {}
    for t in range(1000):
        scale = torch.tensor([abs(t - 300) / 300 + 0.01, max(0.6 - t / 1000, 0.05)])
        x = scale[:, None, None, None] * torch.randn(2, 1, 8, 8, generator=rng)
        chunk.iteration = t
        net.track(chunk, x)
        for b in range(2):
            if torch.equal(chunk.state.stopping.kept[b], x[b]):
                kept_at[b] = t
        if net.converged(chunk):
            break
    assert 270 <= kept_at[0] <= 340
    assert torch.equal(net.decoder_estimates(chunk)[0], chunk.state.stopping.kept[0])
    assert chunk.state.stopping.since[0] >= 60
    assert kept_at[1] >= 640 and t >= kept_at[1] + 60  # image 1 improved until its fluctuation stopped shrinking


def test_early_stop_with_averaging_watches_the_raw_outputs_and_keeps_the_average():
    """Outputs that drift towards an image while their fluctuation shrinks until t = 300 and then grows (a DIP
    fit). The moving average hides the fluctuation, so its own variance says nothing useful (watching it, the
    rule stops at once); the rule must watch the raw outputs and keep the average of the time they were calmest."""
    net = module(average=0.99, early_stop=EarlyStopping(patience=60, window=20))
    chunk = two_images()
    rng = torch.Generator().manual_seed(1)
    image = torch.randn(2, 1, 8, 8, generator=rng)
    kept_at = {}
    for t in range(1000):
        scale = 0.1 * (abs(t - 300) / 300 + 0.01)
        x = (1 - math.exp(-t / 200)) * image + scale * torch.randn(2, 1, 8, 8, generator=rng)
        chunk.iteration = t
        net.track(chunk, x)
        for b in range(2):
            if torch.equal(chunk.state.stopping.kept[b], chunk.state.average[b]):
                kept_at[b] = t
        if net.converged(chunk):
            break
    assert 300 < t < 500  # stopped once the fluctuation had grown for the patience
    assert all(270 <= kept_at[b] <= 340 for b in range(2))
    assert torch.equal(net.reconstruction(chunk), chunk.state.stopping.kept)


def test_early_stop_ends_a_chunk_before_its_budget_and_the_next_chunk_still_runs(tmp_path):
    dm = NaturalImagesDataModule(images=["camera", "moon", "coins"], size=32, channels=1, chunk_size=2)
    net = NetGD(Denoising(dm.image_shape, noise_sigma=0.1), chunk_size=2, iterations=400, prior=partial(DeepDecoder, channels=[16, 16, 16]), early_stop=EarlyStopping(patience=20, window=10))
    steps = []
    step = net.outer_step
    net.outer_step = lambda chunk: steps.append(chunk.size) or step(chunk)
    rows = fit(net, dm, tmp_path)
    assert sorted(rows) == [0, 1, 2] and all(r["status"] == "ok" for r in rows.values())
    first, second = steps.count(2), steps.count(1)
    assert 0 < first < 400 and 0 < second < 400  # both chunks stopped early, the second one ran


def test_data_consistency_keeps_the_observed_pixels_and_is_refused_for_noisy_measurements():
    import pytest

    from dip_lightning.errors import DipLightningError
    from dip_lightning.operators import Inpainting

    x = torch.rand(2, 1, 8, 8)
    net = NetGD(Inpainting((1, 8, 8), kept=0.5), chunk_size=2, iterations=3, data_consistency=True,
                prior=partial(DeepDecoder, channels=[4, 4]))
    x_hat, mask = net.reconstruct({"index": torch.arange(2), "image": x}).reconstruction, net.operator.mask
    torch.testing.assert_close(x_hat * mask, x * mask)  # measured pixels as measured
    torch.testing.assert_close(x_hat * ~mask, net.prior(2) * ~mask)  # the network fills in the rest
    with pytest.raises(DipLightningError, match="noiseless measurements"):
        NetGD(Inpainting((1, 8, 8), noise_sigma=0.1), data_consistency=True)
    with pytest.raises(DipLightningError, match="noiseless measurements"):
        NetGD(Denoising((1, 8, 8)), data_consistency=True)

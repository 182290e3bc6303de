"""``best_radius``: the mean of the restarts that found the same image as the best one, checked against a loop over
restarts written out by hand, against ``combine: mean`` and ``combine: best`` at the radius extremes, and refused
where it means nothing."""

import pytest
import torch

from dip_lightning.algorithms import NetGD, Restarts
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import PhaseRetrieval
from dip_lightning.priors import DeepDecoder


def netgd(**restarts) -> NetGD:
    """Net-GD with 4 restarts combined as ``restarts`` (Restarts' fields) says."""
    return NetGD(PhaseRetrieval((1, 8, 8), ratio=0.5), chunk_size=3, iterations=30,
                 prior=lambda b, shape, seed: DeepDecoder(b, shape, seed, channels=[6, 4]),
                 optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), restarts=Restarts(count=4, **restarts))


def reconstruct(model: NetGD, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reconstruction and every restart's output at the end, (b, C, H, W) and (restarts, b, C, H, W)."""
    seen = {}
    result = model.reconstruct({"index": torch.arange(len(images)), "image": images},
                               on_step=lambda chunk, loss: seen.update(chunk=chunk))
    chunk = seen["chunk"]
    with torch.no_grad():
        outputs = model.prior(chunk.decoders).view(chunk.restarts, chunk.size, *images.shape[1:])
    return result.reconstruction, outputs


def test_mean_near_matches_a_loop_over_restarts_and_leaves_out_diverged_ones():
    torch.manual_seed(0)
    best = torch.rand(5, 1, 6, 6) + 0.1
    stacked = best + torch.randn(7, 5, 1, 6, 6) * torch.linspace(0.01, 0.5, 7).view(7, 1, 1, 1, 1)
    stacked[0] = best  # the best restart itself is one of them
    stacked[3, 2] = float("nan")  # a diverged restart
    model = netgd(combine="best", best_radius=0.25)
    got = model.restarts.mean_near(stacked, best)
    for image in range(5):
        members = [stacked[r, image] for r in range(7)
                   if torch.linalg.vector_norm(stacked[r, image] - best[image]) <= 0.25 * torch.linalg.vector_norm(best[image])]
        assert 1 <= len(members) < 7  # the radius keeps the best one and leaves out some: not vacuous
        torch.testing.assert_close(got[image], sum(members) / len(members), rtol=0, atol=1e-6)
    assert torch.isfinite(got).all()


def test_radius_zero_is_the_best_restart_and_a_huge_radius_the_mean_of_all():
    torch.manual_seed(1)
    images = torch.rand(3, 1, 8, 8)
    best, outputs = reconstruct(netgd(combine="best"), images)
    zero, _ = reconstruct(netgd(combine="best", best_radius=0.0), images)
    everything, _ = reconstruct(netgd(combine="best", best_radius=1e9), images)
    mean, _ = reconstruct(netgd(combine="mean"), images)
    assert torch.equal(zero, best)
    torch.testing.assert_close(everything, mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(mean, outputs.mean(0), rtol=0, atol=1e-6)
    assert (everything - best).abs().max() > 1e-3  # the restarts differ, so the two combinations do


@pytest.mark.parametrize(("combine", "radius"), [("mean", 0.3), ("median", 0.3), ("best", -0.1)])
def test_a_radius_without_combine_best_or_below_zero_is_refused(combine, radius):
    with pytest.raises(DipLightningError, match="best_radius .* needs --model.restarts.combine best"):
        netgd(combine=combine, best_radius=radius)

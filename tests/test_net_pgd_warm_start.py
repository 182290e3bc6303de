"""Net-PGD's Net-GD warm start: W iterations of Net-GD, then Net-PGD from where they left the networks."""

import pytest
import torch

from dip_lightning.algorithms import MagnitudeSmoothing, NetGD, NetPGD, Restarts, Retry
from dip_lightning.cli import instantiate
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing, PhaseRetrieval
from dip_lightning.priors import DeepDecoder

WARM, PROJECTED = 6, 5
BATCH = {"index": torch.tensor([3, 8]), "image": torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))}
SHARED = {"chunk_size": 2, "prior": lambda b, shape, seed: DeepDecoder(b, shape, seed, channels=[6, 4]), "optimizer": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), "restarts": Restarts(count=2, combine="best")}
PGD = {"inner_steps": 3, "eta": 1.5, "eta_decay_to": 0.2}


def operator() -> PhaseRetrieval:
    return PhaseRetrieval((1, 8, 8), ratio=0.5)


def run(model, iterations: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every outer iteration's per-network loss and the networks' outputs after it."""
    chunk = model.begin_chunk(BATCH)
    losses, outputs = [], []
    for _ in range(iterations):
        losses.append(model.advance(chunk))
        outputs.append(model.decoder_estimates(chunk).clone())
    return losses, outputs


def test_the_warm_start_is_net_gd_and_what_follows_is_net_pgd_from_its_networks():
    warm = NetPGD(operator(), iterations=WARM + PROJECTED, warm_start=WARM, **PGD, **SHARED, smoothing=MagnitudeSmoothing(scale=0.6, until=0.5))
    warm_losses, warm_outputs = run(warm, WARM + PROJECTED)

    # the first W iterations: Net-GD's, smoothed start included (its horizon is W, not the whole budget)
    net_gd = NetGD(operator(), iterations=WARM, **SHARED, smoothing=MagnitudeSmoothing(scale=0.6, until=0.5))
    gd_losses, gd_outputs = run(net_gd, WARM)
    for t in range(WARM):
        assert torch.equal(warm_losses[t], gd_losses[t]) and torch.equal(warm_outputs[t], gd_outputs[t])

    # the rest: a Net-PGD of the remaining iterations (its own step schedule) started from Net-GD's networks
    net_pgd = NetPGD(operator(), iterations=PROJECTED, **PGD, **SHARED)
    chunk = net_pgd.begin_chunk(BATCH)
    net_pgd.prior.load_state_dict(net_gd.prior.state_dict())
    chunk.estimate = net_pgd.prior(chunk.decoders).detach()
    for t in range(PROJECTED):
        assert warm.step_size(WARM + t) == net_pgd.step_size(t)
        loss = net_pgd.advance(chunk)
        torch.testing.assert_close(warm_losses[WARM + t], loss, rtol=0, atol=0)
        torch.testing.assert_close(warm_outputs[WARM + t], chunk.estimate, rtol=0, atol=0)
    # and Net-PGD's steps are not Net-GD's: W more Net-GD iterations end elsewhere
    _, more_gd = run(NetGD(operator(), iterations=WARM + PROJECTED, **SHARED), WARM + PROJECTED)
    assert (more_gd[-1] - warm_outputs[-1]).abs().max() > 1e-3


def test_with_the_same_retry_points_the_warm_start_is_net_gd_network_for_network_retries_included():
    """mnist_cpr_netpgd's warm start is mnist_cpr_netgd's whole search: the fractions of the budget (retry.until,
    smoothing.until) are fractions of the search, Net-PGD's warm start, so with the same settings the retry points
    coincide (every 2 iterations up to 0.8 W = 4.8, here for every image, as none passes so strict a bar), and the
    first W iterations re-seed the same networks at the same points; a rescue round draws the same restart numbers."""
    search = {**SHARED, "smoothing": MagnitudeSmoothing(scale=0.6, until=0.8),
              "retry": Retry(residual=1e-6, every=2, until=0.8),
              "restarts": Restarts(count=2, combine="best", lr_factors=[0.5, 1])}
    net_gd = NetGD(operator(), iterations=WARM, **search)
    warm = NetPGD(operator(), iterations=WARM + PROJECTED, warm_start=WARM, **PGD, **search)
    assert warm.search_iterations() == net_gd.search_iterations() == WARM
    assert warm.restart_numbers().checkpoints == net_gd.restart_numbers().checkpoints == [2, 4]
    assert warm.restart_numbers().per_round == net_gd.restart_numbers().per_round == 2 * 3
    chunks = {name: model.begin_chunk(BATCH) for name, model in [("gd", net_gd), ("warm", warm)]}
    for _ in range(WARM):
        assert torch.equal(net_gd.advance(chunks["gd"]), warm.advance(chunks["warm"]))
        assert torch.equal(net_gd.decoder_estimates(chunks["gd"]), warm.decoder_estimates(chunks["warm"]))
    restarts = chunks["warm"].state.restart
    assert torch.equal(restarts, chunks["gd"].state.restart)
    assert (restarts >= 2).any()  # the retries did re-seed networks


def test_the_warm_start_is_recorded_with_the_run_only_when_there_is_one():
    assert "warm_start" not in NetPGD(operator(), iterations=PROJECTED, **PGD, **SHARED).describe()
    warm = NetPGD(operator(), iterations=WARM + PROJECTED, warm_start=WARM, **PGD, **SHARED)
    assert warm.describe()["warm_start"] == WARM


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"warm_start": 10}, "--model.warm_start \\(10\\) counts the Net-GD iterations within --model.iterations"),
    ({"warm_start": -1}, "must lie in \\[0, 10\\)"),
    ({"smoothing": MagnitudeSmoothing(scale=0.6)}, "smooths Net-PGD's Net-GD warm start, and --model.warm_start is 0"),
])
def test_settings_it_cannot_use_are_refused_with_the_fix_named(kwargs, message):
    with pytest.raises(DipLightningError, match=message):
        NetPGD(operator(), iterations=10, **kwargs, **SHARED)
    with pytest.raises(DipLightningError, match="measures none"):
        NetPGD(CompressiveSensing((1, 8, 8), ratio=0.5), iterations=10, warm_start=5, **SHARED, smoothing=MagnitudeSmoothing(scale=0.6))


@pytest.mark.parametrize("ratio", ["0.3", "1.0"])
def test_the_net_pgd_config_is_the_net_gd_config_with_a_projection_after_its_search(ratio, data_root):
    """configs/mnist_cpr_netpgd.yaml, given after configs/mnist_cpr_netgd.yaml, changes the method and its budget
    only: its warm start is the Net-GD config's whole budget with the same search (so, by the test above, the same
    networks), and its projected steps follow."""
    overrides = ["--data.root", str(data_root), "--data.num_images", "1", "--model.operator.ratio", ratio]
    net_gd, _ = instantiate("configs/mnist_cpr_netgd.yaml", overrides)
    net_pgd, _ = instantiate(["configs/mnist_cpr_netgd.yaml", "configs/mnist_cpr_netpgd.yaml"], overrides)
    assert isinstance(net_pgd, NetPGD) and type(net_gd) is NetGD
    assert net_pgd.warm_start == net_gd.iterations == net_pgd.search_iterations() < net_pgd.iterations
    assert net_pgd.restart_numbers().checkpoints == net_gd.restart_numbers().checkpoints == [1000, 2000, 3000, 4000]
    for setting in ["restarts", "retry", "smoothing", "suspect_residual", "rescue_rounds", "compile"]:
        assert getattr(net_pgd, setting) == getattr(net_gd, setting), setting
    assert net_pgd.hparams["seed"] == net_gd.hparams["seed"]

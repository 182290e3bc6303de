"""Net-GD's total-variation image step (NetGDTV) and its solver, against independent references."""

import numpy as np
import pytest
import torch

from dip_lightning.algorithms import NetGD, NetGDTV, Restarts, TVMinimization
from dip_lightning.algorithms.total_variation import AnchoredTV
from dip_lightning.cli import instantiate
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing, PhaseRetrieval, StructuredCompressiveSensing
from dip_lightning.regularizers.total_variation import total_variation

DIGITS = {"index": torch.tensor([3, 8]), "image": torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))}


def objective(operator, x, y, weight, coupling, anchor) -> torch.Tensor:
    return (0.5 * (operator.A(x) - y).pow(2).sum(1) + weight * total_variation(x)
            + 0.5 * coupling * (x - anchor).pow(2).flatten(1).sum(1))


@pytest.mark.parametrize("operator_class", [CompressiveSensing, StructuredCompressiveSensing])
def test_without_coupling_it_is_tv_minimization_and_with_a_strong_one_the_anchor(operator_class):
    operator = operator_class((1, 8, 8), ratio=0.5)
    y = operator.measure(DIGITS["image"], DIGITS["index"])
    tv = TVMinimization(operator, chunk_size=2, iterations=200, weight=0.01).reconstruct(DIGITS)
    solved = AnchoredTV(operator).solve(y, torch.zeros(2, 1, 8, 8), 0.01, 0.0, 200)
    assert torch.equal(solved, tv.reconstruction)  # the same primal-dual iterations
    anchor = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    pulled = AnchoredTV(operator).solve(y, anchor, 0.01, 1e7, 50)
    torch.testing.assert_close(pulled, anchor, rtol=0, atol=1e-4)


def test_the_solution_minimizes_the_objective_and_each_image_has_its_own_weights():
    """Converged, x beats every small perturbation that stays in [0, 1] (a direct check of optimality, in float64),
    and a batch with per-image (lambda, rho) is each image solved alone."""
    operator = CompressiveSensing((1, 8, 8), ratio=0.5).double()
    images = DIGITS["image"].double()
    y = operator.measure(images, DIGITS["index"])
    anchor = (images + 0.1 * torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)).clamp(0, 1)
    weights, couplings = torch.tensor([0.01, 0.03]), torch.tensor([0.1, 1.0])
    x = AnchoredTV(operator).solve(y, anchor, weights, couplings, 20000)
    best = objective(operator, x, y, weights, couplings, anchor)
    generator = torch.Generator().manual_seed(5)
    for _ in range(200):
        moved = (x + 1e-3 * torch.randn(x.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
        assert (objective(operator, moved, y, weights, couplings, anchor) >= best - 1e-9).all()
    for b in range(2):
        alone = AnchoredTV(operator).solve(y[b : b + 1], anchor[b : b + 1], weights[b].item(), couplings[b].item(), 20000)
        torch.testing.assert_close(alone, x[b : b + 1], rtol=0, atol=1e-10)


def netgdtv(**kwargs) -> NetGDTV:
    return NetGDTV(CompressiveSensing((1, 8, 8), ratio=0.5), chunk_size=2, iterations=30,
                   optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), restarts=Restarts(count=2),
                   tv_weight=0.003, coupling=0.01, tv_iterations=300, **kwargs)


def test_its_reconstruction_is_the_image_step_anchored_at_net_gd():
    result = netgdtv().reconstruct(DIGITS)
    plain = NetGD(CompressiveSensing((1, 8, 8), ratio=0.5), chunk_size=2, iterations=30,
                  optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), restarts=Restarts(count=2)).reconstruct(DIGITS)
    model = netgdtv()
    y = model.operator.measure(DIGITS["image"], DIGITS["index"])
    expected = AnchoredTV(model.operator).solve(y, plain.reconstruction, 0.003, 0.01, 300)
    assert torch.equal(result.reconstruction, expected)
    assert (result.reconstruction - plain.reconstruction).abs().max() > 1e-3  # it left the network's output


def test_the_config_takes_its_weights_from_the_ratio(data_root):
    """The table's value at the run's f = m / n: the entry itself at a listed ratio, the straight line between two,
    the end values beyond them."""
    ratios, weights, couplings = [0.1, 0.2, 0.25, 0.3, 0.5], [1e-3, 1e-3, 3e-4, 3e-4, 1e-4], [0.03, 0.03, 3e-3, 2e-3, 1e-5]
    overrides = ["--data.root", str(data_root), "--data.num_images", "1"]
    for ratio in ("0.05", "0.1", "0.25", "0.4", "0.9"):
        model, _ = instantiate("configs/mnist_cs_netgd.yaml", [*overrides, "--model.operator.ratio", ratio])
        assert isinstance(model, NetGDTV) and abs(model.ratio - float(ratio)) < 1e-3  # f = m / n, m = round(f n)
        assert model.tv_weight == pytest.approx(np.interp(model.ratio, ratios, weights), rel=1e-9)
        assert model.coupling == pytest.approx(np.interp(model.ratio, ratios, couplings), rel=1e-9)
        assert model.describe()["coupling"] == model.coupling


@pytest.mark.parametrize(("config", "ratio", "coupling"), [
    ("configs/celeba_cs_netgd.yaml", "0.1", 0.03), ("configs/celeba_cs_netgd.yaml", "0.3", 0.003),
    ("configs/natural_cs_dip.yaml", "0.1", 0.1), ("configs/natural_cs_dip.yaml", "0.25", 0.03)])
def test_the_face_and_photo_configs_run_the_image_step_with_their_tables(data_root, config, ratio, coupling):
    model, _ = instantiate(config, ["--data.root", str(data_root), "--data.num_images", "1",
                                    "--model.operator.ratio", ratio])
    assert isinstance(model, NetGDTV) and model.tv_weight == 0.001
    assert model.coupling == pytest.approx(coupling, rel=1e-3)  # f = m / n is within 1e-4 of the table's entry


def test_settings_it_cannot_use_are_refused():
    with pytest.raises(DipLightningError, match="rescue rounds"):
        netgdtv(suspect_residual=0.1, rescue_rounds=1)
    with pytest.raises(DipLightningError, match="coupling"):
        NetGDTV(CompressiveSensing((1, 8, 8), ratio=0.5), coupling=0.0)
    with pytest.raises(DipLightningError, match="linear inverse problems"):
        NetGDTV(PhaseRetrieval((1, 8, 8), ratio=0.5))

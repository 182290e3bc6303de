"""``suspect_agreement``: an image is suspect when too few of its restarts found the image its best restart found.
The count is checked against a loop over restarts written out by hand, the flag and the rescue rounds it triggers
against reconstructions with more restarts from the start, and the option is refused where it means nothing."""

import pytest
import torch

from dip_lightning.algorithms import NetGD, Restarts
from dip_lightning.cli import run_fit
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import PhaseRetrieval
from dip_lightning.priors import DeepDecoder

IMAGES = 6


def netgd(count: int = 4, best_radius: float | None = 0.3, suspect_agreement: int | None = None, **kwargs) -> NetGD:
    restarts = Restarts(count=count, combine="best", best_radius=best_radius, suspect_agreement=suspect_agreement)
    return NetGD(PhaseRetrieval((1, 8, 8), ratio=0.5), chunk_size=IMAGES, iterations=40,
                 prior=lambda b, shape, seed: DeepDecoder(b, shape, seed, channels=[6, 4]),
                 optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), restarts=restarts, **kwargs)


def digits() -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    return {"index": torch.arange(IMAGES), "image": torch.rand(IMAGES, 1, 8, 8)}


def restart_outputs(model: NetGD, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Every restart's output at the end of the budget, (restarts, b, C, H, W)."""
    seen = {}
    model.reconstruct(batch, on_step=lambda chunk, loss: seen.update(chunk=chunk))
    with torch.no_grad():
        return model.prior(seen["chunk"].decoders).view(model.restarts.count, IMAGES, 1, 8, 8)


def agreeing_by_hand(model: NetGD, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[list[int], list[float]]:
    """Per image: the restarts within ``best_radius`` of the one with the lowest residual ||y - |A x||| / ||y||, and
    the distance from that best one to its nearest other restart."""
    y = model.operator.measure(batch["image"], batch["index"])
    counts, nearest = [], []
    for image in range(IMAGES):
        residuals = [float(model.operator.relative_residual(outputs[r, image : image + 1], y[image : image + 1]))
                     for r in range(model.restarts.count)]
        best = outputs[min(range(model.restarts.count), key=residuals.__getitem__), image]
        distances = [float(torch.linalg.vector_norm(outputs[r, image] - best) / torch.linalg.vector_norm(best))
                     for r in range(model.restarts.count)]
        counts.append(sum(d <= model.restarts.best_radius for d in distances))
        nearest.append(sorted(distances)[1])
    return counts, nearest


def radius_between(batch) -> float:
    """A radius inside which some images' best restarts have another restart and others have none."""
    _, nearest = agreeing_by_hand(netgd(), restart_outputs(netgd(), batch), batch)
    ordered = sorted(nearest)
    return (ordered[IMAGES // 2 - 1] + ordered[IMAGES // 2]) / 2


def test_agreeing_counts_the_restarts_near_the_best_and_flags_images_with_too_few():
    batch = digits()
    radius = radius_between(batch)
    model = netgd(suspect_residual=10.0, best_radius=radius, suspect_agreement=2)  # no image fails by its residual
    result = model.reconstruct(batch)
    counts, _ = agreeing_by_hand(model, restart_outputs(netgd(best_radius=radius), batch), batch)
    assert result.agreeing == counts
    assert 1 in counts and max(counts) >= 2  # both kinds of image: not vacuous
    assert result.status == ["suspect" if count < 2 else "ok" for count in counts]
    plain = netgd(best_radius=radius).reconstruct(batch)  # without the option: the same counts, nothing flagged
    assert plain.agreeing == counts and plain.status == ["ok"] * IMAGES
    assert torch.equal(plain.reconstruction, result.reconstruction)


def test_an_image_whose_restarts_disagree_is_rescued_with_fresh_networks():
    """The images with a lone best restart get one rescue round: the reconstruction (and count) of 8 restarts from
    the start; the others are done, bitwise as without the option."""
    batch = digits()
    radius = radius_between(batch)
    once = netgd(best_radius=radius).reconstruct(batch)
    rescued = netgd(suspect_residual=10.0, rescue_rounds=1, best_radius=radius, suspect_agreement=2).reconstruct(batch)
    doubled = netgd(best_radius=radius, count=8).reconstruct(batch)
    alone = [count < 2 for count in once.agreeing]
    assert 0 < sum(alone) < IMAGES
    assert rescued.rounds == [int(a) for a in alone]
    for b, lone in enumerate(alone):
        if lone:
            torch.testing.assert_close(rescued.reconstruction[b], doubled.reconstruction[b], rtol=0, atol=1e-5)
            assert rescued.agreeing[b] == doubled.agreeing[b]
        else:
            assert torch.equal(rescued.reconstruction[b], once.reconstruction[b])
            assert rescued.agreeing[b] == once.agreeing[b]


@pytest.mark.parametrize("settings", [{"best_radius": None}, {"suspect_agreement": 0}])
def test_an_agreement_without_a_radius_or_below_one_is_refused(settings):
    with pytest.raises(DipLightningError, match=r"suspect_agreement .* needs a best_radius .* and a count of at least 1"):
        netgd(**{"suspect_agreement": 2, **settings})


def test_with_fewer_restarts_than_the_agreement_all_of_them_must_agree():
    """A count above the restarts asks all of them to agree: with 4 restarts, 9 flags exactly as 4 does, and a single
    restart, which always agrees with itself, is never flagged this way."""
    batch = digits()
    radius = radius_between(batch)
    four = netgd(suspect_residual=10.0, best_radius=radius, suspect_agreement=4).reconstruct(batch)
    nine = netgd(suspect_residual=10.0, best_radius=radius, suspect_agreement=9).reconstruct(batch)
    assert nine.status == four.status == ["suspect" if count < 4 else "ok" for count in four.agreeing]
    assert "suspect" in four.status
    single = netgd(suspect_residual=10.0, best_radius=radius, count=1, suspect_agreement=2).reconstruct(batch)
    assert single.agreeing == [1] * IMAGES and single.status == ["ok"] * IMAGES


def test_the_cli_writes_each_images_agreement_and_flags_by_it(tmp_path, data_root):
    overrides = ["--data.root", str(data_root), "--data.indices", "[5, 2, 9, 14]", "--data.chunk_size", "4",
                 "--model.iterations", "30", "--model.restarts.count", "4", "--model.compile", "false",
                 "--model.rescue_rounds", "0", "--model.restarts.suspect_agreement", "4", "--model.suspect_residual", "10"]
    run = run_fit("configs/mnist_cpr_netgd.yaml", tmp_path, overrides)
    agreeing = [int(row["agreeing"]) for row in run["rows"]]
    assert all(1 <= count <= 4 for count in agreeing)
    assert [row["status"] for row in run["rows"]] == ["suspect" if count < 4 else "ok" for count in agreeing]
    assert run["summary"]["restarts"]["suspect_agreement"] == 4

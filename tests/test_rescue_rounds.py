"""Rescue rounds: images still suspect when a chunk's budget is spent get fresh networks, the others are done."""

import pytest
import torch

from dip_lightning.algorithms import Lasso, MagnitudeSmoothing, NetGD, NetPGD, Restarts, Retry
from dip_lightning.cli import instantiate, run_fit
from dip_lightning.data import MNISTDataModule
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import CompressiveSensing, PhaseRetrieval

INDICES = [3, 11, 25, 40, 58, 77]
ITERATIONS = 20


def sgd(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def phase_retrieval(algorithm=NetGD, chunk_size=len(INDICES), restarts=2, lr_factors=None, **kwargs):
    operator = PhaseRetrieval((1, 28, 28), ratio=0.5)
    settings = {"optimizer": sgd, "restarts": Restarts(count=restarts, combine="best", best_radius=0.3, lr_factors=lr_factors),
                **kwargs}
    return algorithm(operator, chunk_size=chunk_size, iterations=ITERATIONS, **settings)


def batch(data_root, indices=INDICES):
    datamodule = MNISTDataModule(root=str(data_root), indices=indices, chunk_size=len(indices))
    datamodule.setup("test")
    return next(iter(datamodule.test_dataloader()))


def by_index(result) -> dict[int, torch.Tensor]:
    return dict(zip(result.index.tolist(), result.reconstruction))


def test_a_rescued_image_is_the_image_with_that_many_restarts_from_the_start(data_root):
    """Every image fails so strict a bar: two rescue rounds of 2 networks give each image the reconstruction of 6
    restarts (restart numbers 0-5, combined over all of them), and the rounds are recorded."""
    digits = batch(data_root)
    rescued = phase_retrieval(suspect_residual=1e-6, rescue_rounds=2).reconstruct(digits)
    reference = phase_retrieval(restarts=6).reconstruct(digits)
    once = phase_retrieval().reconstruct(digits)
    assert rescued.rounds == [2] * len(INDICES) and rescued.status == ["suspect"] * len(INDICES)
    torch.testing.assert_close(rescued.reconstruction, reference.reconstruction, rtol=0, atol=1e-5)
    assert (rescued.reconstruction - once.reconstruction).abs().amax() > 0.05  # the rounds changed something


def test_images_that_pass_are_done_and_the_others_rescued(data_root):
    """With the bar between the images' residuals, the images under it keep round 0's reconstruction bitwise
    and get no round; the others get one round: the reconstruction of twice the restarts."""
    digits = batch(data_root)
    once = phase_retrieval().reconstruct(digits)
    residual = once.metrics["residual"]
    bar = residual.median().item()
    rescued = phase_retrieval(suspect_residual=bar, rescue_rounds=1).reconstruct(digits)
    doubled = phase_retrieval(restarts=4).reconstruct(digits)
    failed = (residual > bar).tolist()
    assert 0 < sum(failed) < len(INDICES)
    assert rescued.rounds == [int(f) for f in failed]
    for b, fails in enumerate(failed):
        if fails:
            torch.testing.assert_close(rescued.reconstruction[b], doubled.reconstruction[b], rtol=0, atol=1e-5)
        else:
            assert torch.equal(rescued.reconstruction[b], once.reconstruction[b])


def test_no_suspect_image_changes_nothing(data_root):
    digits = batch(data_root)
    plain = phase_retrieval(suspect_residual=10.0).reconstruct(digits)
    rescuing = phase_retrieval(suspect_residual=10.0, rescue_rounds=3).reconstruct(digits)
    assert rescuing.rounds is None and torch.equal(rescuing.reconstruction, plain.reconstruction)


@pytest.mark.parametrize("algorithm", [NetGD, NetPGD])
def test_a_rescued_image_does_not_depend_on_its_chunk_mates(algorithm, data_root):
    """The bar is set so that the image with the second highest residual fails and is rescued while most of its chunk
    mates pass: its reconstruction is the same alone, among them, and among others, with retries in every round."""
    settings = {"retry": Retry(residual=1e-6, every=5, until=0.8), "lr_factors": [0.5, 1.0]}
    if algorithm is NetPGD:
        settings |= {"warm_start": 12, "inner_steps": 2, "smoothing": MagnitudeSmoothing(scale=0.6)}
    mates = [3, 11, 25, 40, 58, 77, 90, 101]
    once = phase_retrieval(algorithm, chunk_size=8, **settings).reconstruct(batch(data_root, mates))
    ranked = sorted(zip(once.metrics["residual"].tolist(), once.index.tolist()))
    (below, _), (highest, target) = ranked[-3], ranked[-2]
    bar = (below + highest) / 2
    rescue = {**settings, "suspect_residual": bar, "rescue_rounds": 2}
    alone = phase_retrieval(algorithm, chunk_size=1, **rescue).reconstruct(batch(data_root, [target]))
    among = phase_retrieval(algorithm, chunk_size=8, **rescue).reconstruct(batch(data_root, mates))
    others = phase_retrieval(algorithm, chunk_size=4, **rescue).reconstruct(
        batch(data_root, [7, target, *[i for i in (3, 101, 58) if i != target][:2]]))
    assert alone.rounds[0] >= 1 and 0 in among.rounds
    for result in (among, others):
        torch.testing.assert_close(by_index(result)[target], by_index(alone)[target], rtol=0, atol=1e-5)
        assert by_index(result).keys() == set(result.index.tolist())


def test_fit_with_rescue_rounds_is_reconstruct_and_writes_the_rounds(tmp_path, data_root):
    """Through the Trainer, a chunk's rounds go on within its step; results.csv and the summary record the rounds,
    and the reconstructions are those of reconstruct()."""
    overrides = ["--data.root", str(data_root), "--data.indices", "[5, 2, 9]", "--data.chunk_size", "2",
                 "--model.iterations", "20", "--model.restarts.count", "2",
                 "--model.retry", "null", "--model.smoothing", "null", "--model.compile", "false",
                 "--model.suspect_residual", "1e-6", "--model.rescue_rounds", "2"]
    run = run_fit("configs/mnist_cpr_netgd.yaml", tmp_path, overrides)
    assert [int(row["rounds"]) for row in run["rows"]] == [2, 2, 2]
    assert run["summary"]["num_rescued"] == 3 and run["summary"]["rescue_rounds"] == 2
    model, datamodule = instantiate("configs/mnist_cpr_netgd.yaml", overrides)
    results = [model.reconstruct(b) for b in datamodule.test_dataloader()]
    fitted = torch.load(tmp_path / "reconstructions.pt")
    reconstructed = {i: x for r in results for i, x in by_index(r).items()}
    assert torch.equal(torch.stack([reconstructed[i] for i in fitted["index"].tolist()]), fitted["reconstruction"])


def test_rescue_rounds_refused_where_they_cannot_work():
    operator = PhaseRetrieval((1, 28, 28), ratio=0.5)
    with pytest.raises(DipLightningError, match="suspect_residual"):
        NetGD(operator, rescue_rounds=1)
    with pytest.raises(DipLightningError, match="0 or more"):
        NetGD(operator, rescue_rounds=-1, suspect_residual=0.1)
    with pytest.raises(DipLightningError, match="draws nothing at random"):
        Lasso(CompressiveSensing((1, 28, 28), ratio=0.25), rescue_rounds=1, suspect_residual=0.1)

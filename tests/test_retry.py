"""Failing restarts are replaced by fresh networks in the same pass, and failures are flagged."""

import pytest
import torch

from dip_lightning.algorithms import NetGD, Restarts, Retry
from dip_lightning.algorithms.thresholds import threshold_at_ratio
from dip_lightning.errors import DipLightningError
from dip_lightning.operators import PhaseRetrieval
from dip_lightning.priors import DeepDecoder


def module(residual: float | dict[float, float] | None, until: float = 0.5, **kwargs) -> NetGD:
    """Net-GD with 3 restarts, retried every 4 iterations below ``residual`` (None: no retries) until ``until``."""
    retry = None if residual is None else Retry(residual=residual, every=4, until=until)
    return NetGD(PhaseRetrieval((1, 8, 8), ratio=1.0), chunk_size=2, iterations=20,
                 prior=lambda b, shape, seed: DeepDecoder(b, shape, seed, channels=[6, 4]),
                 optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                 restarts=Restarts(count=3, combine="best"), retry=retry, **kwargs)


def momentum(model: NetGD) -> torch.Tensor:
    return model.optimizer().state[model.prior.weights[0]]["momentum_buffer"].clone()


def around_first_retry(model: NetGD) -> tuple[dict, dict]:
    """Run a chunk through the package's loop and snapshot it just before and just after the bookkeeping
    (``after_step``) of iteration 4, the first retry point."""
    before, after = {}, {}
    bookkeeping = model.after_step

    def spy(chunk) -> None:
        if chunk.iteration == 4:
            outputs = model.prior(chunk.decoders).detach()
            before.update(outputs=outputs, momentum=momentum(model),
                          residual=model.operator.relative_residual(outputs, chunk.decoder_measurements).view(3, 2))
        bookkeeping(chunk)
        if chunk.iteration == 4:
            after.update(outputs=model.prior(chunk.decoders).detach(), momentum=momentum(model),
                         estimate=chunk.estimate.clone(), restart=chunk.state.restart.clone(),
                         retried=chunk.state.retried, index=chunk.index.clone())

    model.after_step = spy
    model.reconstruct({"index": torch.tensor([7, 3]), "image": torch.rand(2, 1, 8, 8)})
    return before, after


def test_failing_images_get_fresh_restarts_except_their_best():
    before, after = around_first_retry(module(1e-9))  # every network fails this bar
    best = before["residual"].argmin(0)
    restarts = after["restart"].view(3, 2)
    for image in range(2):
        for r in range(3):
            slot = r * 2 + image
            if r == best[image]:  # kept as it was, momentum included
                assert restarts[r, image] == r
                torch.testing.assert_close(after["outputs"][slot], before["outputs"][slot])
                assert torch.equal(after["momentum"][slot], before["momentum"][slot])
            else:  # a fresh network, seeded by (image, new restart number) alone, with no momentum
                assert restarts[r, image] == r + 3
                fresh = DeepDecoder(1, (1, 8, 8), 0, channels=[6, 4])
                fresh.reset(after["index"][image : image + 1], torch.tensor([r + 3]))
                torch.testing.assert_close(after["outputs"][slot], fresh()[0])
                torch.testing.assert_close(after["estimate"][slot], fresh()[0])
                assert after["momentum"][slot].abs().max() == 0
    assert after["retried"] == 4


def test_nothing_is_retried_when_every_image_passes_or_the_window_is_over():
    _, after = around_first_retry(module(10.0))
    assert after["retried"] == 0 and after["restart"].tolist() == [0, 0, 1, 1, 2, 2]
    late = module(1e-9, until=0.15)  # the window ends at iteration 3
    _, after = around_first_retry(late)
    assert after["retried"] == 0 and after["restart"].tolist() == [0, 0, 1, 1, 2, 2]


def test_images_above_the_suspect_residual_are_flagged():
    model = module(None, suspect_residual=0.2)
    finite = torch.tensor([True, True, False])
    assert model.status(finite, model.suspect(torch.tensor([0.1, 0.3, 0.1]))) == ["ok", "suspect", "diverged"]


def test_a_table_of_suspect_thresholds_is_interpolated_in_the_sampling_ratio():
    """The threshold at f = m / n of a table {f: threshold} is the straight line between its two neighbouring
    ratios (constant beyond the table's ends), whatever order the table is written in; the module uses its
    operator's f."""
    table = {1.0: 0.2, 0.3: 0.13, 0.5: 0.15}
    expected = {0.05: 0.13, 0.3: 0.13, 0.31: 0.131, 0.4: 0.14, 0.5: 0.15, 0.77: 0.177, 1.0: 0.2, 3.0: 0.2}
    for f, threshold in expected.items():
        assert threshold_at_ratio(table, f, "suspect_residual") == pytest.approx(threshold, rel=1e-12)
    model = NetGD(PhaseRetrieval((1, 8, 8), ratio=0.75), suspect_residual=table)  # m = 48 of n = 64
    assert model.suspect_residual == pytest.approx(0.15 + (0.75 - 0.5) * (0.2 - 0.15) / 0.5)
    assert model.status(torch.tensor([True, True]), model.suspect(torch.tensor([0.17, 0.18]))) == ["ok", "suspect"]


def test_a_threshold_table_with_a_non_positive_entry_is_refused_naming_the_option():
    for table in [{0.3: 0.0}, {-0.1: 0.1}, {}]:
        with pytest.raises(DipLightningError, match=r"suspect_residual .* ratios f = m / n to thresholds \(or weights\), both positive"):
            NetGD(PhaseRetrieval((1, 8, 8), ratio=0.5), suspect_residual=table)
        with pytest.raises(DipLightningError, match=r"retry.residual .* ratios f = m / n to thresholds \(or weights\), both positive"):
            NetGD(PhaseRetrieval((1, 8, 8), ratio=0.5), retry=Retry(residual=table))


def test_a_table_of_retry_thresholds_retries_by_the_threshold_at_the_operators_ratio():
    """retry.residual {f: threshold} is read at the operator's f, like suspect_residual, and retries are decided by
    that number: a table whose value at f is 1e-9 retries exactly as residual 1e-9, one whose value is 10 never
    does (the table's other entries would say the opposite)."""
    strict_here = module({0.5: 10.0, 1.0: 1e-9, 2.0: 10.0})  # module(): f = 1
    assert strict_here.restart_numbers().threshold == 1e-9
    torch.manual_seed(0)  # the same images for both runs
    _, after_table = around_first_retry(strict_here)
    torch.manual_seed(0)
    _, after_number = around_first_retry(module(1e-9))
    assert torch.equal(after_table["restart"], after_number["restart"])
    assert after_table["retried"] == 4
    lenient_here = module({0.5: 1e-9, 1.0: 10.0, 2.0: 1e-9})
    _, after = around_first_retry(lenient_here)
    assert after["retried"] == 0 and after["restart"].tolist() == [0, 0, 1, 1, 2, 2]

"""What every measurement operator promises, checked on one list of all of them (deepinv's contract tests).

A new operator joins ``OPERATORS`` and inherits these checks: A and A_adjoint are adjoint, every image
is measured on its own (alone or in a batch, bitwise), seeded operators rebuild the same, simulated
measurements are reproducible per dataset index, and given measurements round-trip through ``observe``.
"""

import math

import pytest
import torch

from dip_lightning.operators import (
    CodedDiffraction,
    CompressiveSensing,
    Denoising,
    Inpainting,
    PhaseRetrieval,
    StructuredCompressiveSensing,
    SuperResolution,
)

SHAPE = (3, 16, 24)
OPERATORS = {
    "cs-dense": lambda: CompressiveSensing(SHAPE, ratio=0.3, seed=1, noise_sigma=0.01),
    "cs-structured": lambda: StructuredCompressiveSensing(SHAPE, ratio=0.3, seed=1, noise_sigma=0.01),
    "cs-structured-2-rounds": lambda: StructuredCompressiveSensing(SHAPE, ratio=0.1, seed=2, rounds=2),
    "phase-retrieval": lambda: PhaseRetrieval(SHAPE, ratio=2.0, seed=3),
    "coded-diffraction": lambda: CodedDiffraction(SHAPE, masks=2, seed=3, noise_sigma=0.01),
    "coded-diffraction-compressive": lambda: CodedDiffraction(SHAPE, masks=1, kept=0.5, seed=3),
    "denoising": lambda: Denoising(SHAPE, noise_sigma=0.1),
    "inpainting": lambda: Inpainting(SHAPE, kept=0.3, seed=4),
    "superres-bicubic": lambda: SuperResolution(SHAPE, factor=4, kernel="bicubic"),
    "superres-box": lambda: SuperResolution(SHAPE, factor=2, kernel="box"),
}
pytestmark = pytest.mark.parametrize("make", OPERATORS.values(), ids=OPERATORS.keys())


def test_adjoint_matches_inner_products(make):
    op = make()
    x = torch.randn(4, *SHAPE, dtype=torch.float64)
    y = torch.randn(4, op.range_size, dtype=torch.float64)
    assert op.A(x).shape == (4, op.range_size) and op.A_adjoint(y).shape == (4, *SHAPE)
    assert op(x).shape == (4, op.m)
    torch.testing.assert_close((op.A(x) * y).sum(1), (x * op.A_adjoint(y)).flatten(1).sum(1), rtol=1e-10, atol=1e-10)


def test_each_image_is_measured_on_its_own_bitwise(make):
    op = make()
    x = torch.rand(5, *SHAPE)
    y = torch.rand(5, op.range_size)
    assert torch.equal(op(x)[2:3], op(x[2:3]))
    assert torch.equal(op.A_adjoint(y)[2:3], op.A_adjoint(y[2:3]))


def test_rebuilt_from_its_seed_and_measures_reproducibly_per_index(make):
    x = torch.rand(3, *SHAPE)
    first = make().measure(x, torch.tensor([7, 8, 9]))
    again = make().measure(x[[1]], torch.tensor([8]))
    assert first.shape == (3, make().m) and torch.isfinite(first).all()
    assert torch.equal(first[1:2], again)


def test_given_measurements_round_trip_through_observe(make):
    op = make()
    y = op(torch.rand(2, *SHAPE))
    assert torch.equal(op.observe(y), y)
    if op.measurement_shape != (op.m,):  # measurements that are images: a noisy photo, a low-resolution one ...
        if math.prod(op.measurement_shape) == op.m:
            image = y.reshape(2, *op.measurement_shape)
        else:  # ... or a masked photo, which holds y at its kept pixels
            image = op.A_adjoint(y)
        assert torch.equal(op.observe(image), y)

"""Matrix products whose result for one image (or network) is the same bits whatever else is in its batch.

A chunk is many independent images; an image's reconstruction must not depend on its chunk mates, the chunk
size or the number of processes. BLAS does not promise that: it picks kernels, blockings and thread splits by
the operands' shapes, alignment and the number of threads, and those round differently. The products here
give every image a product of the same shape, whatever the batch, so that BLAS has nothing to choose by.
They rely on MKL's strict reproducible mode (``MKL_CBWR``, set by :mod:`dip_lightning`), which removes the
dependence on alignment and thread count for a given shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

ROW_BLOCK = 32  # rows per product in rowwise_matmul


def network_bmm(a: Tensor, b: Tensor) -> Tensor:
    """``torch.bmm`` (B, n, k) x (B, k, p) -> (B, n, p) whose result for one network, and its gradients, do
    not depend on B.

    A batch of one takes another path through ATen and MKL than a larger batch (apparently one GEMM
    on all threads instead of one per element), which MKL may round differently: on an AMD EPYC a
    (10, 196) x (196, 15) product differed in the last bit (2026-11-27), even in MKL's strict
    reproducible mode. A batch of one is therefore run as a batch of two; the padding's zero gradient
    adds nothing.
    """
    if a.shape[0] == 1:
        return torch.bmm(a.expand(2, -1, -1), b.expand(2, -1, -1))[:1]
    return torch.bmm(a, b)


def rowwise_matmul(x: Tensor, matrix: Tensor) -> Tensor:
    """``x @ matrix``, (B, k) x (k, p) -> (B, p), with row b of the result (and of x's gradient) depending only
    on row b of ``x``.

    One ``mm`` of all B rows is rounded by B: of 160 ranges of 1 to 64 rows of a 128-row float32 product, 60
    came out otherwise when multiplied alone (MKL, AMD EPYC, 2026-11-27). Here the rows are split into blocks of
    :data:`ROW_BLOCK` (the last one zero-padded) and multiplied as a batch of equal (32, k) x (k, p)
    products, each rounded like any other whatever its place and its neighbours (checked for blocks of 8, 16
    and 32 rows; for 32 also with 1 and 2 threads). For 128 to 512 rows of 784 this took 5-50% longer than the single ``mm``
    and about half as long as the float64 product rounded to float32, the other way to be independent of
    the batch (and the CPU's reproducible mode before 2026-11-27). Smaller blocks were slower (8 or 16 rows:
    up to 2.5x the ``mm``); a batch of a few rows pays for the padding to 32.
    """
    batch = x.shape[0]
    blocks = -(-batch // ROW_BLOCK)
    missing = blocks * ROW_BLOCK - batch
    padded = (F.pad(x, (0, 0, 0, missing)) if missing else x).reshape(blocks, ROW_BLOCK, x.shape[1])
    # unlike network_bmm's small products, a single 32-row block is rounded as in a larger batch (the tests check it),
    # so it is not run twice
    product = torch.bmm(padded, matrix.expand(blocks, *matrix.shape))
    return product.reshape(blocks * ROW_BLOCK, -1)[:batch]

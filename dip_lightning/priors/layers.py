"""Layers of many independent networks evaluated in one pass: every tensor has a leading network dimension.

Each function takes parameters of shape (B, ...) and activations of shape (B, ...) and never mixes
network b with network b' (no reduction over the leading dimension), so a network's output and
gradients depend only on its own parameters and input.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dip_lightning.batch_invariant import network_bmm

NORM_EPS = 1e-5  # as nn.BatchNorm2d, which the reference codes apply to a batch of one image


def conv1x1(weight: Tensor, h: Tensor) -> Tensor:
    """Per-network 1x1 convolution without bias: (B, k_out, k_in) x (B, k_in, H, W) -> (B, k_out, H, W)."""
    batch, channels, height, width = h.shape
    return network_bmm(weight, h.reshape(batch, channels, height * width)).view(batch, -1, height, width)


def channel_norm(h: Tensor, gain: Tensor, bias: Tensor) -> Tensor:
    """Normalize each channel of each network's activation over its own pixels, then scale and shift.

    ``out[b, c] = (h[b, c] - mean) / sqrt(var + eps) * gain[b, c] + bias[b, c]``, with the biased
    variance over the (H, W) pixels of ``h[b, c]``: ``nn.BatchNorm2d`` in training mode applied to a
    batch of one image, per network. ``gain`` and ``bias`` are (B, C).

    Eagerly this is one ``F.group_norm`` over the (1, B * C, H, W) view with a group per channel of
    each network: PyTorch's fused kernel, forward and backward, which reduces each group on its own,
    in the same order whatever the number of groups (``var_mean`` alone took 2 ms of an 11 ms MNIST
    step). Under ``torch.compile`` it is that composition, which Inductor fuses into the
    neighbouring kernels, with the inverse square root in float64 (see :func:`exact_sigmoid`).
    """
    if torch.compiler.is_compiling():
        var, mean = torch.var_mean(h, dim=(2, 3), keepdim=True, correction=0)
        inv_std = torch.rsqrt(var.double() + NORM_EPS).to(h.dtype)
        return (h - mean) * inv_std * gain[:, :, None, None] + bias[:, :, None, None]
    batch, channels = h.shape[:2]
    out = F.group_norm(h.reshape(1, batch * channels, *h.shape[2:]), batch * channels, gain.reshape(-1),
                       bias.reshape(-1), NORM_EPS)
    return out.view_as(h)


def exact_sigmoid(h: Tensor) -> Tensor:
    """Sigmoid evaluated in float64 and rounded back.

    PyTorch's float32 sigmoid takes different vectorized paths for tensors of different sizes,
    so one image alone and the same image in a chunk would differ in the last bit, and the
    difference grows over thousands of iterations. Rounded from float64, they agree.
    """
    return torch.sigmoid(h.double()).to(h.dtype)


def upsample2x(h: Tensor) -> Tensor:
    """Bilinear x2 upsampling (``align_corners=False``) of (B, C, H, W) -> (B, C, 2H, 2W), written as what
    it is per axis: ``out[2i] = h[i-1] / 4 + 3 h[i] / 4`` and ``out[2i+1] = 3 h[i] / 4 + h[i+1] / 4``
    (indices clamped at the edges).

    This is the form :func:`upsample` takes under ``torch.compile``: Inductor lowers ``F.interpolate``'s
    backward to scatter-adds that made a compiled Deep Decoder step several times slower than the eager
    one, whereas the backward of these slices and sums fuses.
    """
    for dim in (3, 2):
        n = h.shape[dim]
        previous = torch.cat([h.narrow(dim, 0, 1), h.narrow(dim, 0, n - 1)], dim)
        following = torch.cat([h.narrow(dim, 1, n - 1), h.narrow(dim, n - 1, 1)], dim)
        pairs = torch.stack([0.25 * previous + 0.75 * h, 0.75 * h + 0.25 * following], dim + 1)
        h = pairs.flatten(dim, dim + 1)
    return h


@functools.cache
def interpolation_matrix(size_in: int, size_out: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The (size_out, size_in) matrix of 1-D linear interpolation (``align_corners=False``) from
    ``size_in`` to ``size_out`` samples: ``F.interpolate`` applied to the identity, so exactly PyTorch's
    weights (at most two non-zeros per row; 1/4 and 3/4 for doubling)."""
    identity = torch.eye(size_in, dtype=torch.float64).reshape(size_in, 1, size_in, 1)
    columns = F.interpolate(identity, size=(size_out, 1), mode="bilinear", align_corners=False)[:, 0, :, 0]
    return columns.t().contiguous().to(dtype=dtype, device=device)


def upsample(h: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear upsampling (``align_corners=False``) of (B, C, H, W) to (B, C, *size).

    Eagerly, as the separable product ``U_H h[b, c] U_W^T`` with the interpolation matrices
    (:func:`interpolation_matrix`), two batched products (:func:`~dip_lightning.batch_invariant.network_bmm`) whose backward is two more, instead of
    ``F.interpolate``, whose CPU backward took 2.2 ms of an 11 ms MNIST step. The batch of
    each product is the networks (or their channels), so each network's product has the same shape
    whatever the chunk size. Under ``torch.compile``, :func:`upsample2x` where ``size`` doubles H
    and W.
    """
    batch, channels, height, width = h.shape
    size = tuple(size)
    if torch.compiler.is_compiling():
        if size == (2 * height, 2 * width):
            return upsample2x(h)
        return F.interpolate(h, size=size, mode="bilinear", align_corners=False)
    rows = interpolation_matrix(height, size[0], h.dtype, h.device)
    columns = interpolation_matrix(width, size[1], h.dtype, h.device)
    wide = network_bmm(h.reshape(batch, channels * height, width), columns.t().expand(batch, width, size[1]))
    tall = network_bmm(rows.expand(batch * channels, *rows.shape), wide.view(batch * channels, height, size[1]))
    return tall.view(batch, channels, *size)


def halved_sizes(height: int, width: int, times: int) -> list[tuple[int, int]]:
    """[(H, W), ceil((H, W) / 2), ...], ``times + 1`` sizes: each level's size in a network that
    halves (rounding up) ``times`` times and upsamples back to the size above it, so that it can
    produce images of any size, not only multiples of 2^times."""
    sizes = [(height, width)]
    for _ in range(times):
        sizes.append(tuple(-(-s // 2) for s in sizes[-1]))
    return sizes


class BatchedConv2d(nn.Module):
    """B independent k x k convolutions with bias and reflection padding, as one grouped convolution.

    ``weight`` is (B, c_out, c_in, k, k) and ``bias`` (B, c_out). Network b's input channels form
    group b of ``F.conv2d(..., groups=B)``, so no output channel sees another network's input.
    """

    def __init__(self, num_networks: int, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(num_networks, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(num_networks, out_channels))

    @torch.no_grad()
    def reset_slot(self, slot: int, rng: torch.Generator) -> None:
        """PyTorch's default ``nn.Conv2d`` initialization, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from ``rng``."""
        bound = 1.0 / math.sqrt(self.weight[0, 0].numel())
        self.weight[slot].copy_((2 * torch.rand(self.weight.shape[1:], generator=rng) - 1) * bound)
        self.bias[slot].copy_((2 * torch.rand(self.bias.shape[1:], generator=rng) - 1) * bound)

    def forward(self, h: Tensor) -> Tensor:
        b, c_in = h.shape[:2]
        pad = (self.kernel_size - 1) // 2
        if pad:
            h = F.pad(h, (pad, pad, pad, pad), mode="reflect")
        weight = self.weight[:b].reshape(-1, c_in, self.kernel_size, self.kernel_size)
        out = F.conv2d(h.reshape(1, b * c_in, *h.shape[2:]), weight, self.bias[:b].reshape(-1),
                       stride=self.stride, groups=b)
        return out.view(b, -1, *out.shape[2:])


class BatchedChannelNorm(nn.Module):
    """:func:`channel_norm` with a learned gain and bias per network and channel (initialized to 1 and 0)."""

    def __init__(self, num_networks: int, channels: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(num_networks, channels))
        self.bias = nn.Parameter(torch.zeros(num_networks, channels))

    @torch.no_grad()
    def reset_slot(self, slot: int, rng: torch.Generator | None = None) -> None:
        self.gain[slot].fill_(1.0)
        self.bias[slot].fill_(0.0)

    def forward(self, h: Tensor) -> Tensor:
        batch = h.shape[0]
        return channel_norm(h, self.gain[:batch], self.bias[:batch])

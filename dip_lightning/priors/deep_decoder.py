"""The Deep Decoder (Heckel & Hand, 2019) as used by Jagatap & Hegde (2019), batched.

One module holds ``num_decoders`` independent decoders, each with its own weights and its own
fixed latent code, evaluated together: the 1x1 convolutions are batched matrix products
(``bmm``), the normalization and upsampling act per image. Nothing is shared across images, so
decoder ``b`` only ever sees its own parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape
from dip_lightning.seeding import generator

NORM_EPS = 1e-5  # as nn.BatchNorm2d, which the reference code applies to a batch of one image


class DeepDecoder(nn.Module):
    """``num_decoders`` independent decoders G(w_b; z_b): R^{k1 x h0 x w0} -> [0, 1]^{C x H x W}.

    With ``channels = [k_1, ..., k_L]`` each decoder is, for l = 1 .. L-1::

        h_{l+1} = up2( cn_l( relu( W_l h_l ) ) ),   W_l in R^{k_{l+1} x k_l}  (1x1 conv, no bias)

    where ``cn_l`` normalizes each channel over the image's own pixels and applies a learned
    gain and bias, and ``up2`` is bilinear x2 upsampling; then ``x = sigmoid(W_L h_L)`` with
    ``W_L in R^{C x k_L}``. The latent ``z_b = h_1`` is uniform on [0, 0.1), fixed (not fitted),
    of spatial size (H, W) / 2^(L-1).

    Args:
        num_decoders: how many images are reconstructed at once (the chunk size).
        image_shape: (C, H, W) of the images; H and W must be multiples of 2^(L-1).
        channels: [k_1, ..., k_L], e.g. [25, 15, 10] for MNIST, [120, 25, 15, 10] for CelebA.
        seed: base seed; decoder of dataset image ``i`` is initialized from (seed, i) only.
    """

    def __init__(
        self, num_decoders: int, image_shape: ImageShape, channels: Sequence[int], seed: int = 0
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) < 1 or min(channels) < 1:
            raise DipLightningError(
                f"decoder channels {channels} must be a non-empty list of positive integers, "
                "e.g. --model.channels '[25, 15, 10]'"
            )
        out_channels, height, width = image_shape
        scale = 2 ** (len(channels) - 1)
        if height % scale or width % scale:
            raise DipLightningError(
                f"a decoder with {len(channels)} channel levels upsamples by {scale}, so it can only "
                f"produce images whose height and width are multiples of {scale}, not "
                f"{height}x{width}; change --model.channels (fewer levels) or resize the images"
            )
        self.seed = seed
        self.channels = channels
        self.image_shape = tuple(image_shape)
        self.latent_shape = (channels[0], height // scale, width // scale)
        layer_sizes = list(zip(channels[:-1], channels[1:])) + [(channels[-1], out_channels)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(num_decoders, c_out, c_in)) for c_in, c_out in layer_sizes
        )
        self.gains = nn.ParameterList(nn.Parameter(torch.ones(num_decoders, c)) for c in channels[1:])
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(num_decoders, c)) for c in channels[1:])
        self.register_buffer("latent", torch.empty(num_decoders, *self.latent_shape))
        self.reset(torch.arange(num_decoders))

    @property
    def num_decoders(self) -> int:
        return self.latent.shape[0]

    @property
    def parameters_per_image(self) -> int:
        return sum(p[0].numel() for p in self.parameters())

    @torch.no_grad()
    def reset(self, indices: Tensor, restarts: Tensor | None = None) -> None:
        """Re-initialize decoders ``0 .. len(indices)-1`` for the dataset images ``indices``.

        Decoder ``b`` gets a latent code and weights drawn from (seed, indices[b], restarts[b])
        alone (restart 0 by default), with PyTorch's default conv initialization
        U(-1/sqrt(k_in), 1/sqrt(k_in)).
        """
        restarts = torch.zeros_like(indices) if restarts is None else restarts
        for slot, (index, restart) in enumerate(zip(indices.tolist(), restarts.tolist())):
            rng = generator(self.seed, index, stream=2 + restart)
            self.latent[slot].copy_(0.1 * torch.rand(self.latent_shape, generator=rng))
            for weight in self.weights:
                c_out, c_in = weight.shape[1:]
                bound = 1.0 / math.sqrt(c_in)
                weight[slot].copy_((2 * torch.rand(c_out, c_in, generator=rng) - 1) * bound)
            for gain, bias in zip(self.gains, self.biases):
                gain[slot].fill_(1.0)
                bias[slot].fill_(0.0)

    def forward(self, num_images: int | None = None) -> Tensor:
        """Outputs of the first ``num_images`` decoders (all by default), shape (B, C, H, W)."""
        b = self.num_decoders if num_images is None else num_images
        h = self.latent[:b]
        for weight, gain, bias in zip(self.weights[:-1], self.gains, self.biases):
            h = conv1x1(weight[:b], h).relu()
            h = channel_norm(h, gain[:b], bias[:b])
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
        return exact_sigmoid(conv1x1(self.weights[-1][:b], h))


def conv1x1(weight: Tensor, h: Tensor) -> Tensor:
    """Per-image 1x1 convolution: (B, k_out, k_in) x (B, k_in, H, W) -> (B, k_out, H, W)."""
    batch, channels, height, width = h.shape
    return torch.bmm(weight, h.reshape(batch, channels, height * width)).view(batch, -1, height, width)


def channel_norm(h: Tensor, gain: Tensor, bias: Tensor) -> Tensor:
    """Normalize each channel of each image over its own pixels, then scale by gain, add bias."""
    var, mean = torch.var_mean(h, dim=(2, 3), keepdim=True, correction=0)
    inv_std = torch.rsqrt(var.double() + NORM_EPS).to(h.dtype)  # float64: see exact_sigmoid
    return (h - mean) * inv_std * gain[:, :, None, None] + bias[:, :, None, None]


def exact_sigmoid(h: Tensor) -> Tensor:
    """Sigmoid evaluated in float64 and rounded back.

    PyTorch's float32 sigmoid takes different vectorized paths for tensors of different sizes,
    so one image alone and the same image in a chunk would differ in the last bit, and the
    difference grows over thousands of iterations. Rounded from float64, they agree.
    """
    return torch.sigmoid(h.double()).to(h.dtype)

"""The Deep Decoder (Heckel & Hand, 2019) as used by Jagatap & Hegde (2019), batched.

One module holds ``num_decoders`` independent decoders, each with its own weights and its own
fixed latent code, evaluated together: the 1x1 convolutions are batched matrix products
(``bmm``), the normalization and upsampling act per image. Nothing is shared across images, so
decoder ``b`` only ever sees its own parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape
from dip_lightning.priors.layers import channel_norm, conv1x1, exact_sigmoid, halved_sizes, upsample
from dip_lightning.priors.untrained import UntrainedPrior


class DeepDecoder(UntrainedPrior):
    """``num_decoders`` independent decoders G(w_b; z_b): R^{k1 x h0 x w0} -> [0, 1]^{C x H x W}.

    With ``channels = [k_1, ..., k_L]`` each decoder is, for l = 1 .. L-1::

        h_{l+1} = up2( cn_l( relu( W_l h_l ) ) ),   W_l in R^{k_{l+1} x k_l}  (1x1 conv, no bias)

    where ``cn_l`` normalizes each channel over the image's own pixels and applies a learned
    gain and bias, and ``up2`` is bilinear x2 upsampling; then ``x = sigmoid(W_L h_L)`` with
    ``W_L in R^{C x k_L}``. The latent ``z_b = h_1`` is uniform on [0, 0.1), fixed (not fitted),
    of spatial size (H, W) / 2^(L-1). Where H or W is not a multiple of 2^(L-1), the sizes are
    rounded up level by level (:func:`~dip_lightning.priors.layers.halved_sizes`) and ``up2``
    resizes bilinearly to the next level's size, so any image size can be produced.

    Args:
        num_decoders: how many networks are held at once (chunk size times restarts).
        image_shape: (C, H, W) of the images, any size (multiples of 2^(L-1) give exact x2 upsampling).
        seed: base seed; the decoder of dataset image ``i`` is initialized from (seed, i) only.
        channels: [k_1, ..., k_L], e.g. [25, 15, 10] for MNIST, [120, 25, 15, 10] for CelebA.
    """

    def __init__(
        self, num_decoders: int, image_shape: ImageShape, seed: int = 0, channels: Sequence[int] = (25, 15, 10)
    ) -> None:
        super().__init__(num_decoders, image_shape, seed)
        channels = [int(c) for c in channels]
        if len(channels) < 1 or min(channels) < 1:
            raise DipLightningError(
                f"decoder channels {channels} must be a non-empty list of positive integers, "
                "e.g. --model.prior.channels '[25, 15, 10]'"
            )
        out_channels, height, width = self.image_shape
        self.channels = channels
        self.sizes = halved_sizes(height, width, len(channels) - 1)[::-1]  # latent first, image last
        self.latent_shape = (channels[0], *self.sizes[0])
        layer_sizes = list(zip(channels[:-1], channels[1:])) + [(channels[-1], out_channels)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(num_decoders, c_out, c_in)) for c_in, c_out in layer_sizes
        )
        self.gains = nn.ParameterList(nn.Parameter(torch.ones(num_decoders, c)) for c in channels[1:])
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(num_decoders, c)) for c in channels[1:])
        self.register_buffer("latent", torch.empty(num_decoders, *self.latent_shape))
        self.reset(torch.arange(num_decoders))

    def describe(self) -> dict[str, Any]:
        return {"prior": "deep-decoder", "channels": self.channels}

    @torch.no_grad()
    def reset_weights(self, slot: int, rng: torch.Generator) -> None:
        """PyTorch's default conv initialization U(-1/sqrt(k_in), 1/sqrt(k_in)); gains 1, biases 0."""
        for weight in self.weights:
            c_out, c_in = weight.shape[1:]
            bound = 1.0 / math.sqrt(c_in)
            weight[slot].copy_((2 * torch.rand(c_out, c_in, generator=rng) - 1) * bound)
        for gain, bias in zip(self.gains, self.biases):
            gain[slot].fill_(1.0)
            bias[slot].fill_(0.0)

    def generate(self, latent: Tensor) -> Tensor:
        """The decoders' outputs, evaluated in the cheaper of two equal orders.

        A 1x1 convolution (a channel mix at every pixel) and the bilinear upsampling (the same
        spatial map on every channel) commute: ``W up2(h) = up2(W h)``. So each ``W_{l+1}`` is
        applied *before* the upsampling that precedes it, at a quarter of the pixels, and
        the upsampling then acts on ``k_{l+2}`` channels instead of ``k_{l+1}`` (on MNIST's
        [25, 15, 10] decoder the last upsampling carries 1 channel instead of 10)::

            g_1 = W_1 z;   g_{l+1} = W_{l+1} cn_l(relu(up2(g_l)))   (no up2 for l = 1);
            x = sigmoid(up2(g_L))

        which is the class docstring's network exactly (in float64 the two orders agree to 1e-15;
        in float32 to rounding), at about half the time of a step on the CPU.
        """
        b = latent.shape[0]
        h = conv1x1(self.weights[0][:b], latent)
        for level, (weight, gain, bias) in enumerate(zip(self.weights[1:], self.gains, self.biases)):
            h = (upsample(h, self.sizes[level]) if level else h).relu()
            h = conv1x1(weight[:b], channel_norm(h, gain[:b], bias[:b]))
        return exact_sigmoid(upsample(h, self.sizes[-1]) if len(self.channels) > 1 else h)

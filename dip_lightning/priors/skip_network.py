"""The Deep Image Prior's encoder-decoder with skip connections (Ulyanov et al., 2018), batched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape
from dip_lightning.priors.layers import BatchedChannelNorm, BatchedConv2d, exact_sigmoid, halved_sizes, upsample
from dip_lightning.priors.untrained import UntrainedPrior


class SkipNetwork(UntrainedPrior):
    r"""``num_decoders`` independent "skip" networks (DIP's hourglass with skip connections).

    With ``channels = [c_1, ..., c_L]`` and ``skip_channels = [s_1, ..., s_L]``, level l maps its
    input h (``c_{l-1}`` channels, ``c_0 = input_channels``) to ``c_l`` channels at the same size::

        skip_l(h) = act(cn(conv1x1(h)))                                   (s_l channels, if s_l > 0)
        down_l(h) = act(cn(conv3x3(act(cn(conv3x3_stride2(h))))))          (c_l channels, half size)
        level_l(h) = act(cn(conv1x1(act(cn(conv3x3(cn([skip_l(h), up2(level_{l+1}(down_l(h)))])))))))

    where the deepest level has no ``level_{L+1}`` (its ``down`` output is upsampled directly),
    ``cn`` normalizes every channel over the image's own pixels with a learned gain and bias
    (``BatchNorm2d`` on a batch of one image), ``act`` is LeakyReLU(0.2), ``up2`` bilinear x2
    upsampling (to the size of the level above where a side is odd: a stride-2 convolution
    halves sizes rounding up), and every convolution has a bias and reflection padding. The output is
    ``x = sigmoid(conv1x1(level_1(z)))``. The input ``z_b`` is uniform on [0, 0.1) with
    ``input_channels`` channels at full resolution, fixed. This is ``skip`` of the DIP code with
    ``need1x1_up``; its defaults for denoising are ``channels = [128] * 5``, ``skip_channels = [4] * 5``,
    ``input_channels = 32``.

    All networks run in one pass: every convolution is one grouped convolution over the networks.

    Args:
        num_decoders: networks held at once (chunk size times restarts).
        image_shape: (C, H, W), any size whose deepest level (H and W halved L times, rounded up)
            is at least 2x2; with multiples of 2^L every upsampling is an exact x2.
        seed: base seed; see :class:`~dip_lightning.priors.UntrainedPrior`.
        channels: [c_1, ..., c_L], channels of each level (down and up paths alike).
        skip_channels: [s_1, ..., s_L], channels of each skip connection (0 for none).
        input_channels: channels of the fixed random input.
    """

    def __init__(
        self,
        num_decoders: int,
        image_shape: ImageShape,
        seed: int = 0,
        channels: Sequence[int] = (128, 128, 128, 128, 128),
        skip_channels: Sequence[int] = (4, 4, 4, 4, 4),
        input_channels: int = 32,
    ) -> None:
        super().__init__(num_decoders, image_shape, seed)
        channels, skip_channels = [int(c) for c in channels], [int(s) for s in skip_channels]
        if not channels or min(channels) < 1 or len(skip_channels) != len(channels) or min(skip_channels) < 0:
            raise DipLightningError(
                f"skip network channels {channels} and skip_channels {skip_channels} must be lists of the same "
                "length, positive and non-negative integers, e.g. --model.prior.channels '[64, 64, 64, 64]' "
                "--model.prior.skip_channels '[4, 4, 4, 4]'"
            )
        if input_channels < 1:
            raise DipLightningError(f"input_channels must be positive, got {input_channels}")
        out_channels, height, width = self.image_shape
        deepest = halved_sizes(height, width, len(channels))[-1]
        if min(deepest) < 2:
            raise DipLightningError(
                f"a skip network with {len(channels)} levels halves {height}x{width} images down to "
                f"{deepest[0]}x{deepest[1]} pixels, but its deepest level needs at least 2x2 (it normalizes over "
                "them); use fewer levels in --model.prior.channels or larger images"
            )
        self.channels, self.skip_channels, self.input_channels = channels, skip_channels, input_channels
        self.latent_shape = (input_channels, height, width)
        b = num_decoders
        self.levels = nn.ModuleList()
        for level, (c, s) in enumerate(zip(channels, skip_channels)):
            c_in = input_channels if level == 0 else channels[level - 1]
            deeper = channels[level + 1] if level + 1 < len(channels) else c
            modules = {
                "down": BatchedConv2d(b, c_in, c, 3, stride=2), "down_norm": BatchedChannelNorm(b, c),
                "down2": BatchedConv2d(b, c, c, 3), "down2_norm": BatchedChannelNorm(b, c),
                "joined_norm": BatchedChannelNorm(b, s + deeper),
                "up": BatchedConv2d(b, s + deeper, c, 3), "up_norm": BatchedChannelNorm(b, c),
                "up1x1": BatchedConv2d(b, c, c, 1), "up1x1_norm": BatchedChannelNorm(b, c),
            }
            if s:
                modules |= {"skip": BatchedConv2d(b, c_in, s, 1), "skip_norm": BatchedChannelNorm(b, s)}
            self.levels.append(nn.ModuleDict(modules))
        self.output = BatchedConv2d(b, channels[0], out_channels, 1)
        self.register_buffer("latent", torch.empty(num_decoders, *self.latent_shape))
        self.reset(torch.arange(num_decoders))

    def describe(self) -> dict[str, Any]:
        return {"prior": "skip", "channels": self.channels, "skip_channels": self.skip_channels,
                "input_channels": self.input_channels}

    @torch.no_grad()
    def reset_weights(self, slot: int, rng: torch.Generator) -> None:
        for module in self.modules():
            if isinstance(module, (BatchedConv2d, BatchedChannelNorm)):
                module.reset_slot(slot, rng)

    def _level(self, number: int, h: Tensor) -> Tensor:
        act = F.leaky_relu
        level = self.levels[number]
        deeper = act(level["down_norm"](level["down"](h)), 0.2)
        deeper = act(level["down2_norm"](level["down2"](deeper)), 0.2)
        if number + 1 < len(self.levels):
            deeper = self._level(number + 1, deeper)
        deeper = upsample(deeper, h.shape[2:])
        if "skip" in level:
            deeper = torch.cat([act(level["skip_norm"](level["skip"](h)), 0.2), deeper], 1)
        h = act(level["up_norm"](level["up"](level["joined_norm"](deeper))), 0.2)
        return act(level["up1x1_norm"](level["up1x1"](h)), 0.2)

    def generate(self, latent: Tensor) -> Tensor:
        return exact_sigmoid(self.output(self._level(0, latent)))

"""Stock torch.nn rebuilds of one network of the batched priors (as the authors' and the DIP code build them):
the independent references of ``tests/test_prior_contract.py``."""

import torch
from torch import nn

from dip_lightning.priors import DeepDecoder, SkipNetwork
from dip_lightning.priors.layers import BatchedChannelNorm, BatchedConv2d, halved_sizes


def reference_decoder(decoder: DeepDecoder, slot: int) -> nn.Sequential:
    """The same decoder built from stock torch.nn layers (as in the authors' code)."""
    layers: list[nn.Module] = []
    for level, (weight, gain, bias) in enumerate(zip(decoder.weights[:-1], decoder.gains, decoder.biases)):
        conv = nn.Conv2d(weight.shape[2], weight.shape[1], 1, bias=False)
        conv.weight.data = weight[slot].detach().clone()[:, :, None, None]
        norm = nn.BatchNorm2d(weight.shape[1])  # train mode on one image = per-image channel norm
        norm.weight.data, norm.bias.data = gain[slot].detach().clone(), bias[slot].detach().clone()
        layers += [conv, nn.ReLU(), norm, nn.Upsample(size=decoder.sizes[level + 1], mode="bilinear")]
    last = decoder.weights[-1]
    conv = nn.Conv2d(last.shape[2], last.shape[1], 1, bias=False)
    conv.weight.data = last[slot].detach().clone()[:, :, None, None]
    return nn.Sequential(*layers, conv, nn.Sigmoid())


def stock_conv(conv: BatchedConv2d, slot: int) -> nn.Conv2d:
    c_out, c_in, k, _ = conv.weight.shape[1:]
    layer = nn.Conv2d(c_in, c_out, k, stride=conv.stride, padding=(k - 1) // 2, padding_mode="reflect")
    layer.weight.data, layer.bias.data = conv.weight[slot].detach().clone(), conv.bias[slot].detach().clone()
    return layer


def stock_norm(norm: BatchedChannelNorm, slot: int) -> nn.BatchNorm2d:
    layer = nn.BatchNorm2d(norm.gain.shape[1])  # train mode on one image = per-image channel norm
    layer.weight.data, layer.bias.data = norm.gain[slot].detach().clone(), norm.bias[slot].detach().clone()
    return layer


class Concat(nn.Module):
    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], 1)


def reference_skip_network(net: SkipNetwork, slot: int) -> nn.Module:
    """Network ``slot`` rebuilt the way the DIP code builds ``skip`` (nested Sequential/Concat)."""
    act = nn.LeakyReLU(0.2)
    sizes = halved_sizes(*net.image_shape[1:], len(net.levels))  # the input size of each level

    def level(number: int) -> nn.Sequential:
        m = net.levels[number]
        deeper = [stock_conv(m["down"], slot), stock_norm(m["down_norm"], slot), act,
                  stock_conv(m["down2"], slot), stock_norm(m["down2_norm"], slot), act]
        if number + 1 < len(net.levels):
            deeper.append(level(number + 1))
        deeper.append(nn.Upsample(size=sizes[number], mode="bilinear"))
        branches = [nn.Sequential(*deeper)]
        if "skip" in m:
            branches.insert(0, nn.Sequential(stock_conv(m["skip"], slot), stock_norm(m["skip_norm"], slot), act))
        return nn.Sequential(Concat(*branches), stock_norm(m["joined_norm"], slot),
                             stock_conv(m["up"], slot), stock_norm(m["up_norm"], slot), act,
                             stock_conv(m["up1x1"], slot), stock_norm(m["up1x1_norm"], slot), act)

    return nn.Sequential(level(0), stock_conv(net.output, slot), nn.Sigmoid()).train()

"""The batched DIP skip network against stock torch.nn layers, and its per-image independence."""

import pytest
import torch
from torch import nn

from dip_lightning.errors import DipLightningError
from dip_lightning.priors import SkipNetwork
from dip_lightning.priors.layers import BatchedChannelNorm, BatchedConv2d, halved_sizes


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


def reference_network(net: SkipNetwork, slot: int) -> nn.Module:
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


@pytest.mark.parametrize(("shape", "channels", "skip"), [((3, 32, 32), [8, 12, 16], [4, 4, 0]), ((1, 16, 24), [6, 6], [2, 2]),
                                                             ((1, 21, 30), [6, 6, 6], [2, 2, 2])])  # odd sides
def test_batched_skip_network_matches_stock_layers_per_image(shape, channels, skip):
    net = SkipNetwork(3, shape, 0, channels=channels, skip_channels=skip, input_channels=5)
    with torch.no_grad():  # perturb gains/biases so the affine part of the norms is exercised
        for name, p in net.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
        out = net()
    assert out.shape == (3, *shape) and net.latent.shape == (3, 5, *shape[1:])
    for slot in range(3):
        expected = reference_network(net, slot)(net.latent[slot : slot + 1])
        torch.testing.assert_close(out[slot : slot + 1], expected, rtol=1e-5, atol=1e-6)


def test_gradients_and_outputs_do_not_cross_networks():
    net = SkipNetwork(3, (1, 16, 16), 0, channels=[4, 4], skip_channels=[2, 2], input_channels=3)
    net()[1].sum().backward()
    for name, p in net.named_parameters():
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0
        if name.endswith("weight") or name.endswith("gain"):  # (a conv bias just before a norm cancels out)
            assert p.grad[1].abs().sum() > 0, name
    alone = SkipNetwork(1, (1, 16, 16), 0, channels=[4, 4], skip_channels=[2, 2], input_channels=3)
    alone.reset(torch.tensor([1]))
    torch.testing.assert_close(alone(), net()[1:2], rtol=1e-6, atol=1e-7)


def test_initialization_and_input_noise_depend_on_the_image_not_the_slot():
    net = SkipNetwork(2, (1, 16, 16), 7, channels=[4, 4], skip_channels=[1, 1], input_channels=2)
    net.reset(torch.tensor([5, 9]))
    latent = net.latent.clone()
    first = net(perturbation=0.1).detach()
    swapped = SkipNetwork(2, (1, 16, 16), 7, channels=[4, 4], skip_channels=[1, 1], input_channels=2)
    swapped.reset(torch.tensor([9, 5]))
    torch.testing.assert_close(swapped(perturbation=0.1).detach(), first.flip(0), rtol=1e-6, atol=1e-7)
    assert torch.equal(net.latent, latent)  # the perturbation never touches the stored input
    assert not torch.allclose(net(perturbation=0.1), first)  # fresh noise at every evaluation
    torch.testing.assert_close(net(), net())  # and none without it


def test_impossible_skip_network_settings_are_refused():
    with pytest.raises(DipLightningError, match="down to 1x2 pixels"):  # 6x12 -> 3x6 -> 2x3 -> 1x2
        SkipNetwork(1, (1, 6, 12), 0, channels=[4, 4, 4], skip_channels=[1, 1, 1])
    with pytest.raises(DipLightningError, match="same length"):
        SkipNetwork(1, (1, 16, 16), 0, channels=[4, 4], skip_channels=[1])

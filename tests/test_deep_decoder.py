import pytest
import torch
from torch import nn

from dip_lightning.errors import DipLightningError
from dip_lightning.priors import DeepDecoder


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


@pytest.mark.parametrize(
    ("shape", "channels"),
    [((1, 28, 28), [25, 15, 10]), ((3, 64, 64), [120, 25, 15, 10]), ((3, 37, 50), [16, 8, 8, 8])],  # odd sides too
)
def test_batched_decoder_matches_stock_layers_per_image(shape, channels):
    decoder = DeepDecoder(4, shape, 0, channels)
    with torch.no_grad():  # perturb gains/biases so the affine part is exercised
        for p in list(decoder.gains) + list(decoder.biases):
            p.add_(0.1 * torch.randn_like(p))
        out = decoder()
    assert out.shape == (4, *shape)
    scale = 2 ** (len(channels) - 1)
    assert decoder.latent.shape == (4, channels[0], -(-shape[1] // scale), -(-shape[2] // scale))
    for slot in range(4):
        expected = reference_decoder(decoder, slot).train()(decoder.latent[slot : slot + 1])
        torch.testing.assert_close(out[slot : slot + 1], expected, rtol=1e-5, atol=1e-6)


def test_initialization_depends_on_index_not_slot():
    decoder = DeepDecoder(4, (1, 28, 28), 3, [25, 15, 10])
    decoder.reset(torch.tensor([10, 11, 12, 13]))
    first = decoder().detach().clone()
    decoder.reset(torch.tensor([13, 12, 11, 10]))
    torch.testing.assert_close(decoder(), first.flip(0), rtol=0, atol=0)
    other_seed = DeepDecoder(1, (1, 28, 28), 4, [25, 15, 10])
    other_seed.reset(torch.tensor([10]))
    assert not torch.allclose(other_seed(), first[:1])


def test_latent_is_uniform_scaled_by_a_tenth():
    decoder = DeepDecoder(8, (1, 28, 28), channels=[25, 15, 10])
    assert decoder.latent.min() >= 0 and decoder.latent.max() < 0.1
    assert decoder.latent.mean().item() == pytest.approx(0.05, abs=0.005)


def test_gradients_do_not_cross_images():
    decoder = DeepDecoder(3, (1, 28, 28), channels=[25, 15, 10])
    decoder()[1].sum().backward()
    for p in decoder.parameters():
        assert p.grad[1].abs().sum() > 0
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0


def test_impossible_settings_are_rejected():
    with pytest.raises(DipLightningError, match="positive integers"):
        DeepDecoder(1, (1, 30, 30), channels=[25, 0, 10])

"""What is particular to each prior (the shared contract is ``tests/test_prior_contract.py``): the Deep
Decoder's input distribution, its eager layers against their formulas, and the settings each prior refuses."""

import pytest
import torch
import torch.nn.functional as F

from dip_lightning.errors import DipLightningError
from dip_lightning.priors import DeepDecoder, SkipNetwork
from dip_lightning.priors.layers import NORM_EPS, channel_norm, upsample


def test_decoder_latent_is_uniform_scaled_by_a_tenth():
    decoder = DeepDecoder(8, (1, 28, 28), channels=[25, 15, 10])
    assert decoder.latent.min() >= 0 and decoder.latent.max() < 0.1
    assert decoder.latent.mean().item() == pytest.approx(0.05, abs=0.005)


def test_impossible_settings_are_refused():
    with pytest.raises(DipLightningError, match="positive integers"):
        DeepDecoder(1, (1, 30, 30), channels=[25, 0, 10])
    with pytest.raises(DipLightningError, match="down to 1x2 pixels"):  # 6x12 -> 3x6 -> 2x3 -> 1x2
        SkipNetwork(1, (1, 6, 12), 0, channels=[4, 4, 4], skip_channels=[1, 1, 1])
    with pytest.raises(DipLightningError, match="same length"):
        SkipNetwork(1, (1, 16, 16), 0, channels=[4, 4], skip_channels=[1])


@pytest.mark.parametrize("size", [(14, 18), (13, 20), (7, 9)])
def test_eager_upsampling_is_interpolate_in_values_and_gradients(size):
    h = torch.randn(2, 3, 7, 9, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(2, 3, *size, dtype=torch.float64)
    ours = upsample(h, size)
    reference = F.interpolate(h, size=size, mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-14)
    torch.testing.assert_close(torch.autograd.grad(ours, h, grad_out)[0],
                               torch.autograd.grad(reference, h, grad_out)[0], rtol=0, atol=1e-13)


def test_eager_channel_norm_is_the_per_channel_formula_in_values_and_gradients():
    h = torch.randn(4, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    gain, bias = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    grad_out = torch.randn_like(h)
    mean = h.mean(dim=(2, 3), keepdim=True)
    variance = ((h - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    reference = (h - mean) / torch.sqrt(variance + NORM_EPS) * gain[..., None, None] + bias[..., None, None]
    ours = channel_norm(h, gain, bias)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(ours, h, grad_out)[0],
                               torch.autograd.grad(reference, h, grad_out)[0], rtol=0, atol=1e-11)


@pytest.mark.parametrize(("image_shape", "channels"), [((1, 28, 28), [25, 15, 10]), ((3, 30, 26), [8, 8, 8])])
def test_a_decoder_is_bitwise_the_same_alone_or_among_many_in_values_and_gradients(image_shape, channels):
    """The chunk-independence guarantee at the level of one float32 step: the fused norm and the
    upsampling products must not round differently for different numbers of networks."""
    many, alone = DeepDecoder(48, image_shape, channels=channels), DeepDecoder(1, image_shape, channels=channels)
    slot = 29
    with torch.no_grad():
        for mine, theirs in zip(alone.parameters(), many.parameters()):
            mine.copy_(theirs[slot : slot + 1])
        alone.latent.copy_(many.latent[slot : slot + 1])
    target = torch.rand(image_shape)
    results = []
    for net in (many, alone):
        out = net()
        grads = torch.autograd.grad(((out - target) ** 2).sum(), list(net.parameters()))
        results.append((out, grads))
    (out_many, grads_many), (out_alone, grads_alone) = results
    assert torch.equal(out_many[slot], out_alone[0])
    for grad_many, grad_alone in zip(grads_many, grads_alone):
        assert torch.equal(grad_many[slot], grad_alone[0])

"""What is particular to each prior (the shared contract is ``tests/test_prior_contract.py``): the Deep
Decoder's input distribution and the settings each prior refuses."""

import pytest

from dip_lightning.errors import DipLightningError
from dip_lightning.priors import DeepDecoder, SkipNetwork


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

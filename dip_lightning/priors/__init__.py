"""Untrained image priors: generators G(w; z) whose weights are fitted per image."""

from dip_lightning.priors.deep_decoder import DeepDecoder

__all__ = ["DeepDecoder"]

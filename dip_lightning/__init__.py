"""dip_lightning: inverse imaging with untrained network priors (Net-GD / Net-PGD) on Lightning."""

__version__ = "0.1.0"

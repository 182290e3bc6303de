"""dip_lightning: inverse imaging with untrained network priors (Net-GD / Net-PGD) on Lightning."""

import os

# MKL's strict conditional numerical reproducibility: its GEMMs round the same whatever the number of threads and
# the operands' alignment in memory. Without it, on an AMD EPYC, a network's products rounded differently at an odd
# place in a chunk and in a process with one thread instead of two, so that an image's reconstruction depended on its
# chunk mates and on the number of processes (2026-11-27). MKL reads it once, at its first call; a value the user set
# is kept.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"

"""Feeding images to the per-image reconstruction: selection, sharding, chunking, repetition."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape

DATA_ENV_VAR = "DIP_LIGHTNING_DATA"


def resolve_root(root: str | None) -> str:
    """``root`` if given, else ``$DIP_LIGHTNING_DATA``, else ``./data``."""
    return os.path.expanduser(root or os.environ.get(DATA_ENV_VAR) or "data")


class ImageChunks(Dataset):
    """Item k is the k-th chunk of the given images: ``{"index": (b,), "image": (b, C, H, W)}``.

    Where the dataset's items are dicts of tensors (measured data: ``measurements`` and perhaps
    a reference ``image``), each key is stacked: ``{"index": (b,), key: (b, ...)}``.

    ``indices`` are cut into ``num_chunks`` consecutive chunks of nearly equal size (some empty
    when there are fewer images than chunks).
    """

    def __init__(self, images: Dataset, indices: Sequence[int], num_chunks: int, image_shape: ImageShape) -> None:
        self.images = images
        self.image_shape = image_shape
        bounds = [round(k * len(indices) / num_chunks) for k in range(num_chunks + 1)] if num_chunks else [0]
        self.chunks = [list(indices[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, k: int) -> dict[str, Tensor]:
        indices = self.chunks[k]
        items = [self.images[i] for i in indices]
        if items and isinstance(items[0], dict):
            stacked = {key: torch.stack([item[key] for item in items]) for key in items[0]}
        else:
            stacked = {"image": torch.stack(items) if items else torch.empty(0, *self.image_shape)}
        return {"index": torch.tensor(indices, dtype=torch.long), **stacked}


def random_selection(candidates: Sequence[int], count: int, seed: int) -> list[int]:
    """``count`` of the ``candidates`` drawn without replacement by numpy's ``default_rng(seed)``, in increasing
    order: the same draw for the same seed on every machine and process."""
    if count > len(candidates):
        raise DipLightningError(
            f"--data.random {count} asks for more images than the {len(candidates)} to choose from; pass at most "
            f"{len(candidates)}")
    chosen = np.random.default_rng(seed).choice(len(candidates), count, replace=False)
    return sorted(candidates[i] for i in chosen.tolist())


class ImageDataModule(LightningDataModule):
    """Base for the datasets: which images to reconstruct and how they reach the algorithm.

    Subclasses provide ``image_shape`` and ``load_images()``: a dataset whose item ``i`` is
    image ``i`` as a float tensor (C, H, W) in [0, 1] (clean images, whose measurements are
    simulated), or a dict with its ``measurements`` and, where known, its reference ``image``
    (measured data, see :mod:`dip_lightning.data.measured`); and where the images have names
    (files), ``image_name(i)``, used for the reconstructions' file names. The selection is ``indices`` (or every
    image), then ``random`` of those drawn at random, or else the first ``num_images``. Each process takes every
    ``world_size``-th selected image; its share is cut into the fewest chunks of at most ``chunk_size`` images
    (nearly equal in size, equally many on every process), each served once and reconstructed together.

    Args:
        root: data folder; defaults to ``$DIP_LIGHTNING_DATA``, then ``./data``.
        indices: dataset indices to reconstruct (default: all).
        num_images: keep only the first N of the selection (not applied with ``random``).
        random: instead, N images of the selection drawn at random (:func:`random_selection`, with ``seed``):
            e.g. ``--data.random 16 --data.seed 7`` for 16 random test digits.
        seed: the seed of ``random``'s draw.
        chunk_size: images reconstructed at once per process.
        num_workers: DataLoader worker processes (loading is once per chunk, so 0 is fine).
    """

    name = "images"

    def __init__(
        self,
        root: str | None = None,
        indices: list[int] | None = None,
        num_images: int | None = None,
        random: int | None = None,
        seed: int = 0,
        chunk_size: int = 16,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if chunk_size < 1:
            raise DipLightningError(f"chunk_size must be a positive integer, got {chunk_size} (--data.chunk_size)")
        if num_images is not None and num_images < 1:
            raise DipLightningError(
                f"--data.num_images {num_images} selects no image; pass a positive number"
            )
        if random is not None and random < 1:
            raise DipLightningError(f"--data.random {random} selects no image; pass a positive number")
        if indices is not None:
            if len(indices) == 0:
                raise DipLightningError("indices is empty; list at least one image, e.g. '[0, 1, 2]' (--data.indices)")
            if len(set(indices)) != len(indices):
                raise DipLightningError(f"indices {indices} repeats an index; list each image once (--data.indices)")
        self.root = resolve_root(root)
        self.indices = indices
        self.num_images = num_images
        self.random = random
        self.seed = seed
        self.chunk_size = chunk_size
        self.num_workers = num_workers
        self.images: Dataset | None = None
        self.selection: list[int] = []
        self.excluded: set[int] = set()

    @property
    def image_shape(self) -> ImageShape:
        raise NotImplementedError

    def load_images(self) -> Dataset:
        raise NotImplementedError

    @property
    def dataset_name(self) -> str:
        """The data's name in summaries and messages, e.g. ``mnist-test``."""
        return self.name

    def describe(self) -> dict[str, Any]:
        """What the summary records about the data."""
        return {"dataset": self.dataset_name, **({"random": self.random, "seed": self.seed} if self.random else {})}

    def image_name(self, index: int) -> str:
        """File name stem of dataset image ``index`` (its number where images have no names)."""
        return f"{index:06d}"

    def source(self, index: int) -> str:
        """Where image ``index`` comes from, for error messages (its file where it has one)."""
        return f"image {index} of {self.dataset_name}"

    @property
    def has_references(self) -> bool:
        """Whether every image comes with a reference (clean) image for nMSE, PSNR and SSIM."""
        return True

    def setup(self, stage: str | None = None) -> None:
        if self.images is None:
            self.images = self.load_images()
            self.selection = self.select(len(self.images))
            self.check_images(self.selection)

    def available(self, dataset_size: int) -> list[int]:
        """The dataset's image indices: 0 .. size - 1 (measured vectors may carry others)."""
        return list(range(dataset_size))

    def select(self, dataset_size: int) -> list[int]:
        """The selected dataset indices, validated against the dataset size."""
        available = self.available(dataset_size)
        selection = available if self.indices is None else list(self.indices)
        bad = [i for i in selection if not 0 <= i < dataset_size] if available == list(range(dataset_size)) else \
            sorted(set(selection) - set(available))
        if bad and available != list(range(dataset_size)):
            raise DipLightningError(f"index {bad[0]} is not one of the images of {self.dataset_name} (--data.ids); "
                                    "fix --data.indices")
        if bad:
            raise DipLightningError(
                f"index {bad[0]} is out of range: {self.dataset_name} has {dataset_size} images "
                f"(valid indices 0..{dataset_size - 1}); fix --data.indices"
            )
        if self.random is not None:
            selection = random_selection(selection, self.random, self.seed)
        elif self.num_images is not None:
            if self.indices is not None and self.num_images < len(selection):
                # configs set num_images; a user listing images rarely means to drop some of them
                rank_zero_warn(f"--data.num_images {self.num_images} keeps only the first {self.num_images} of the "
                               f"{len(selection)} images in --data.indices; pass --data.num_images {len(selection)} "
                               "to reconstruct all of them")
            selection = selection[: self.num_images]
        if not selection:
            raise DipLightningError(f"no image selected from {self.dataset_name} (it is empty)")
        return selection

    def check_images(self, indices: Sequence[int]) -> None:
        """Fail early on images that are not finite or not in [0, 1]."""
        for i in indices:
            image = self.images[i]
            image = image.get("image") if isinstance(image, dict) else image
            if image is None:
                continue
            if not torch.isfinite(image).all():
                raise DipLightningError(
                    f"image {i} of {self.dataset_name} contains NaN or Inf; fix or drop it (--data.indices)"
                )
            if image.min() < 0 or image.max() > 1:
                raise DipLightningError(
                    f"image {i} of {self.dataset_name} has values in [{image.min():.3g}, {image.max():.3g}]; "
                    "pixels must lie in [0, 1]: rescale the data"
                )

    def check_measurements(self, operator) -> None:
        """Fail before any reconstruction where given measurements do not suit the operator
        (shape, NaN/Inf), naming the image. Nothing to check for simulated measurements."""
        self.setup("check")
        for i in self.selection:
            item = self.images[i]
            if isinstance(item, dict) and "measurements" in item:
                operator.observe(item["measurements"][None], source=f"the measurements in {self.source(i)}")

    def exclude(self, indices: set[int]) -> None:
        """Leave out these images (already reconstructed by an interrupted run being resumed)."""
        self.excluded = set(indices)

    def remaining(self) -> list[int]:
        return [i for i in self.selection if i not in self.excluded]

    def shard(self) -> list[int]:
        """This process's share of the remaining images: every world_size-th one from its rank."""
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return self.remaining()[rank::world]

    def num_chunks(self) -> int:
        """Chunks per process: the same on every process, because Lightning exchanges a message
        between processes at every training step, so they must all take the same number."""
        world = self.trainer.world_size if self.trainer else 1
        return math.ceil(math.ceil(len(self.remaining()) / world) / self.chunk_size)

    def _loader(self) -> DataLoader:
        """This process's chunks, each once (the method runs each for its whole budget in one step)."""
        chunks = ImageChunks(self.images, self.shard(), self.num_chunks(), self.image_shape)
        return DataLoader(chunks, batch_size=None, shuffle=False, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader | list:
        # `fit` is the reconstruction itself: no extra validation pass after it
        if self.trainer is not None and self.trainer.state.fn == "fit":
            return []
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()

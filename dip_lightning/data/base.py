"""Feeding images to the per-image reconstruction: selection, sharding, chunking, repetition."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

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
    when there are fewer images than chunks). The last chunk loaded is cached, because the
    sampler asks for each chunk once per outer iteration and loading (decoding files,
    transforms) should happen once per chunk.
    """

    def __init__(self, images: Dataset, indices: Sequence[int], num_chunks: int, image_shape: ImageShape) -> None:
        self.images = images
        self.image_shape = image_shape
        bounds = [round(k * len(indices) / num_chunks) for k in range(num_chunks + 1)] if num_chunks else [0]
        self.chunks = [list(indices[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        self._cached: tuple[int, dict[str, Tensor]] | None = None

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, k: int) -> dict[str, Tensor]:
        if self._cached is None or self._cached[0] != k:
            indices = self.chunks[k]
            items = [self.images[i] for i in indices]
            if items and isinstance(items[0], dict):
                stacked = {key: torch.stack([item[key] for item in items]) for key in items[0]}
            else:
                stacked = {"image": torch.stack(items) if items else torch.empty(0, *self.image_shape)}
            self._cached = (k, {"index": torch.tensor(indices, dtype=torch.long), **stacked})
        return self._cached[1]


class RepeatChunks(Sampler[int]):
    """Yields chunk 0 ``repeats`` times, then chunk 1 ``repeats`` times, and so on."""

    def __init__(self, num_chunks: int, repeats: int) -> None:
        self.num_chunks = num_chunks
        self.repeats = repeats

    def __iter__(self) -> Iterator[int]:
        for k in range(self.num_chunks):
            yield from [k] * self.repeats

    def __len__(self) -> int:
        return self.num_chunks * self.repeats


class ImageDataModule(LightningDataModule):
    """Base for the datasets: which images to reconstruct and how they reach the algorithm.

    Subclasses provide ``image_shape`` and ``load_images()``: a dataset whose item ``i`` is
    image ``i`` as a float tensor (C, H, W) in [0, 1] (clean images, whose measurements are
    simulated), or a dict with its ``measurements`` and, where known, its reference ``image``
    (measured data, see :mod:`dip_lightning.data.measured`); and where the images have names
    (files), ``image_name(i)``, used for the reconstructions' file names. The selection is ``indices`` (or every
    image), truncated to the first ``num_images``. Each process takes every ``world_size``-th
    selected image; its share is cut into the fewest chunks of at most ``chunk_size`` images
    (nearly equal in size, equally many on every process) reconstructed together, and during
    ``fit`` each chunk is served ceil(``iterations`` / ``iterations_per_step``) times in a row (one
    training step per ``iterations_per_step`` outer iterations).

    Args:
        root: data folder; defaults to ``$DIP_LIGHTNING_DATA``, then ``./data``.
        indices: dataset indices to reconstruct (default: all).
        num_images: keep only the first N of the selection.
        chunk_size: images reconstructed at once per process.
        iterations: the most outer iterations a chunk can take (the CLI links it to ``model.iterations`` times
            1 + ``model.rescue_rounds``); a chunk that finishes earlier skips the rest of its steps.
        iterations_per_step: outer iterations per training step (the CLI links it to ``model.iterations_per_step``).
        num_workers: DataLoader worker processes (loading is once per chunk, so 0 is fine).
    """

    name = "images"

    def __init__(
        self,
        root: str | None = None,
        indices: list[int] | None = None,
        num_images: int | None = None,
        chunk_size: int = 16,
        iterations: int = 1,
        iterations_per_step: int = 10,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if chunk_size < 1:
            raise DipLightningError(f"chunk_size must be a positive integer, got {chunk_size} (--data.chunk_size)")
        if num_images is not None and num_images < 1:
            raise DipLightningError(
                f"--data.num_images {num_images} selects no image; pass a positive number"
            )
        if indices is not None:
            if len(indices) == 0:
                raise DipLightningError("indices is empty; list at least one image, e.g. '[0, 1, 2]' (--data.indices)")
            if len(set(indices)) != len(indices):
                raise DipLightningError(f"indices {indices} repeats an index; list each image once (--data.indices)")
        self.root = resolve_root(root)
        self.indices = indices
        self.num_images = num_images
        self.chunk_size = chunk_size
        self.iterations = iterations
        self.iterations_per_step = iterations_per_step
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
        return {"dataset": self.dataset_name}

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
            operator = getattr(self.trainer.lightning_module, "operator", None) if self.trainer else None
            if operator is not None:
                self.check_measurements(operator, self.selection)

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
        if self.num_images is not None:
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

    def check_measurements(self, operator, indices: Sequence[int]) -> None:
        """Fail before any reconstruction where given measurements do not suit the operator
        (shape, NaN/Inf), naming the image. Nothing to check for simulated measurements."""
        for i in indices:
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

    def _loader(self, repeats: int) -> DataLoader:
        chunks = ImageChunks(self.images, self.shard(), self.num_chunks(), self.image_shape)
        return DataLoader(
            chunks,
            batch_size=None,
            sampler=RepeatChunks(len(chunks), repeats),
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(math.ceil(self.iterations / self.iterations_per_step))

    def val_dataloader(self) -> DataLoader | list:
        # `fit` is the reconstruction itself: no extra validation pass after it
        if self.trainer is not None and self.trainer.state.fn == "fit":
            return []
        return self._loader(1)

    def test_dataloader(self) -> DataLoader:
        return self._loader(1)

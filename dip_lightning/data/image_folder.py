"""A user's own images: every image file in a folder, in sorted file-name order."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.transforms import functional as TF

from dip_lightning.data.base import ImageDataModule
from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}


class ImageFiles(Dataset):
    """Images from a list of files, each centre-cropped to a square and resized to ``size``.

    Image files are read with PIL; ``.npy`` files hold float arrays (H, W) or (H, W, C) that are
    used as they are (so their values must already lie in [0, 1]).
    """

    def __init__(self, files: list[Path], size: int, channels: int, crop: int | None = None) -> None:
        self.files = files
        self.channels = channels
        steps = [transforms.CenterCrop(crop)] if crop else []
        steps += [transforms.Resize(size, antialias=True), transforms.CenterCrop(size)]
        self.transform = transforms.Compose(steps)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Tensor:
        path = self.files[i]
        if path.suffix.lower() == ".npy":
            array = torch.as_tensor(np.load(path), dtype=torch.float32)
            image = array[None] if array.ndim == 2 else array.permute(2, 0, 1)
            if image.shape[0] != self.channels:
                image = image.mean(0, keepdim=True).expand(self.channels, -1, -1)
        else:
            with Image.open(path) as pil:
                image = TF.to_tensor(pil.convert("L" if self.channels == 1 else "RGB"))
        return self.transform(image)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | {".npy"})


class ImageFolderDataModule(ImageDataModule):
    """Every image in the folder ``root`` (sorted by file name), as ``channels`` x size x size.

    Args:
        image_size: side of the square images after centre crop and resize; must suit the prior
            (a multiple of 2^(levels-1) for the Deep Decoder).
        channels: 1 (grayscale) or 3 (RGB).
        **kwargs: selection and chunking, see :class:`ImageDataModule`; ``root`` is the folder.
    """

    name = "image-folder"

    def __init__(self, *args, image_size: int = 64, channels: int = 3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if channels not in (1, 3):
            raise DipLightningError(f"--data.channels must be 1 (grayscale) or 3 (RGB), got {channels}")
        self.image_size = image_size
        self.channels = channels

    @property
    def image_shape(self) -> ImageShape:
        return (self.channels, self.image_size, self.image_size)

    def describe(self) -> str:
        return f"folder:{os.path.basename(os.path.normpath(self.root))}"

    def load_images(self) -> Dataset:
        folder = Path(self.root)
        files = list_images(folder) if folder.is_dir() else []
        if not files:
            raise DipLightningError(
                f"no images found in {folder.resolve()}; point --data.root at a folder of image files "
                f"({', '.join(sorted(IMAGE_SUFFIXES))} or .npy)"
            )
        return ImageFiles(files, self.image_size, self.channels)

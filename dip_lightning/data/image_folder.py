"""A user's own images: every image file in a folder, in sorted file-name order."""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms

from dip_lightning.data.base import ImageDataModule
from dip_lightning.errors import DipLightningError
from dip_lightning.files import IMAGE_SUFFIXES, read_image
from dip_lightning.operators.base import ImageShape


class ImageFiles(Dataset):
    """Images from a list of files, each centre-cropped to a square and resized to ``size``.

    Files are read by :func:`~dip_lightning.files.read_image` (8- and 16-bit images scaled to
    [0, 1]; ``.npy`` float arrays (H, W) or (H, W, C) used as they are, so their values must
    already lie in [0, 1]).
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
        return self.transform(read_image(self.files[i], self.channels))


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | {".npy"})


class ImageFolderDataModule(ImageDataModule):
    """Every image in the folder ``root`` (sorted by file name), as ``channels`` x size x size.

    Args:
        image_size: side of the square images after centre crop and resize.
        channels: 1 (grayscale) or 3 (RGB).
        **kwargs: selection and chunking, see :class:`ImageDataModule`; ``root`` is the folder.
    """

    name = "image-folder"

    def __init__(self, *args, image_size: int = 64, channels: int = 3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if channels not in (1, 3):
            raise DipLightningError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels} (--data.channels)")
        self.image_size = image_size
        self.channels = channels

    @property
    def image_shape(self) -> ImageShape:
        return (self.channels, self.image_size, self.image_size)

    @property
    def dataset_name(self) -> str:
        return f"folder:{os.path.basename(os.path.normpath(self.root))}"

    def image_name(self, index: int) -> str:
        return self.images.files[index].stem if self.images is not None else super().image_name(index)

    def load_images(self) -> Dataset:
        folder = Path(self.root)
        files = list_images(folder) if folder.is_dir() else []
        if not files:
            raise DipLightningError(
                f"no images found in {folder.resolve()}; point --data.root at a folder of image files "
                f"({', '.join(sorted(IMAGE_SUFFIXES))} or .npy)"
            )
        return ImageFiles(files, self.image_size, self.channels)

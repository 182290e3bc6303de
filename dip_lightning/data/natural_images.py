"""Natural test images that ship with scikit-image (astronaut, camera, coffee, chelsea, ...): no download."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms.functional import center_crop

from dip_lightning.data.base import ImageDataModule
from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape

# scikit-image's bundled photographs (in the wheel, loaded without network access)
BUNDLED = ("astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
           "hubble_deep_field", "immunohistochemistry", "moon", "page", "rocket", "text")


def load_bundled(name: str, channels: int) -> Tensor:
    """``skimage.data.<name>()`` as a float tensor (channels, H, W) in [0, 1].

    Colour images become grayscale by ITU-R 601 luma (``skimage.color.rgb2gray``) when
    ``channels`` is 1; grayscale images are repeated over 3 channels when ``channels`` is 3.
    """
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    image = img_as_float(getattr(skimage.data, name)())
    if image.ndim == 3 and channels == 1:
        image = rgb2gray(image[..., :3])
    if image.ndim == 2:
        image = image[..., None].repeat(channels, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(image[..., :3].transpose(2, 0, 1))).float().clamp(0, 1)


class NaturalImages(Dataset):
    """The named bundled images, each centre-cropped to ``size`` x ``size``."""

    def __init__(self, names: list[str], size: int, channels: int) -> None:
        self.names, self.size, self.channels = names, size, channels

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> Tensor:
        image = load_bundled(self.names[i], self.channels)
        if min(image.shape[1:]) < self.size:
            raise DipLightningError(
                f"image {self.names[i]!r} is {image.shape[1]}x{image.shape[2]} pixels, smaller than the "
                f"{self.size}x{self.size} crop; choose a smaller --data.size or another image"
            )
        return center_crop(image, [self.size, self.size])


class NaturalImagesDataModule(ImageDataModule):
    """scikit-image's bundled natural images, centre crops of ``size`` x ``size``, as the classical test set
    of denoising, inpainting and super-resolution (no download, the same on every machine).

    Image ``i`` is ``images[i]``; ``--data.indices`` and ``--data.num_images`` select among them.

    Args:
        images: names of ``skimage.data`` images, from: astronaut, brick, camera, cat, chelsea, clock,
            coffee, coins, grass, gravel, hubble_deep_field, immunohistochemistry, moon, page, rocket, text.
        size: side of the centre crop (the images are 300 to 1000 pixels; none is resized).
        channels: 3 (colour; grayscale images repeated) or 1 (grayscale; colour images converted).
        **kwargs: selection and chunking, see :class:`ImageDataModule` (``root`` is not used).
    """

    name = "skimage"

    def __init__(
        self, *args, images: list[str] = ["astronaut", "coffee"], size: int = 256, channels: int = 3,  # noqa: B006
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        unknown = [name for name in images if name not in BUNDLED]
        if unknown or not images:
            raise DipLightningError(
                f"--data.images {images}: {unknown or 'empty'}; choose from the bundled images {', '.join(BUNDLED)}"
            )
        if channels not in (1, 3):
            raise DipLightningError(f"channels must be 1 (grayscale) or 3 (colour), got {channels} (--data.channels)")
        if size < 1:
            raise DipLightningError(f"size must be positive, got {size} (--data.size)")
        self.image_names, self.size, self.channels = list(images), size, channels

    @property
    def image_shape(self) -> ImageShape:
        return (self.channels, self.size, self.size)

    @property
    def dataset_name(self) -> str:
        return f"skimage-{'gray' if self.channels == 1 else 'rgb'}{self.size}:{','.join(self.image_names)}"

    def image_name(self, index: int) -> str:
        return self.image_names[index]

    def load_images(self) -> Dataset:
        return NaturalImages(self.image_names, self.size, self.channels)

"""CelebA aligned faces, centre-cropped to 108 and resized to 64x64 RGB."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from torch.utils.data import Dataset

from dip_lightning.data.base import ImageDataModule
from dip_lightning.data.image_folder import ImageFiles
from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape

SPLITS = {"train": "0", "valid": "1", "test": "2"}


class CelebADataModule(ImageDataModule):
    """CelebA faces from ``ROOT/celeba/img_align_celeba/`` (torchvision's layout).

    Only the image folder is required (torchvision's ``CelebA`` class also insists on four
    annotation files). With ``ROOT/celeba/list_eval_partition.txt`` present, ``split`` keeps that
    split's faces; without it every face in the folder belongs to every split. Faces are
    ordered by file name and ``indices`` index into that order.

    Args:
        split: ``train``, ``valid``, ``test`` or ``all``.
        image_size: output side (default 64); the crop is 108x108 around the centre, as in
            Bora et al. (2017) and the paper.
        **kwargs: selection and chunking, see :class:`ImageDataModule`.
    """

    name = "celeba"
    crop = 108

    def __init__(
        self, *args, split: Literal["train", "valid", "test", "all"] = "test", image_size: int = 64, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.split = split
        self.image_size = image_size

    @property
    def image_shape(self) -> ImageShape:
        return (3, self.image_size, self.image_size)

    @property
    def dataset_name(self) -> str:
        return f"celeba-{self.split}"

    def image_name(self, index: int) -> str:
        return self.images.files[index].stem if self.images is not None else super().image_name(index)

    def load_images(self) -> Dataset:
        base = Path(self.root) / "celeba"
        folder = base / "img_align_celeba"
        files = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
        if not files:
            raise DipLightningError(
                f"CelebA not found: no .jpg faces in {folder.resolve()}. Point --data.root (or "
                "$DIP_LIGHTNING_DATA) at the folder holding celeba/img_align_celeba/ (and optionally "
                "celeba/list_eval_partition.txt)"
            )
        partition = base / "list_eval_partition.txt"
        if self.split != "all" and partition.is_file():
            wanted = SPLITS[self.split]
            keep = {name for name, part in (line.split() for line in partition.read_text().splitlines() if line.strip())
                    if part == wanted}
            files = [f for f in files if f.name in keep]
        return ImageFiles(files, self.image_size, channels=3, crop=self.crop)

"""MNIST digits (28x28 grayscale) through torchvision."""

from __future__ import annotations

import os

from torch.utils.data import Dataset
from torchvision import datasets, transforms

from dip_lightning.data.base import ImageDataModule
from dip_lightning.errors import DipLightningError
from dip_lightning.operators.base import ImageShape


class ImagesOnly(Dataset):
    """Drops the labels of a torchvision classification dataset."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return self.dataset[i][0]


class MNISTDataModule(ImageDataModule):
    """MNIST digits as (1, 28, 28) tensors in [0, 1], from ``ROOT/MNIST/raw`` (torchvision layout).

    Args:
        train: use the 60,000-digit training split instead of the 10,000-digit test split.
        download: let torchvision download MNIST into ``root`` if it is missing.
        **kwargs: selection and chunking, see :class:`ImageDataModule`.
    """

    name = "mnist"

    def __init__(self, *args, train: bool = False, download: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.train = train
        self.download = download

    @property
    def image_shape(self) -> ImageShape:
        return (1, 28, 28)

    @property
    def dataset_name(self) -> str:
        return f"mnist-{'train' if self.train else 'test'}"

    def prepare_data(self) -> None:
        if self.download:
            self._dataset(download=True)

    def load_images(self) -> Dataset:
        return ImagesOnly(self._dataset(download=False))

    def _dataset(self, download: bool) -> datasets.MNIST:
        try:
            return datasets.MNIST(self.root, train=self.train, download=download, transform=transforms.ToTensor())
        except RuntimeError as error:
            raw = os.path.join(os.path.abspath(self.root), "MNIST", "raw")
            raise DipLightningError(
                f"MNIST not found: looked for the IDX files in {raw} ({error}). Point --data.root (or "
                "$DIP_LIGHTNING_DATA) at the folder that holds MNIST/raw/, or add --data.download true "
                "to fetch it there"
            ) from error

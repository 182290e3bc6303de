"""LightningDataModules that feed images chunk by chunk to the reconstruction algorithms."""

from dip_lightning.data.base import ImageDataModule
from dip_lightning.data.celeba import CelebADataModule
from dip_lightning.data.image_folder import ImageFolderDataModule
from dip_lightning.data.mnist import MNISTDataModule

__all__ = ["CelebADataModule", "ImageDataModule", "ImageFolderDataModule", "MNISTDataModule"]

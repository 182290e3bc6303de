"""LightningDataModules that feed images chunk by chunk to the reconstruction algorithms."""

from dip_lightning.data.base import ImageDataModule
from dip_lightning.data.celeba import CelebADataModule
from dip_lightning.data.image_folder import ImageFolderDataModule
from dip_lightning.data.measured import MeasuredVectors, ObservedImages
from dip_lightning.data.mnist import MNISTDataModule
from dip_lightning.data.natural_images import NaturalImagesDataModule

__all__ = ["CelebADataModule", "ImageDataModule", "ImageFolderDataModule", "MNISTDataModule", "MeasuredVectors",
           "NaturalImagesDataModule", "ObservedImages"]

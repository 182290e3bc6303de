"""Measured data: the user's own degraded images and measurement vectors, reconstructed as they are.

Simulation (the other datamodules) starts from clean images and measures them; here the
measurements are the input and nothing is added to them. Each item is a dict with the image's
``measurements`` and, where the user has them, a reference ``image`` for nMSE, PSNR and SSIM.
Every file is checked (readable, shape, finite values) when the run sets up, before any
reconstruction, and an error names the file and the fix.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset

from dip_lightning.data.base import ImageDataModule
from dip_lightning.errors import DipLightningError
from dip_lightning.files import ARRAY_SUFFIXES, IMAGE_SUFFIXES, read_array, read_image
from dip_lightning.operators.base import ImageShape


def files_in(path: Path, suffixes: set[str], what: str, option: str) -> list[Path]:
    """The files with these suffixes in folder ``path`` (sorted by name), or ``[path]`` for one file."""
    path = path.expanduser()
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes) if path.is_dir() else []
    if not files:
        raise DipLightningError(
            f"no {what} found at {path.resolve()}; point {option} at a file or a folder of "
            f"{', '.join(sorted(suffixes))} files"
        )
    return files


def shape_text(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


class ReferenceImages:
    """Reference images for measured data: image files matched by name stem, or one stacked array."""

    def __init__(self, path: str, names: list[str], shape: ImageShape) -> None:
        self.path = Path(path).expanduser()
        self.shape = tuple(shape)
        self.array: Tensor | None = None
        if self.path.is_file() and self.path.suffix.lower() in ARRAY_SUFFIXES:
            array = read_array(self.path, "reference images", "--data.references")
            array = array[:, None] if array.dim() == 3 and self.shape[0] == 1 else array
            if array.dim() != 4 or tuple(array.shape[1:]) != self.shape or array.shape[0] != len(names):
                raise DipLightningError(
                    f"reference images {self.path} have shape {tuple(array.shape)}; {len(names)} images of "
                    f"{shape_text(self.shape)} are needed (N, C, H, W), one per measured image"
                )
            self.array = array.float()
            return
        by_stem = {p.stem: p for p in files_in(self.path, IMAGE_SUFFIXES | {".npy"}, "reference images",
                                               "--data.references")}
        missing = [name for name in names if name not in by_stem]
        if missing:
            raise DipLightningError(
                f"no reference image named {missing[0]} (of {len(missing)} missing) in {self.path}; a reference "
                "needs the same file name (before the suffix) as its measured image, or leave --data.references out"
            )
        self.files = [by_stem[name] for name in names]

    def __getitem__(self, i: int) -> Tensor:
        if self.array is not None:
            return self.array[i]
        image = read_image(self.files[i], self.shape[0], "reference image", "--data.references")
        if tuple(image.shape) != self.shape:
            raise DipLightningError(
                f"reference image {self.files[i]} is {shape_text(image.shape[1:])} pixels, but the reconstruction "
                f"is {shape_text(self.shape[1:])}; give references at the reconstruction's size"
            )
        return image


class MeasuredItems(Dataset):
    """Item ``ids[k]``: ``{"measurements": load(k), "image": reference k}`` for the k-th measured image
    (no ``image`` without references); ids are 0 .. count - 1 unless given."""

    def __init__(self, load, count: int, references: ReferenceImages | None, ids: list[int] | None = None) -> None:
        self.load, self.count, self.references = load, count, references
        self.position = {i: k for k, i in enumerate(ids if ids is not None else range(count))}

    def __len__(self) -> int:
        return max(self.position) + 1  # indices run up to the largest id

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        k = self.position[i]
        item = {"measurements": self.load(k)}
        if self.references is not None:
            item["image"] = self.references[k]
        return item


class ObservedImages(ImageDataModule):
    """The user's own degraded images, one reconstruction per image file, at its own size.

    With the restoration configs: noisy photos (``Denoising``: nothing is added), photos with
    missing pixels (``Inpainting`` with ``--model.operator.mask``: white = observed; the values
    under the missing pixels are not read), low-resolution images (``SuperResolution``: pass
    ``scale`` equal to the operator's ``factor``; the reconstruction is that many times larger).
    Every image of a run must have the same size (the operator is built for one size): put
    images of other sizes in another folder and run again.

    Args:
        root: a folder of image files (sorted by name), or one image file.
        references: a folder of clean images with the same file names, for nMSE, PSNR and SSIM
            (optional: without them, the measurement residual is reported).
        scale: how many times larger than the images the reconstructions are (1; the
            super-resolution factor for low-resolution images).
        channels: 1 (grayscale) or 3 (RGB); images are converted.
        **kwargs: selection and chunking, see :class:`ImageDataModule`.
    """

    name = "observed"

    def __init__(self, root: str, *args, references: str | None = None, scale: int = 1, channels: int = 3,
                 **kwargs) -> None:
        super().__init__(root, *args, **kwargs)
        if channels not in (1, 3):
            raise DipLightningError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels} (--data.channels)")
        if scale < 1:
            raise DipLightningError(f"scale must be a positive integer, got {scale} (--data.scale)")
        self.references = references
        self.scale = scale
        self.channels = channels
        self.files = files_in(Path(self.root), IMAGE_SUFFIXES | {".npy"}, "images", "--data.root")
        first = self._read(0)
        self.observed_shape = tuple(first.shape)

    def _read(self, i: int) -> Tensor:
        image = read_image(self.files[i], self.channels, "image", "--data.root")
        if i and tuple(image.shape) != self.observed_shape:
            raise DipLightningError(
                f"{self.files[i]} is {shape_text(image.shape[1:])} pixels but {self.files[0]} is "
                f"{shape_text(self.observed_shape[1:])}: the images of one run must have one size; put the others "
                "in another folder and run them separately"
            )
        return image

    @property
    def image_shape(self) -> ImageShape:
        channels, height, width = self.observed_shape
        return (channels, height * self.scale, width * self.scale)

    @property
    def has_references(self) -> bool:
        return self.references is not None

    @property
    def dataset_name(self) -> str:
        return f"observed:{Path(self.root).name}"

    def image_name(self, index: int) -> str:
        return self.files[index].stem

    def source(self, index: int) -> str:
        return str(self.files[index])

    def load_images(self) -> Dataset:
        names = [p.stem for p in self.files]
        references = ReferenceImages(self.references, names, self.image_shape) if self.references else None
        return MeasuredItems(self._read, len(self.files), references)


class MeasuredVectors(ImageDataModule):
    """Measurement vectors y taken by the user (compressive sensing, phase retrieval), with the
    operator they were taken with (e.g. ``CompressiveSensing(matrix=FILE)``).

    Args:
        root: a ``.npy`` / ``.pt`` file holding one vector per image, (N, m), or a single vector
            (m,); or a folder of such files, one vector per file (sorted by name).
        image_shape: (C, H, W) of the images to reconstruct, e.g. ``[1, 28, 28]``.
        references: the clean images, for nMSE, PSNR and SSIM (optional): a ``.npy`` / ``.pt``
            array (N, C, H, W) (or (N, H, W) for grayscale) in the order of the vectors, or a
            folder of image files with the names of the vector files.
        ids: the images' dataset indices, one per vector (default 0 .. N-1). Per-image randomness
            (the networks' initialization) is keyed by them, so measurements exported from a
            simulated run on, say, MNIST test digits [3, 17, 42] and given ``ids: [3, 17, 42]``
            are reconstructed exactly as that run reconstructed them. ``--data.indices`` then
            selects among these ids.
        **kwargs: selection and chunking, see :class:`ImageDataModule`.
    """

    name = "measured"

    def __init__(self, root: str, image_shape: tuple[int, int, int], *args, references: str | None = None,
                 ids: list[int] | None = None, **kwargs) -> None:
        super().__init__(root, *args, **kwargs)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise DipLightningError(f"image_shape must be [channels, height, width], got {image_shape} (--data.image_shape)")
        self._image_shape = tuple(int(s) for s in image_shape)
        self.references = references
        self.files = files_in(Path(self.root), ARRAY_SUFFIXES, "measurement vectors", "--data.root")
        self.stacked: Tensor | None = None
        if len(self.files) == 1:
            stacked = read_array(self.files[0], "measurements", "--data.root")
            if stacked.dim() not in (1, 2):
                raise DipLightningError(
                    f"measurements {self.files[0]} have shape {tuple(stacked.shape)}; save one vector per image "
                    "as an (N, m) array, or one vector (m,)"
                )
            self.stacked = stacked.reshape(-1, stacked.shape[-1]).float()
        count = len(self.stacked) if self.stacked is not None else len(self.files)
        if ids is not None and (len(ids) != count or len(set(ids)) != count or min(ids) < 0):
            raise DipLightningError(
                f"--data.ids must list {count} different non-negative indices, one per measured image, "
                f"got {len(ids)} ({len(set(ids))} different)"
            )
        self.ids = list(range(count)) if ids is None else [int(i) for i in ids]
        self.row = {i: k for k, i in enumerate(self.ids)}

    @property
    def image_shape(self) -> ImageShape:
        return self._image_shape

    @property
    def has_references(self) -> bool:
        return self.references is not None

    @property
    def dataset_name(self) -> str:
        return f"measured:{Path(self.root).name}"

    def available(self, dataset_size: int) -> list[int]:
        return self.ids

    def image_name(self, index: int) -> str:
        return f"{index:06d}" if self.stacked is not None else self.files[self.row[index]].stem

    def source(self, index: int) -> str:
        row = self.row[index]
        return f"row {row} of {self.files[0]}" if self.stacked is not None else str(self.files[row])

    def _read(self, row: int) -> Tensor:
        if self.stacked is not None:
            return self.stacked[row]
        vector = read_array(self.files[row], "measurements", "--data.root")
        if vector.dim() != 1:
            raise DipLightningError(f"measurements {self.files[row]} have shape {tuple(vector.shape)}; save one "
                                    "vector (m,) per file")
        return vector.float()

    def load_images(self) -> Dataset:
        names = [self.image_name(i) for i in self.ids]
        references = ReferenceImages(self.references, names, self.image_shape) if self.references else None
        return MeasuredItems(self._read, len(self.ids), references, self.ids)

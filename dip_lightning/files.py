"""Reading the user's files (images, arrays) and writing reconstructions as images, with errors that name the file.

Images are read with Pillow, except 16-bit PNGs, which Pillow reduces to 8 bits in colour: those
(and every PNG written here) go through pypng, which reads and writes 8- and 16-bit grayscale
and RGB PNGs exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import png
import torch
from PIL import Image
from torch import Tensor

from dip_lightning.errors import DipLightningError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}
ARRAY_SUFFIXES = {".npy", ".pt", ".pth"}
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as Pillow's conversion to grayscale


def existing_file(path: str | Path, what: str, option: str) -> Path:
    """``path`` as a Path, or a DipLightningError saying which option names a missing file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DipLightningError(f"{what} {path} not found; pass an existing file with {option}")
    return path


def read_array(path: str | Path, what: str, option: str) -> Tensor:
    """A float64 tensor from a ``.npy`` file or a ``.pt`` file holding one tensor or array."""
    path = existing_file(path, what, option)
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        elif path.suffix.lower() in (".pt", ".pth"):
            array = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise DipLightningError(f"{what} {path} is not a .npy or .pt file; save it with numpy.save or torch.save")
        tensor = torch.as_tensor(np.asarray(array) if not isinstance(array, Tensor) else array)
    except DipLightningError:
        raise
    except Exception as error:  # numpy and torch raise many kinds for a damaged file
        raise DipLightningError(f"{what} {path} is not a readable array ({type(error).__name__}: {error})") from error
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8)):
        raise DipLightningError(f"{what} {path} holds {tensor.dtype} values; real numbers are needed")
    return tensor.to(torch.float64)


def read_image(path: str | Path, channels: int, what: str = "image", option: str = "--data.root") -> Tensor:
    """One image file as a float tensor (channels, H, W) with values in [0, 1].

    8-bit images are divided by 255, 16-bit ones by 65535; colour images become grayscale with
    Pillow's luma weights, grayscale ones are repeated for RGB; an alpha channel is dropped.
    ``.npy`` files hold float arrays (H, W) or (H, W, C) taken as they are.
    """
    path = existing_file(path, what, option)
    try:
        if path.suffix.lower() == ".npy":
            image = torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float64))
        elif path.suffix.lower() == ".png" and png.Reader(filename=str(path)).read()[3]["bitdepth"] == 16:
            width, height, rows, info = png.Reader(filename=str(path)).asDirect()
            array = np.vstack(list(rows)).reshape(height, width, info["planes"])
            image = torch.from_numpy(array[..., : 3 if info["planes"] >= 3 else 1].astype(np.float64) / 65535)
        else:
            with Image.open(path) as pil:
                if pil.mode.startswith("I;16"):
                    image = torch.from_numpy(np.asarray(pil, dtype=np.float64) / 65535)
                else:  # 8 bits: as torchvision's to_tensor, Pillow's conversion then x / 255 in float32
                    pil = pil.convert("L" if channels == 1 else "RGB")
                    image = torch.from_numpy(np.array(pil, dtype=np.uint8)).float() / 255
    except DipLightningError:
        raise
    except Exception as error:  # Pillow and pypng raise many kinds for damaged or foreign files
        raise DipLightningError(f"{what} {path} is not a readable image ({type(error).__name__}: {error})") from error
    if image.dim() not in (2, 3):
        raise DipLightningError(f"{what} {path} has shape {tuple(image.shape)}; an image is (H, W) or (H, W, C)")
    image = image[None] if image.dim() == 2 else image.permute(2, 0, 1)
    if image.shape[0] == 4:
        image = image[:3]
    if image.shape[0] != channels:
        if channels == 1:
            image = torch.tensordot(torch.tensor(LUMA, dtype=image.dtype), image[:3], dims=1)[None] \
                if image.shape[0] == 3 else image.mean(0, keepdim=True)
        else:
            image = image[:1].expand(channels, -1, -1)
    return image.float().contiguous()


def write_png(path: str | Path, image: Tensor, bits: int = 8) -> None:
    """Save an image (C, H, W) with values in [0, 1] (clipped) as an 8- or 16-bit grayscale or RGB PNG."""
    if bits not in (8, 16):
        raise DipLightningError(f"PNG images have 8 or 16 bits per channel, not {bits}")
    channels, height, width = image.shape
    top = 2**bits - 1
    values = (image.detach().double().clamp(0, 1) * top).round().cpu().numpy().astype(np.uint16 if bits == 16 else np.uint8)
    mode = ("L" if channels == 1 else "RGB") + f";{bits}"
    rows = values.transpose(1, 2, 0).reshape(height, width * channels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png.from_array(rows, mode).save(str(path))

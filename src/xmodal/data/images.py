"""Reading an image file as a float tensor, whatever its colour mode.

One function, :func:`load_image`, used by every real-format loader: any file Pillow
reads becomes ``(3, H, W)`` float32 in [0, 1], RGB, so a model never sees a grayscale,
palette, transparent or CMYK image as anything else. A file that is missing, is not an
image, or is cut short raises :class:`~xmodal.errors.DataError` naming it, instead of a
Pillow traceback halfway through an epoch.

Example:
    >>> x = load_image("images/val/world_val_000000.png")            # (3, 64, 64)
    >>> x = load_image("COCO_val2014_000000391895.jpg", size=224)    # (3, 224, 224)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from xmodal._checks import check_positive_int
from xmodal.errors import DataError, ParameterError

__all__ = ["load_image"]

# Modes whose pixels are 16-bit (or wider) integers: scaled by 65535, as 16-bit PNGs are.
_WIDE_GRAY = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _check_size(size, name: str = "size") -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ParameterError(f"{name} must be an int or (height, width). Found: {size!r}")
        return (
            check_positive_int(size[0], f"{name}[0]"),
            check_positive_int(size[1], f"{name}[1]"),
        )
    side = check_positive_int(size, name)
    return (side, side)


def _to_array(img, path: Path) -> np.ndarray:
    """``(H, W, 3)`` float32 in [0, 1] from a loaded Pillow image of any mode."""
    from PIL import Image

    mode = img.mode
    if mode in _WIDE_GRAY:
        gray = np.asarray(img, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=2)
    if mode == "F":  # float pixels: taken as intensities in [0, 1]
        gray = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0)
        return np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        # Transparent pixels are shown on white, as a viewer on a white page shows them:
        # the colour stored under alpha 0 is arbitrary (often black) and not the picture.
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    if img.mode != "RGB":
        try:
            img = img.convert("RGB")  # L, 1, CMYK, YCbCr, ...
        except ValueError as e:
            raise DataError(f"{path}: cannot convert colour mode {mode!r} to RGB ({e})") from e
    return np.asarray(img, dtype=np.float32) / 255.0


def load_image(path, *, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Read an image file as ``(3, H, W)`` float32 RGB in [0, 1].

    Colour modes: grayscale (8- and 16-bit) is repeated over the three channels; palette
    images are expanded; images with an alpha channel (RGBA, LA, palette with a
    transparent colour) are composited on white; CMYK and YCbCr are converted by
    Pillow's plain formulas (no ICC colour management). Of an animated or multi-page
    file, the first frame is read. EXIF orientation is not applied (as torchvision's
    loaders and the datasets' published pipelines do not).

    Args:
        path: the image file (``str`` or ``os.PathLike``).
        size: resize to ``(size, size)`` or ``(height, width)`` by bilinear interpolation,
            antialiased when shrinking; None keeps the file's size.

    Returns:
        ``(3, H, W)`` float32 tensor in [0, 1].

    Raises:
        ParameterError: ``path`` is not a path, or ``size`` is not a positive int or pair.
        DataError: the file does not exist, is not a file, is not an image Pillow reads,
            or is corrupt or truncated; the message names the file.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"path must be a str or os.PathLike. Found: {path!r}")
    size = _check_size(size)
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"image file {path} {what}")

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()  # decodes now: a truncated or corrupt file fails here, not later
            array = _to_array(img, path)
    except UnidentifiedImageError as e:
        raise DataError(f"{path} is not an image file Pillow can read") from e
    except Image.DecompressionBombError as e:
        raise DataError(f"{path}: {e}") from e
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's ways of saying "corrupt"
        raise DataError(f"{path} is corrupt or truncated: {e}") from e
    image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()
    if size is not None and tuple(image.shape[1:]) != size:
        image = F.interpolate(
            image.unsqueeze(0), size=size, mode="bilinear", align_corners=False, antialias=True
        ).squeeze(0)
        image = image.clamp_(0.0, 1.0)  # float rounding can step a hair outside [0, 1]
    return image

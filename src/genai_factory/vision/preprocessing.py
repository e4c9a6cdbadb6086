"""Medical-image pre-processing: decode, window, resize, normalise (pure functions, numpy + Pillow).

Every image becomes one ``uint8`` grayscale array of ``size × size`` before the model sees it:

* **decode**: PNG / JPEG (Pillow) or DICOM (``pydicom``); colour images are converted to luminance;
* **window**: 8-bit images are kept as they are; deeper images (12/16-bit DICOM, 16-bit PNG) are
  mapped to 0..255 through the DICOM window (``WindowCenter`` / ``WindowWidth``) when the file has
  one, else through the 0.5–99.5 percentile window of the image itself; ``MONOCHROME1`` is inverted;
* **resize**: area-averaging (``Image.BOX``) down, bilinear up, to the model's input size;
* **normalise**: ``(x / 255 - 0.5) / 0.25`` as float32, the model's input scale.

A corrupt file raises :class:`UnreadableDocument` (HTTP 422), an unknown format
:class:`UnsupportedFileType` (415), an image whose sides are out of bounds or too far from square
:class:`UnreadableDocument` with the reason.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from genai_factory.exceptions import UnreadableDocument, UnsupportedFileType
from genai_factory.vision.pixels import U8, check_shape, window

#: The model's input scale: ``(x / 255 - MEAN) / STD``.
MEAN, STD = 0.5, 0.25
_DICOM_MAGIC = b"DICM"
_RASTER_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def is_dicom(data: bytes) -> bool:
    """DICOM part 10 files carry ``DICM`` after a 128-byte preamble."""
    return len(data) >= 132 and data[128:132] == _DICOM_MAGIC


def resize(pixels: U8, size: int) -> U8:
    """``pixels`` resized to ``size × size`` (box filter down, bilinear up); unchanged if equal."""
    if pixels.shape == (size, size):
        return pixels
    image = Image.fromarray(pixels)
    shrink = max(pixels.shape) > size
    out = image.resize((size, size), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def _decode_raster(data: bytes) -> NDArray[Any]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format not in ("PNG", "JPEG"):
                raise UnsupportedFileType(
                    f"unsupported image format {image.format}: send PNG, JPEG or DICOM"
                )
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.asarray(image, dtype=np.int32)
            return np.asarray(image.convert("L"), dtype=np.uint8)
    except UnidentifiedImageError as exc:
        if data.startswith(_RASTER_MAGIC):  # it says PNG or JPEG but cannot be read
            raise UnreadableDocument("corrupt image: its header cannot be read") from exc
        raise UnsupportedFileType("not an image: send PNG, JPEG or DICOM") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadableDocument(f"corrupt image: {exc}") from exc


def decode(data: bytes) -> U8:
    """The 8-bit grayscale pixels of an encoded image (PNG, JPEG or DICOM), windowed."""
    if not data:
        raise UnreadableDocument("empty image")
    if is_dicom(data):
        from genai_factory.vision.dicom import decode_dicom

        return decode_dicom(data)
    pixels = _decode_raster(data)
    check_shape(pixels)
    return window(pixels)


def prepare(pixels: U8, size: int) -> U8:
    """A decoded image made ready for the model: shape checked, resized to ``size``."""
    check_shape(pixels)
    return resize(pixels, size)


def normalise(images: U8) -> NDArray[np.float32]:
    """``(N, H, W)`` uint8 → ``(N, 1, H, W)`` float32 on the model's input scale."""
    scaled = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return scaled[:, None, :, :]


def image_statistics(images: U8) -> NDArray[np.float64]:
    """Per-image mean and standard deviation of the pixels (0..1): the drift check's statistics."""
    values = images.reshape(len(images), -1).astype(np.float64) / 255.0
    return np.stack([values.mean(axis=1), values.std(axis=1)], axis=1)


def encode_png(pixels: U8) -> bytes:
    """PNG bytes of a uint8 grayscale image (tests, demos, benchmarks)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()

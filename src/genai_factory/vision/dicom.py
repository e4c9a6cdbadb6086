"""DICOM decoding with ``pydicom`` (imported only when a DICOM file arrives).

Uncompressed transfer syntaxes only (pydicom's own decoders); a compressed pixel stream that needs
an extra codec raises :class:`UnreadableDocument` naming the transfer syntax. The modality rescale
(``RescaleSlope`` / ``RescaleIntercept``) is applied, then the file's VOI window, and
``MONOCHROME1`` images (white is low) are inverted so every image reads like ``MONOCHROME2``.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from genai_factory.exceptions import ConfigurationError, UnreadableDocument
from genai_factory.vision.pixels import U8, check_shape, window


def _first(value: Any) -> float | None:
    """A DICOM numeric value that may be multi-valued: its first entry, or ``None``."""
    if value is None:
        return None
    try:
        return (
            float(value[0])
            if hasattr(value, "__len__") and not isinstance(value, str)
            else float(value)
        )
    except (TypeError, ValueError, IndexError):
        return None


def decode_dicom(data: bytes) -> U8:
    """The 8-bit grayscale pixels of a DICOM file (single frame, uncompressed)."""
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ConfigurationError(f"pydicom is not installed: {exc}") from exc
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        pixels = np.asarray(dataset.pixel_array)
    except (InvalidDicomError, AttributeError, KeyError, ValueError, RuntimeError, OSError) as exc:
        raise UnreadableDocument(f"unreadable DICOM file: {exc}") from exc
    if pixels.ndim == 3 and pixels.shape[-1] not in (3, 4):
        pixels = pixels[0]  # a multi-frame file: its first frame
    if pixels.ndim == 3:
        pixels = pixels[..., :3].mean(axis=-1)
    check_shape(pixels)
    slope = _first(getattr(dataset, "RescaleSlope", None)) or 1.0
    intercept = _first(getattr(dataset, "RescaleIntercept", None)) or 0.0
    values = pixels.astype(np.float64) * slope + intercept
    center = _first(getattr(dataset, "WindowCenter", None))
    width = _first(getattr(dataset, "WindowWidth", None))
    if pixels.dtype == np.uint8 and slope == 1.0 and intercept == 0.0 and center is None:
        out = pixels.astype(np.uint8)
    else:
        out = window(values, center, width)
    if str(getattr(dataset, "PhotometricInterpretation", "")) == "MONOCHROME1":
        out = (255 - out).astype(np.uint8)
    return out

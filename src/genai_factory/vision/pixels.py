"""Grayscale pixel arrays: the 8-bit type, windowing deeper images to it, and the shape check.

Shared by the raster decoder (:mod:`~genai_factory.vision.preprocessing`) and the DICOM decoder
(:mod:`~genai_factory.vision.dicom`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from genai_factory.exceptions import UnreadableDocument

MIN_SIDE = 8
MAX_SIDE = 4096
MAX_ASPECT = 2.0

U8 = NDArray[np.uint8]


def window(pixels: NDArray[Any], center: float | None = None, width: float | None = None) -> U8:
    """Map any grayscale array to uint8: the given window, else the 0.5–99.5 percentile range."""
    if pixels.dtype == np.uint8:
        return pixels
    values = pixels.astype(np.float64)
    if center is not None and width is not None and width > 0:
        low, high = center - width / 2, center + width / 2
    else:
        low, high = (float(v) for v in np.percentile(values, (0.5, 99.5)))
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0
    return np.rint(scaled).astype(np.uint8)


def check_shape(pixels: NDArray[Any]) -> None:
    """Refuse images that are not 2-D, too small, too large or too far from square."""
    if pixels.ndim != 2:
        raise UnreadableDocument(f"expected a 2-D grayscale image, got shape {pixels.shape}")
    height, width = pixels.shape
    if min(height, width) < MIN_SIDE or max(height, width) > MAX_SIDE:
        raise UnreadableDocument(
            f"image of {width}x{height} pixels: each side must be {MIN_SIDE}..{MAX_SIDE}"
        )
    if max(height, width) / min(height, width) > MAX_ASPECT:
        raise UnreadableDocument(
            f"image of {width}x{height} pixels is too far from square (aspect > {MAX_ASPECT:g})"
        )

"""Decoding, windowing, resizing and the errors for bad images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from genai_factory.exceptions import UnreadableDocument, UnsupportedFileType
from genai_factory.vision.preprocessing import (
    decode,
    encode_png,
    image_statistics,
    normalise,
    prepare,
    window,
)


def _encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def test_png_round_trips_exactly() -> None:
    pixels = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    assert np.array_equal(decode(encode_png(pixels)), pixels)


def test_colour_jpeg_becomes_grayscale_and_is_resized() -> None:
    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    pixels = prepare(decode(_encoded(rgb, "JPEG")), 28)
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
    assert 50 < pixels.mean() < 70  # luminance of pure red ~ 0.299 * 200


def test_sixteen_bit_images_are_windowed_to_the_full_range() -> None:
    deep = np.linspace(1000, 3000, 32 * 32).reshape(32, 32).astype(np.uint16)
    out = window(deep.astype(np.int32))
    assert out.min() == 0 and out.max() == 255
    assert np.array_equal(window(deep, center=2000, width=2000)[0, 0:1], [0])


@pytest.mark.parametrize("cut", [20, 40, 300])
def test_a_corrupt_png_is_unreadable(cut: int) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8)
    data = encode_png(noise)
    with pytest.raises(UnreadableDocument):
        decode(data[:cut])


def test_text_is_not_an_image() -> None:
    with pytest.raises(UnsupportedFileType):
        decode(b"hello, this is not an image at all")


@pytest.mark.parametrize("shape", [(4, 4), (28, 100), (5000, 5000)])
def test_wrong_sizes_are_refused_with_the_reason(shape: tuple[int, int]) -> None:
    with pytest.raises(UnreadableDocument, match="pixels"):
        prepare(np.zeros(shape, dtype=np.uint8), 28)


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(UnreadableDocument, match="empty"):
        decode(b"")


def test_normalise_and_statistics() -> None:
    images = np.full((2, 28, 28), 255, dtype=np.uint8)
    images[1] = 0
    scaled = normalise(images)
    assert scaled.shape == (2, 1, 28, 28) and scaled.dtype == np.float32
    assert scaled[0].max() == pytest.approx(2.0) and scaled[1].min() == pytest.approx(-2.0)
    assert image_statistics(images).tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_dicom_is_decoded_with_its_window_and_photometry() -> None:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = generate_uid()
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    pixels = np.tile(np.linspace(0, 4000, 32, dtype=np.uint16), (32, 1))
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.WindowCenter, ds.WindowWidth = 2000, 4000
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    out = decode(buffer.getvalue())
    assert out.shape == (32, 32)
    assert out[0, 0] == 255 and out[0, -1] == 0  # MONOCHROME1: low values are white


def test_a_corrupt_dicom_is_unreadable() -> None:
    pytest.importorskip("pydicom")
    with pytest.raises(UnreadableDocument):
        decode(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")

"""Labelled image sets: ``.npz`` arrays or folders of PNG / JPEG / DICOM files, one folder per class.

``.npz``: keys ``images`` (``N×H×W`` uint8, or any integer / float grayscale that is windowed) and
``labels`` (``N``, 0/1), the MedMNIST layout. A folder: ``<root>/<label>/*.png|jpg|jpeg|dcm``, where
``<label>`` is a label name of the recipe (``normal``, ``pneumonia``) or its index (``0``, ``1``).
Every image is decoded and resized to the recipe's size; a bad file names itself in the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from genai_factory.exceptions import GenAIFactoryError, InvalidRequestError, NotFoundError
from genai_factory.vision.pixels import U8, window
from genai_factory.vision.preprocessing import decode, resize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm")


@dataclass(frozen=True)
class ImageSet:
    """Images (``N×S×S`` uint8) and their labels (``N`` int64, 0 or 1)."""

    images: U8
    labels: NDArray[np.int64]

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or len(self.images) != len(self.labels):
            raise InvalidRequestError(
                f"images {self.images.shape} and labels {self.labels.shape} do not match"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[int, int]:
        return {
            int(k): int(v) for k, v in zip(*np.unique(self.labels, return_counts=True), strict=True)
        }

    def concat(self, other: ImageSet) -> ImageSet:
        return ImageSet(
            np.concatenate([self.images, other.images]), np.concatenate([self.labels, other.labels])
        )


def _binary_labels(raw: NDArray[np.generic], source: Path) -> NDArray[np.int64]:
    labels = np.asarray(raw).reshape(-1).astype(np.int64)
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise InvalidRequestError(f"{source}: labels must be 0 or 1")
    return labels


def load_npz(path: Path, size: int = 28) -> ImageSet:
    """An ``.npz`` file with ``images`` and ``labels``."""
    if not path.is_file():
        raise NotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except KeyError as exc:
        raise InvalidRequestError(f"{path}: needs arrays 'images' and 'labels'") from exc
    except (OSError, ValueError) as exc:
        raise InvalidRequestError(f"{path}: not a readable .npz file ({exc})") from exc
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise InvalidRequestError(f"{path}: images must be N×H×W grayscale, got {images.shape}")
    pixels = window(images) if images.dtype != np.uint8 else images
    if pixels.shape[1:] != (size, size):
        pixels = np.stack([resize(image, size) for image in pixels])
    return ImageSet(np.ascontiguousarray(pixels), _binary_labels(labels, path))


def _label_of(folder: Path, labels: Sequence[str]) -> int | None:
    name = folder.name.lower()
    if name in ("0", "1"):
        return int(name)
    lowered = [label.lower() for label in labels]
    return lowered.index(name) if name in lowered else None


def load_folder(root: Path, labels: Sequence[str], size: int = 28) -> ImageSet:
    """Images under ``root/<label>/``; folders that name no label are ignored."""
    if not root.is_dir():
        raise NotFoundError(f"no such folder: {root}")
    images: list[U8] = []
    targets: list[int] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = _label_of(folder, labels)
        if label is None:
            continue
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                images.append(resize(decode(file.read_bytes()), size))
            except GenAIFactoryError as exc:
                raise InvalidRequestError(f"{file}: {exc.message}") from exc
            targets.append(label)
    if not images:
        raise InvalidRequestError(
            f"{root}: no images in sub-folders named {', '.join(labels)} (or 0, 1)"
        )
    return ImageSet(np.stack(images), np.asarray(targets, dtype=np.int64))


def load_dataset(
    path: Path, labels: Sequence[str] = ("normal", "pneumonia"), size: int = 28
) -> ImageSet:
    """An ``.npz`` file or a folder of class sub-folders."""
    path = Path(path)
    if path.is_dir():
        return load_folder(path, labels, size)
    if path.suffix.lower() == ".npz":
        return load_npz(path, size)
    if not path.exists():
        raise NotFoundError(f"no such file or folder: {path}")
    raise InvalidRequestError(f"{path}: give an .npz file or a folder of class sub-folders")

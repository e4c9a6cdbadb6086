"""Tiny synthetic image sets: class 1 carries a bright blob, class 0 only noise (learnable fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genai_factory.vision.data import ImageSet
from genai_factory.vision.recipe import Recipe


def synthetic(n: int, seed: int, size: int = 28, contrast: float = 1.0) -> ImageSet:
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.int64)
    images = rng.normal(90, 20, size=(n, size, size))
    yy, xx = np.mgrid[:size, :size]
    for i in np.flatnonzero(labels):
        cy, cx = rng.integers(8, size - 8, size=2)
        images[i] += 110 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 12.0)
    images = (images - 90) * contrast + 90
    return ImageSet(np.clip(images, 0, 255).astype(np.uint8), labels)


def save_npz(data: ImageSet, path: Path) -> Path:
    np.savez(path, images=data.images, labels=data.labels)
    return path


@pytest.fixture
def tiny_recipe() -> Recipe:
    """A recipe that trains in about a second on the synthetic sets."""
    return Recipe(width=4, epochs=3, batch_size=32, patience=3, threads=1, learning_rate=0.01)


@pytest.fixture
def train_set() -> ImageSet:
    return synthetic(96, seed=1)


@pytest.fixture
def val_set() -> ImageSet:
    return synthetic(48, seed=2)

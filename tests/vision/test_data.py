"""Loading labelled sets from .npz files and class folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genai_factory.exceptions import InvalidRequestError, NotFoundError
from genai_factory.vision.data import ImageSet, load_dataset
from genai_factory.vision.preprocessing import encode_png

from .conftest import save_npz, synthetic


def test_npz_round_trip_and_resize(tmp_path: Path) -> None:
    data = synthetic(10, seed=0, size=32)
    loaded = load_dataset(save_npz(data, tmp_path / "d.npz"), size=28)
    assert loaded.images.shape == (10, 28, 28) and loaded.labels.tolist() == data.labels.tolist()


def test_folders_by_label_name_or_index(tmp_path: Path) -> None:
    for folder, value in (("normal", 10), ("1", 200), ("ignored", 0)):
        (tmp_path / folder).mkdir()
        for i in range(2):
            (tmp_path / folder / f"{i}.png").write_bytes(
                encode_png(np.full((28, 28), value, dtype=np.uint8))
            )
    loaded = load_dataset(tmp_path)
    assert loaded.labels.tolist() == [1, 1, 0, 0]
    assert loaded.counts() == {0: 2, 1: 2}


def test_a_bad_file_in_a_folder_names_itself(tmp_path: Path) -> None:
    (tmp_path / "normal").mkdir()
    (tmp_path / "normal" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(InvalidRequestError, match=r"broken\.png"):
        load_dataset(tmp_path)


def test_bad_npz_files(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_dataset(tmp_path / "missing.npz")
    np.savez(tmp_path / "nolabels.npz", images=np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(InvalidRequestError, match="labels"):
        load_dataset(tmp_path / "nolabels.npz")
    np.savez(tmp_path / "three.npz", images=np.zeros((2, 28, 28)), labels=np.array([0, 2]))
    with pytest.raises(InvalidRequestError, match="0 or 1"):
        load_dataset(tmp_path / "three.npz")


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(InvalidRequestError):
        ImageSet(np.zeros((3, 28, 28), dtype=np.uint8), np.zeros(2, dtype=np.int64))

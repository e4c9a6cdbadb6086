"""What the service saw: one JSON line per served image in ``<data_dir>/vision/inputs.jsonl``.

Each line holds the time, the model version, the image's pixel mean and standard deviation, the
prediction's confidence and its penultimate embedding (rounded) — never the image itself. ``vision
loop`` reads the newest ``vision.drift.window`` lines as the current window of the drift check.
Appends are serialised by a lock and written from a worker thread after the response is sent.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from genai_factory.vision.pixels import U8
from genai_factory.vision.preprocessing import image_statistics

FILE = "inputs.jsonl"


@dataclass(frozen=True)
class ServedWindow:
    """The newest served inputs, as arrays."""

    statistics: NDArray[np.float64]
    embeddings: NDArray[np.float64]
    confidences: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.confidences)


class InputLog:
    """Append-only log of served inputs' features (thread-safe)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE
        self._lock = threading.Lock()

    def append(
        self, version: str, pixels: U8, confidences: NDArray[Any], embeddings: NDArray[Any]
    ) -> None:
        stats = np.round(image_statistics(pixels), 5).tolist()
        rounded = np.round(np.asarray(embeddings, dtype=np.float64), 4).tolist()
        now = datetime.now(UTC).isoformat()
        lines = [
            json.dumps(
                {
                    "ts": now,
                    "model_version": version,
                    "mean": s[0],
                    "std": s[1],
                    "confidence": round(float(c), 5),
                    "embedding": e,
                }
            )
            for s, c, e in zip(stats, confidences, rounded, strict=True)
        ]
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")

    def recent(self, limit: int, version: str | None = None) -> ServedWindow:
        """The newest ``limit`` rows served by ``version`` (any version: ``None``); an empty window
        when there are none. Embeddings only compare within one model, hence the filter."""
        rows: deque[dict[str, Any]] = deque(maxlen=limit)
        if self.path.is_file():
            with self.path.open(encoding="utf-8") as lines:
                for line in lines:
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a crash
                    if version is None or row.get("model_version") == version:
                        rows.append(row)
        if not rows:
            return ServedWindow(np.zeros((0, 2)), np.zeros((0, 0)), np.zeros(0))
        return ServedWindow(
            np.asarray([[r["mean"], r["std"]] for r in rows], dtype=np.float64),
            np.asarray([r["embedding"] for r in rows], dtype=np.float64),
            np.asarray([r["confidence"] for r in rows], dtype=np.float64),
        )

"""Index versions: every full ingest builds a new version; serving switches only to a complete one.

Layout under the index root (``<data dir>/index``)::

    ACTIVE                      the serving version's id, replaced with one atomic rename
    versions/<id>/manifest.json status ("building" | "ready"), created, embedder, store, counts
    versions/<id>/...           that version's vectors, keyword index and document catalog

A version is created ``building``, filled, then marked ``ready``; only a ready version can be
activated, and activation is a single ``os.replace`` of ``ACTIVE``, so a reader sees the old
version or the new one, never a half-built one. Older versions stay on disk for rollback
(``genai-factory index activate VERSION``) until :meth:`IndexVersions.prune` removes them; the
active version and the one before it are never pruned.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from genai_factory.exceptions import InvalidRequestError, NotFoundError

ACTIVE_FILE = "ACTIVE"
MANIFEST = "manifest.json"
Status = Literal["building", "ready"]


class VersionInfo(BaseModel):
    """One index version, as listed by ``genai-factory index list``."""

    id: str
    status: Status
    created: str
    embedder: str
    store: str
    documents: int = 0
    chunks: int = 0
    active: bool = False
    note: str = ""


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class IndexVersions:
    """The versions of one index, rooted at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"

    def directory(self, version_id: str) -> Path:
        if not version_id or "/" in version_id or version_id.startswith("."):
            raise InvalidRequestError(f"invalid index version {version_id!r}")
        return self.versions_dir / version_id

    def active_id(self) -> str | None:
        try:
            text = (self.root / ACTIVE_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def active_marker(self) -> tuple[str | None, int]:
        """The active id with the ``ACTIVE`` file's change time: cheap to poll for switches."""
        try:
            stamp = (self.root / ACTIVE_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            return None, 0
        return self.active_id(), stamp

    def _read(self, version_id: str) -> VersionInfo:
        path = self.directory(version_id) / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFoundError(f"no index version {version_id!r}") from None
        except ValueError as exc:
            raise InvalidRequestError(f"index version {version_id!r} is unreadable: {exc}") from exc
        info = VersionInfo.model_validate(data)
        info.active = version_id == self.active_id()
        return info

    def get(self, version_id: str) -> VersionInfo:
        return self._read(version_id)

    def all(self) -> list[VersionInfo]:
        """Every version, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        found = []
        for entry in self.versions_dir.iterdir():
            if entry.is_dir() and (entry / MANIFEST).exists():
                found.append(self._read(entry.name))
        return sorted(found, key=lambda v: (v.created, v.id))

    def _save(self, info: VersionInfo) -> None:
        data = info.model_dump(exclude={"active"})
        _write_atomic(self.directory(info.id) / MANIFEST, json.dumps(data, indent=2))

    def create(self, *, embedder: str, store: str, note: str = "") -> VersionInfo:
        """A new, empty version in status ``building``."""
        now = datetime.now(tz=UTC)
        version_id = f"v{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.directory(version_id).mkdir(parents=True)
        info = VersionInfo(
            id=version_id,
            status="building",
            created=now.isoformat(),
            embedder=embedder,
            store=store,
            note=note,
        )
        self._save(info)
        return info

    def update(self, version_id: str, *, documents: int, chunks: int) -> VersionInfo:
        info = self._read(version_id)
        info.documents, info.chunks = documents, chunks
        self._save(info)
        return info

    def mark_ready(self, version_id: str, *, documents: int, chunks: int) -> VersionInfo:
        info = self._read(version_id)
        info.status, info.documents, info.chunks = "ready", documents, chunks
        self._save(info)
        return info

    def activate(self, version_id: str) -> VersionInfo:
        """Make a ready version the serving one, in one atomic step."""
        info = self._read(version_id)
        if info.status != "ready":
            raise InvalidRequestError(f"index version {version_id} is still {info.status}")
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.root / ACTIVE_FILE, version_id + "\n")
        info.active = True
        return info

    def previous_id(self) -> str | None:
        """The newest ready version older than the active one (the rollback target)."""
        active = self.active_id()
        ready = [v for v in self.all() if v.status == "ready"]
        ids = [v.id for v in ready]
        if active not in ids:
            return ids[-1] if ids else None
        position = ids.index(active)
        return ids[position - 1] if position > 0 else None

    def remove(self, version_id: str) -> None:
        if version_id == self.active_id():
            raise InvalidRequestError(
                f"index version {version_id} is active; activate another first"
            )
        directory = self.directory(version_id)
        if not directory.is_dir():
            raise NotFoundError(f"no index version {version_id!r}")
        shutil.rmtree(directory)

    def prune(self, keep: int = 2) -> list[str]:
        """Remove old versions, keeping the newest ``keep`` ready ones, the active one and the one
        before it, and any version still building. Returns the removed ids."""
        protected = {self.active_id(), self.previous_id()}
        ready = [v.id for v in self.all() if v.status == "ready"]
        doomed = [v for v in ready[: max(0, len(ready) - keep)] if v not in protected]
        for version_id in doomed:
            shutil.rmtree(self.directory(version_id), ignore_errors=True)
        return doomed

"""The model registry across ``kill -9``: a registrar keeps registering and promoting, and is killed.

Run as a script, this file is the registrar: a process of its own on the service's data directory
(the embedded MLflow store, ``<data dir>/mlflow.db`` with artefacts in ``<data dir>/mlartifacts``,
or the tracking URI the environment names). It loops: write a small artefact (random bytes), note
``start`` with its SHA-256, register it as a new version of :data:`MODEL` through
:class:`~genai_factory.mlops.registry.ModelRegistry` (every other one a LoRA adapter version, tags
``kind`` and ``base_ref``, as ``train llm`` registers them), note ``registered`` with the version
the call returned, promote that version to ``champion``, note ``promoted``. Every note is one JSON
line appended to the acknowledgement file and flushed before the next step, so the file holds
exactly what the registry acknowledged. ``bench/crash_safety.py`` starts it beside the service and
kills both with SIGKILL at the same instant.

:func:`check_registry` then opens the store in this process and checks that it opens, that every
acknowledged version is there with its artefact readable and byte-identical, that ``champion``
points at an acknowledged, complete version no older than the last acknowledged promotion, that
versions cut short by a kill (created, not acknowledged) hold a complete artefact too, and that a
rollback still works.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The registered model the registrar writes (not one the service loads).
MODEL = "crash-model"
ARTEFACT_BYTES = 4096


def _note(out: Any, **entry: Any) -> None:
    out.write(json.dumps(entry) + "\n")
    out.flush()


def registrar(acks: Path, staging: Path) -> None:
    """Register and promote versions of :data:`MODEL` until killed."""
    from genai_factory.config import load_settings
    from genai_factory.mlops.registry import ADAPTER_KIND, BASE_REF_TAG, KIND_TAG, ModelRegistry

    registry = ModelRegistry(load_settings())
    staging.mkdir(parents=True, exist_ok=True)
    with acks.open("a", encoding="utf-8") as out:
        _note(out, op="ready", pid=os.getpid())
        for step in range(1_000_000):
            payload = os.urandom(ARTEFACT_BYTES)
            digest = hashlib.sha256(payload).hexdigest()
            artefact = staging / f"{os.getpid()}-{step}" / "adapter.gguf"
            artefact.parent.mkdir()
            artefact.write_bytes(payload)
            tags = {KIND_TAG: ADAPTER_KIND, BASE_REF_TAG: "base"} if step % 2 else {}
            _note(out, op="start", sha256=digest)
            created = registry.register(MODEL, artefact, tags={**tags, "sha256": digest})
            _note(out, op="registered", version=created.version, sha256=digest)
            registry.promote(MODEL, created.version)
            _note(out, op="promoted", version=created.version)


class Registrar:
    """This file run as a script: a child process writing to the registry."""

    def __init__(self, env: dict[str, str], work_dir: Path) -> None:
        self._env = env
        self.acks = work_dir / "registry-acks.jsonl"
        self._staging = work_dir / "registry-staging"
        self._log = work_dir / "registrar.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.kills: list[str] = []

    def start(self) -> None:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            str(self.acks),
            str(self._staging),
        ]
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(  # fixed argument list, no shell
                command, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        self._seen = len(read_acks(self.acks))

    def wait_acknowledged(self, timeout_s: float) -> None:
        """Wait until this process acknowledged a registration (or died, or ``timeout_s``)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            if any(a["op"] == "registered" for a in read_acks(self.acks)[self._seen :]):
                return
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL; note the step the kill interrupted (the last acknowledgement's successor)."""
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        last = read_acks(self.acks)[self._seen :]
        following = {"ready": "register", "start": "register", "registered": "promote"}
        self.kills.append(following.get(last[-1]["op"], "artefact") if last else "startup")

    def log_tail(self) -> str:
        return self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""


def read_acks(path: Path) -> list[dict[str, Any]]:
    """The acknowledgement lines; a line torn by the kill is not an acknowledgement."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


@dataclass
class RegistryCheck:
    """The registry after the kills, read directly."""

    opened: bool
    error: str | None = None
    #: Which step each kill interrupted: register, promote, artefact (writing it), startup.
    kills_during: list[str] = field(default_factory=list)
    acknowledged: int = 0
    acknowledged_found: int = 0
    #: Versions created by a call the kill cut short (not acknowledged).
    unacknowledged: int = 0
    unacknowledged_complete: int = 0
    champion: int | None = None
    champion_complete: bool = False
    last_acknowledged_promotion: int | None = None
    #: The champion as the restarted service reports it (``/v1/admin/mlops``).
    service_champion: int | None = None
    rolled_back_to: int | None = None

    @property
    def passed(self) -> bool:
        return (
            self.opened
            and self.acknowledged > 0
            and self.acknowledged_found == self.acknowledged
            and self.unacknowledged_complete == self.unacknowledged
            and self.champion_complete
            and self.service_champion == self.champion
            and self.rolled_back_to is not None
        )


def _complete(registry: Any, version: int, digests: set[str]) -> bool:
    """The version's artefact is readable and its bytes are one of ``digests``."""
    try:
        path = registry.download(MODEL, version)
        data = path.read_bytes() if path.is_file() else (path / "adapter.gguf").read_bytes()
    except Exception:  # a missing or unreadable artefact is the finding
        return False
    return hashlib.sha256(data).hexdigest() in digests


def check_registry(
    settings: Any, acks: list[dict[str, Any]], service_champion: int | None
) -> RegistryCheck:
    """Open the store and check it against the acknowledgements (see the module docstring)."""
    from genai_factory.mlops.registry import CHAMPION, ModelRegistry

    registered = {a["version"]: a["sha256"] for a in acks if a["op"] == "registered"}
    started = {a["sha256"] for a in acks if a["op"] == "start"}
    promoted = [a["version"] for a in acks if a["op"] == "promoted"]
    try:
        registry = ModelRegistry(settings)
        versions = {v.version: v for v in registry.list(MODEL)}
    except Exception as exc:  # the store failing to open is the finding
        error = f"{type(exc).__name__}: {exc}"
        return RegistryCheck(opened=False, error=error, acknowledged=len(registered))
    check = RegistryCheck(opened=True, acknowledged=len(registered))
    check.acknowledged_found = sum(
        version in versions and _complete(registry, version, {digest})
        for version, digest in registered.items()
    )
    cut = [v for v in versions if v not in registered]
    check.unacknowledged = len(cut)
    check.unacknowledged_complete = sum(_complete(registry, v, started) for v in cut)
    champion = registry.by_alias(MODEL, CHAMPION)
    check.champion = None if champion is None else champion.version
    check.last_acknowledged_promotion = promoted[-1] if promoted else None
    check.champion_complete = (
        champion is not None
        and champion.version in registered
        and _complete(registry, champion.version, {registered[champion.version]})
        and champion.version >= (check.last_acknowledged_promotion or 0)
    )
    check.service_champion = service_champion
    try:
        restored = registry.rollback(MODEL)
        if restored.version in registered and restored.version != check.champion:
            check.rolled_back_to = restored.version
    except Exception as exc:
        check.error = f"rollback: {type(exc).__name__}: {exc}"
    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("acks", type=Path)
    parser.add_argument("staging", type=Path)
    args = parser.parse_args()
    registrar(args.acks, args.staging)


if __name__ == "__main__":
    main()

"""Structured logs: JSON lines carry the request's trace id and key id."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from genai_factory.observability.logging import configure_logging, wants_json


@pytest.fixture
def restore_logging() -> Iterator[None]:
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_bound_trace_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json_logs=True)
    with structlog.contextvars.bound_contextvars(trace_id="ab" * 16, key_id="3f9a0c1b2d4e"):
        structlog.get_logger("test.json").info("http_request", status=200)
        logging.getLogger("uvicorn.error").warning("from the standard library")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["event"] == "http_request" and lines[0]["status"] == 200
    assert all(line["trace_id"] == "ab" * 16 for line in lines)
    assert lines[0]["key_id"] == "3f9a0c1b2d4e" and lines[0]["level"] == "info"
    assert lines[1]["event"] == "from the standard library"


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_auto_means_json_unless_a_person_watches(monkeypatch: pytest.MonkeyPatch) -> None:
    assert wants_json(True) is True and wants_json(False) is False
    monkeypatch.setattr(sys, "stderr", Stream(tty=False))
    assert wants_json("auto") is True
    monkeypatch.setattr(sys, "stderr", Stream(tty=True))
    assert wants_json("auto") is False


SECRET_KEY = "gf_3f9a0c1b2d4e_s3cr3tS3CR3Ts3cr3tS3CR3T"


def _fail_with_a_key_in_scope() -> None:
    headers = {"authorization": f"Bearer {SECRET_KEY}"}  # a local the traceback must not show
    body = "x" * 50_000
    raise RuntimeError(f"upstream refused {len(headers)} headers and {len(body)} bytes")


@pytest.mark.parametrize("json_logs", [True, False])
@pytest.mark.usefixtures("restore_logging")
def test_tracebacks_carry_no_locals_and_secrets_are_masked(
    json_logs: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", json_logs=json_logs)
    log = structlog.get_logger("test.secrets")
    try:
        _fail_with_a_key_in_scope()
    except RuntimeError:
        log.exception("request_failed", presented=f"Bearer {SECRET_KEY}")
    logging.getLogger("uvicorn.error").error("key %s leaked", SECRET_KEY)
    err = capsys.readouterr().err
    assert "upstream refused" in err and "_fail_with_a_key_in_scope" in err
    assert "s3cr3tS3CR3T" not in err and "gf_3f9a0c1b2d4e_***" in err
    assert "xxxxxxxxxx" not in err  # no local variable rendered
    assert max(len(line) for line in err.splitlines()) < 10_000

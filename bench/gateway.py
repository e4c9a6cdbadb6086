"""Gateway throughput and latency: ``/v1/chat/completions`` through this service and through LiteLLM.

Both gateways stand in front of the same stub OpenAI-compatible upstream (``bench/stub_upstream.py``,
its own process) and are loaded by the same ``wrk`` command (same connections, threads, duration
and request body). Each runs as one process with one worker:

* **genai-factory**: ``genai-factory serve`` with ``llm.provider=openai_compatible`` pointing to the
  stub, auth on (a key made by ``genai-factory keys create`` with high ``--rpm``/``--tpm`` and
  ``--budget-usd``), a price for the stub model, so every request is authenticated, counted against
  the key's requests and tokens per minute, and reserves then settles its worst-case cost against
  the budget; the spend ledger, interaction log, metrics and traces stay on as configured by
  default, and so do the default guards of the ``chat`` route (input and output; ``--no-guards``
  turns them off).
* **litellm**: the LiteLLM proxy (``litellm --config``) with a master key (virtual keys, budgets and
  rate limits need its PostgreSQL database and are not configured), telemetry off. The version is
  pinned (:data:`LITELLM_VERSION`).

Rounds are interleaved (ours, LiteLLM, ours, LiteLLM, ...) after a warm-up of each, so machine noise
hits both alike; the table shows the median of the rounds and the ratios ours / LiteLLM.
Targets: throughput >= 4x LiteLLM's and p99 <= 0.25x LiteLLM's; with ``--stream``, the time to the
first byte of a streamed completion (p99) <= 0.25x LiteLLM's.

``--layers`` measures, in the same rounds, what each layer of this service costs: the bare
upstream (wrk straight to the stub), then this service with auth only (a key without limits or
budget, no guards, metrics, access log or traces), + rate limits and budget, + guards, and
+ logging, metrics and tracing (the full service measured above).

    flock /tmp/genai-cpu.lock .venv/bin/python bench/gateway.py [--rounds 3] [--duration 12]
        [--connections 16] [--threads 1] [--litellm PATH] [--no-guards] [--layers] [--stream]
        [--only ours|litellm] [--json]

Needs ``wrk`` (``apt-get install wrk``) and, for the LiteLLM side, LiteLLM installed outside this
project's environment: ``python3 -m venv /tmp/litellm-venv &&
/tmp/litellm-venv/bin/pip install 'litellm[proxy]==1.100.0'``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
MODEL = "stub-model"
#: USD per million tokens for the stub model (what a small hosted model costs).
PRICE = {"input_per_million": 0.15, "output_per_million": 0.60}
LITELLM_FALLBACK = Path("/tmp/litellm-venv/bin/litellm")
LITELLM_MASTER_KEY = "sk-bench-master-key"
#: The LiteLLM release measured against. Pinned so that runs compare with the same peer: of the
#: releases that install on this machine (Python 3.11, the package index available here), 1.100.0
#: served the most requests per second in front of the stub, so the ratios are against the
#: fastest LiteLLM we can run, not against a slower release.
LITELLM_VERSION = "1.100.0"
LITELLM_INSTALL = (
    "python3 -m venv /tmp/litellm-venv && "
    f"/tmp/litellm-venv/bin/pip install 'litellm[proxy]=={LITELLM_VERSION}'"
)
BODY = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "In one sentence: what does a circuit breaker do?"},
    ],
    "max_tokens": 32,
    "temperature": 0,
}
TARGET_THROUGHPUT = 4.0
TARGET_P99 = 0.25


class BenchError(Exception):
    """A clear reason why the benchmark cannot run (printed without a traceback)."""


@dataclass(frozen=True)
class WrkRun:
    """One wrk run: throughput, latency percentiles (ms) and failed requests."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if match is None:
        raise BenchError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkRun:
    """The figures of ``wrk --latency`` output (raises :class:`BenchError` when they are missing)."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p50 and p99 and total):
        raise BenchError(f"cannot read wrk's output:\n{output}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkRun(
        float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), int(total.group(1)), errors
    )


def median_run(runs: list[WrkRun]) -> WrkRun:
    """Each figure's median over the rounds."""
    return WrkRun(
        requests_per_s=statistics.median(r.requests_per_s for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        requests=sum(r.requests for r in runs),
        errors=sum(r.errors for r in runs),
    )


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(
    name: str, command: list[str], log_dir: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in its own session (output to ``<log_dir>/<name>.log``); stop it after."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        try:
            yield child
        finally:
            _stop(child)


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def wait_ready(
    url: str, child: subprocess.Popen[bytes], log: Path, *, timeout_s: float = 180.0
) -> None:
    """Poll ``url`` until it answers 200 (raises :class:`BenchError` when the process dies)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise BenchError(f"{log.stem} exited with {child.returncode}; its log ends:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise BenchError(f"{log.stem} was not ready at {url} after {timeout_s:.0f} s (log: {log})")


def check_completion(base_url: str, api_key: str) -> None:
    """One request through the gateway before measuring: it must answer 200 with a completion."""
    request = urllib.request.Request(
        f"{base_url}/v1/chat/completions",
        data=json.dumps(BODY).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {api_key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise BenchError(f"{base_url} answered {exc.code}: {exc.read()[:500]!r}") from exc
    if not body.get("choices"):
        raise BenchError(f"{base_url} sent no completion: {body}")


# -- the two gateways -----------------------------------------------------------------------------


def ours_env(
    data_dir: Path, upstream: str, *, guards: bool, telemetry: bool = True
) -> dict[str, str]:
    env = {
        "GENAI_DATA_DIR": str(data_dir),
        "GENAI_LLM__PROVIDER": "openai_compatible",
        "GENAI_LLM__BASE_URL": upstream,
        "GENAI_LLM__MODEL": MODEL,
        "GENAI_LLM__PRICING": json.dumps({MODEL: PRICE}),
        "GENAI_AUTH__ENABLED": "true",
        # The completions route uses neither retrieval nor embeddings; skip loading them.
        "GENAI_EMBEDDINGS__PROVIDER": "fake",
        "GENAI_RAG__KNOWLEDGE_DIRS": "[]",
        "GENAI_RAG__INGEST_ON_START": "false",
        "GENAI_SAFETY__ENABLED": "true" if guards else "false",
        "GENAI_OBSERVABILITY__JSON_LOGS": "true",
    }
    if not telemetry:  # the layers below "+ logging, metrics and tracing"
        env["GENAI_OBSERVABILITY__METRICS_ENABLED"] = "false"
        env["GENAI_OBSERVABILITY__ACCESS_LOG"] = "false"
        env["GENAI_OBSERVABILITY__TRACE_SAMPLE_RATIO"] = "0"
    return env


def create_key(cli: Path, env: Mapping[str, str], *, limits: bool = True) -> str:
    """A key with limits far above the load (so limits are checked, never hit) and a budget;
    with ``limits=False`` a key without limits or budget (authentication alone)."""
    command = [str(cli), "keys", "create", "--name", "bench", "--json"]
    if limits:
        command += ["--rpm", "100000000", "--tpm", "1000000000", "--budget-usd", "1000000"]
    else:
        command += ["--rpm", "0", "--tpm", "0"]
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"`genai-factory keys create` failed:\n{done.stderr[-2000:]}")
    return str(json.loads(done.stdout)["key"])


def resolve_litellm(given: str | None) -> Path:
    """The ``litellm`` executable: ``--litellm``, else on PATH, else the benchmark's venv."""
    candidates = [given] if given else [shutil.which("litellm"), str(LITELLM_FALLBACK)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    where = given or f"PATH or {LITELLM_FALLBACK}"
    raise BenchError(
        f"no litellm executable found ({where}). Install LiteLLM outside this project's "
        f"environment:\n  {LITELLM_INSTALL}\nthen pass --litellm /tmp/litellm-venv/bin/litellm "
        "(or --only ours to measure this service alone)."
    )


def litellm_config(path: Path, upstream: str) -> None:
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": upstream,
                    "api_key": "stub",
                },
            }
        ],
        "general_settings": {"master_key": LITELLM_MASTER_KEY},
        "litellm_settings": {"telemetry": False, "drop_params": True},
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML


LITELLM_ENV = {
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price map at start-up
    "LITELLM_LOG": "ERROR",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
}


@dataclass
class Target:
    """A gateway ready for load: its name, completions URL and bearer key."""

    name: str
    base_url: str
    api_key: str


@dataclass(frozen=True)
class Layer:
    """One configuration of this service in the per-layer table."""

    name: str
    label: str
    limits: bool
    guards: bool
    telemetry: bool


#: The layers measured by ``--layers``, cheapest first; the full service (``genai-factory``,
#: with telemetry) is the last row.
LAYERS = (
    Layer(
        "layer-auth", "+ auth, ledger, interaction log", limits=False, guards=False, telemetry=False
    ),
    Layer("layer-limits", "+ limits and budget", limits=True, guards=False, telemetry=False),
    Layer("layer-guards", "+ guards", limits=True, guards=True, telemetry=False),
)


def start_ours(stack: ExitStack, work: Path, upstream: str, layer: Layer) -> Target:
    cli = Path(sys.executable).parent / "genai-factory"
    env = ours_env(work / layer.name, upstream, guards=layer.guards, telemetry=layer.telemetry)
    key = create_key(cli, env, limits=layer.limits)
    port = free_port()
    command = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port)]
    child = stack.enter_context(process(layer.name, command, work, env))
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/readyz", child, work / f"{layer.name}.log")
    check_completion(base, key)
    return Target(layer.name, base, key)


def start_litellm(stack: ExitStack, work: Path, upstream: str, executable: Path) -> Target:
    config = work / "litellm.yaml"
    litellm_config(config, upstream)
    port = free_port()
    command = [str(executable), "--config", str(config), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--num_workers", "1"]
    child = stack.enter_context(process("litellm", command, work, LITELLM_ENV))
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/health/liveliness", child, work / "litellm.log")
    check_completion(base, LITELLM_MASTER_KEY)
    return Target("litellm", base, LITELLM_MASTER_KEY)


# -- load -----------------------------------------------------------------------------------------


def lua_script(path: Path, api_key: str) -> None:
    """The wrk script: the same POST for both gateways, only the key differs."""
    body = json.dumps(BODY).replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {api_key}"\n'
    )


def run_wrk(target: Target, work: Path, args: argparse.Namespace, duration: int) -> WrkRun:
    script = work / f"post-{target.name}.lua"
    lua_script(script, target.api_key)
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s", "--latency"]
    command += ["-s", str(script), f"{target.base_url}/v1/chat/completions"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


@dataclass(frozen=True)
class StreamRun:
    """Streamed completions of one round: time to the first byte of the body (ms)."""

    requests: int
    ttfb_p50_ms: float
    ttfb_p99_ms: float
    errors: int


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _stream_request(target: Target, host: str) -> bytes:
    body = json.dumps({**BODY, "stream": True}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\n"
        f"content-type: application/json\r\nauthorization: Bearer {target.api_key}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[bool, float]:
    """Read one response; whether it was a 200 and when its body's first byte came."""
    ok = (await reader.readline()).split(b" ")[1:2] == [b"200"]
    chunked, length = False, 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif name == "content-length":
            length = int(value)
    if not chunked:
        await reader.readexactly(length)
        return ok, time.perf_counter()
    first = 0.0
    while size := int((await reader.readline()).split(b";")[0], 16):
        await reader.readexactly(size + 2)
        first = first or time.perf_counter()
    await reader.readline()
    return ok, first


async def _stream_connection(
    target: Target, until: float, ttfbs: list[float], errors: list[int]
) -> None:
    host, _, port = target.base_url.removeprefix("http://").partition(":")
    request = _stream_request(target, f"{host}:{port}")
    while time.perf_counter() < until:
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            errors.append(1)
            continue
        try:
            while time.perf_counter() < until:
                sent = time.perf_counter()
                writer.write(request)
                ok, first = await _read_response(reader)
                if ok:
                    ttfbs.append((first - sent) * 1000)
                else:
                    errors.append(1)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            errors.append(1)
        finally:
            writer.close()


def run_stream(target: Target, connections: int, duration: float) -> StreamRun:
    """``connections`` keep-alive clients post streamed completions for ``duration`` seconds."""
    ttfbs: list[float] = []
    errors: list[int] = []

    async def load() -> None:
        until = time.perf_counter() + duration
        clients = (_stream_connection(target, until, ttfbs, errors) for _ in range(connections))
        await asyncio.gather(*clients)

    asyncio.run(load())
    if not ttfbs:
        raise BenchError(f"{target.name} answered no streamed completion")
    return StreamRun(len(ttfbs), _percentile(ttfbs, 0.5), _percentile(ttfbs, 0.99), len(errors))


@dataclass
class Runs:
    """Every round's figures: wrk per target, streamed TTFB per compared gateway."""

    wrk: dict[str, list[WrkRun]]
    stream: dict[str, list[StreamRun]]


def measure(
    targets: list[Target], streamed: list[Target], work: Path, args: argparse.Namespace
) -> Runs:
    for target in targets:
        print(f"warm-up {target.name} ({args.warmup} s)", file=sys.stderr, flush=True)
        run_wrk(target, work, args, args.warmup)
    runs = Runs({t.name: [] for t in targets}, {t.name: [] for t in streamed})
    for round_no in range(1, args.rounds + 1):
        for target in targets:
            run = run_wrk(target, work, args, args.duration)
            runs.wrk[target.name].append(run)
            print(
                f"round {round_no}/{args.rounds} {target.name:<14} {run.requests_per_s:8.1f} req/s"
                f"  p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms  errors {run.errors}",
                file=sys.stderr,
                flush=True,
            )
        for target in streamed:
            ttfb = run_stream(target, args.connections, args.stream_duration)
            runs.stream[target.name].append(ttfb)
            print(
                f"round {round_no}/{args.rounds} {target.name:<14} stream {ttfb.requests} requests"
                f"  TTFB p50 {ttfb.ttfb_p50_ms:7.2f} ms  p99 {ttfb.ttfb_p99_ms:7.2f} ms"
                f"  errors {ttfb.errors}",
                file=sys.stderr,
                flush=True,
            )
    return runs


# -- report ---------------------------------------------------------------------------------------

#: The rows of the per-layer table: target name and label.
LAYER_ROWS = (
    ("upstream", "bare upstream (wrk to the stub)"),
    *((layer.name, layer.label) for layer in LAYERS),
    ("genai-factory", "+ logging, metrics and tracing"),
)


def _layer_table(medians: Mapping[str, WrkRun]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    previous: float | None = None
    for name, label in LAYER_ROWS:
        m = medians.get(name)
        if m is None:
            continue
        ms_per_request = 1000.0 / m.requests_per_s
        rows.append(
            {
                "layer": label,
                "requests_per_s": m.requests_per_s,
                "p50_ms": m.p50_ms,
                "p99_ms": m.p99_ms,
                "ms_per_request": round(ms_per_request, 3),
                "added_ms": None if previous is None else round(ms_per_request - previous, 3),
            }
        )
        previous = ms_per_request
    return rows


def _stream_medians(runs: Mapping[str, list[StreamRun]]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "requests": sum(r.requests for r in rs),
            "ttfb_p50_ms": statistics.median(r.ttfb_p50_ms for r in rs),
            "ttfb_p99_ms": statistics.median(r.ttfb_p99_ms for r in rs),
            "errors": sum(r.errors for r in rs),
        }
        for name, rs in runs.items()
        if rs
    }


def report(runs: Runs, args: argparse.Namespace, litellm_version: str | None) -> dict[str, object]:
    medians = {name: median_run(r) for name, r in runs.wrk.items()}
    compared = {n: m for n, m in medians.items() if n in ("genai-factory", "litellm")}
    result: dict[str, object] = {
        "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration}s --latency",
        "rounds": args.rounds,
        "guards": args.guards,
        "litellm_version": litellm_version,
        "load_average": list(os.getloadavg()),
        "median": {name: asdict(m) for name, m in compared.items()},
        "runs": {name: [asdict(r) for r in rs] for name, rs in runs.wrk.items()},
    }
    ours, theirs = medians.get("genai-factory"), medians.get("litellm")
    if ours is not None and theirs is not None:
        throughput = ours.requests_per_s / theirs.requests_per_s
        p99 = ours.p99_ms / theirs.p99_ms
        result["ratios"] = {
            "throughput": round(throughput, 2),
            "p50": round(ours.p50_ms / theirs.p50_ms, 3),
            "p99": round(p99, 3),
            "throughput_target_met": throughput >= TARGET_THROUGHPUT,
            "p99_target_met": p99 <= TARGET_P99,
        }
    stream = _stream_medians(runs.stream)
    if stream:
        result["stream"] = stream
        result["stream_runs"] = {n: [asdict(r) for r in rs] for n, rs in runs.stream.items()}
    if "genai-factory" in stream and "litellm" in stream:
        ttfb = stream["genai-factory"]["ttfb_p99_ms"] / stream["litellm"]["ttfb_p99_ms"]
        result["stream_ratio"] = {
            "ttfb_p99": round(ttfb, 3),
            "ttfb_p99_target_met": ttfb <= TARGET_P99,
        }
    if args.layers:
        result["layers"] = _layer_table(medians)
    return result


def _print_layers(rows: object) -> None:
    assert isinstance(rows, list)
    print(f"\n{'layer':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ms/req':>9}{'added':>9}")
    for row in rows:
        added = "" if row["added_ms"] is None else f"{row['added_ms']:+.3f}"
        print(
            f"{row['layer']:<34}{row['requests_per_s']:>9.1f}{row['p50_ms']:>9.2f}"
            f"{row['p99_ms']:>9.2f}{row['ms_per_request']:>9.3f}{added:>9}"
        )


def print_table(result: dict[str, object]) -> None:
    medians = result["median"]
    assert isinstance(medians, dict)
    print(
        f"\nwrk {result['wrk']}, median of {result['rounds']} rounds, guards {result['guards']}, "
        f"LiteLLM {result['litellm_version']}"
    )
    print(f"{'gateway':<15}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, m in medians.items():
        print(
            f"{name:<15}{m['requests_per_s']:>10.1f}{m['p50_ms']:>10.2f}{m['p99_ms']:>10.2f}"
            f"{m['errors']:>8}"
        )
    met = {True: "met", False: "MISSED"}
    ratios = result.get("ratios")
    if isinstance(ratios, dict):
        print(
            f"\nthroughput ratio {ratios['throughput']:.2f}x (target >= {TARGET_THROUGHPUT}x: "
            f"{met[ratios['throughput_target_met']]}); p50 ratio {ratios['p50']:.3f}; "
            f"p99 ratio {ratios['p99']:.3f} (target <= {TARGET_P99}: {met[ratios['p99_target_met']]})"
        )
    stream = result.get("stream")
    if isinstance(stream, dict):
        print(f"\n{'streamed':<15}{'requests':>10}{'TTFB p50':>10}{'TTFB p99':>10}{'errors':>8}")
        for name, m in stream.items():
            print(
                f"{name:<15}{m['requests']:>10}{m['ttfb_p50_ms']:>10.2f}"
                f"{m['ttfb_p99_ms']:>10.2f}{m['errors']:>8}"
            )
    stream_ratio = result.get("stream_ratio")
    if isinstance(stream_ratio, dict):
        print(
            f"TTFB p99 ratio {stream_ratio['ttfb_p99']:.3f} "
            f"(target <= {TARGET_P99}: {met[stream_ratio['ttfb_p99_target_met']]})"
        )
    if "layers" in result:
        _print_layers(result["layers"])
    load = result["load_average"]
    assert isinstance(load, list)
    print(f"load average after the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def litellm_version(executable: Path) -> str:
    """The installed LiteLLM's version (read from its own environment)."""
    python = executable.parent / "python"
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


FULL = Layer("genai-factory", "full", limits=True, guards=True, telemetry=True)


def run(args: argparse.Namespace) -> dict[str, object]:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: apt-get install -y wrk")
    executable = resolve_litellm(args.litellm) if args.only != "ours" else None
    version = litellm_version(executable) if executable is not None else None
    if version is not None and version != LITELLM_VERSION:
        print(
            f"warning: LiteLLM {version} installed, the benchmark pins {LITELLM_VERSION}",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        port = free_port()
        stub_cmd = [sys.executable, str(BENCH_DIR / "stub_upstream.py"), "--port", str(port)]
        stub = stack.enter_context(process("stub", stub_cmd, work))
        upstream = f"http://127.0.0.1:{port}/v1"
        wait_ready(f"{upstream}/models", stub, work / "stub.log", timeout_s=20)
        targets: list[Target] = []
        if args.layers:
            targets.append(Target("upstream", f"http://127.0.0.1:{port}", "stub"))
            targets += [start_ours(stack, work, upstream, layer) for layer in LAYERS]
        if args.only != "litellm":
            full = Layer(FULL.name, FULL.label, limits=True, guards=args.guards, telemetry=True)
            targets.append(start_ours(stack, work, upstream, full))
        if executable is not None:
            targets.append(start_litellm(stack, work, upstream, executable))
        compared = [t for t in targets if t.name in ("genai-factory", "litellm")]
        streamed = compared if args.stream else []
        if args.keep_logs:
            print(f"logs in {work}", file=sys.stderr)
        runs = measure(targets, streamed, work, args)
        if args.keep_logs:
            shutil.copytree(work, args.keep_logs, dirs_exist_ok=True)
    return report(runs, args, version)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--litellm", help="path to the litellm executable")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=12, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per gateway")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--no-guards", dest="guards", action="store_false", help="turn the chat route's guards off"
    )
    parser.add_argument("--layers", action="store_true", help="measure each layer's cost too")
    parser.add_argument("--stream", action="store_true", help="measure streamed TTFB too")
    parser.add_argument(
        "--stream-duration", type=float, default=6.0, help="seconds of streamed load per round"
    )
    parser.add_argument("--only", choices=["ours", "litellm"], help="measure one gateway alone")
    parser.add_argument("--keep-logs", type=Path, help="copy the processes' logs here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    try:
        result = run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

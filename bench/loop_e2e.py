"""The MLOps loop end to end, for real: fine-tune, gate, promote, hot-swap under live traffic.

Everything runs in a fresh data directory on embedded defaults, through the factory's own commands:

1. **data** — ``genai-factory train data`` builds the training set from the shared SQuAD 2.0
   questions (half of the articles; the other half is written as the held-out questions) and
   questions built from the bundled user guide, all in the assistant's RAG prompt.
2. **seed** — a champion to challenge is registered and promoted in the MLflow registry: the
   bundled SmolLM2 as shipped without adapter (``--champion base``, the default) or with the
   shipped LoRA adapter (``--champion shipped``). The evaluation suite is written beside it: the
   held-out questions (``--eval-limit`` of them) answered by the challenger and the champion in the
   service's RAG prompt, and the gates below.
3. **serve** — ``genai-factory serve`` starts as a child process on that data directory
   (``mlops.poll_s`` 1 s) and serves the champion.
4. **traffic** — client threads send steady ``POST /v1/chat/completions`` requests
   (``--rate`` per second in all) from then until the end; every response names the model that
   answered it.
5. **loop** — ``genai-factory jobs loop --once --force --train-data ... --train-steps N --json``:
   drift check, re-index, LoRA fine-tuning (N steps), the suite, and the promotion if every gate
   passes. Its JSON gives each step's wall time.
6. **swap** — the benchmark waits until the service answers with the new champion, then keeps the
   traffic on a few seconds more.

The gates (``SUITE``), on the held-out articles' questions: the challenger's F1 must beat the
champion's by at least 0.05 (the 5-point bar of docs/mlops.md: a training that taught nothing
fails it), its F1 on the answerable questions and its hallucination rate may not be worse than the
champion's by more than 0.05 (a model that learnt to decline everything, or to invent, fails
them), and its p95 latency must stay under 15 s (the machine is shared with the training and the
service).

It prints the wall time of every phase and of every loop step, the time from the promotion to the
first answer by the new champion, the requests sent and failed, and the model before and after.
Exit status 1 when a request failed, nothing was promoted (the gates refused the challenger: a
valid outcome of the loop, reported as such) or the service did not switch.

    flock /tmp/genai-cpu.lock .venv/bin/python bench/loop_e2e.py [--train-steps 40] [--rate 2]
    make bench-loop
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("GENAI_DATASETS", REPO.parent / "shared" / "datasets"))
#: The factory's command line, run by this interpreter (so a checkout on PYTHONPATH is used).
CLI = [sys.executable, "-m", "genai_factory.cli"]
TARGET_S = 20 * 60

SUITE = """name: loop-bench
candidates: {challenger: challenger, champion: champion}
evaluators:
  - {kind: qa, dataset: heldout.jsonl, limit: %(limit)d, with_context: true}
gates:
  - {metric: qa.f1, min_improvement: 0.05}
  - {metric: qa.has_answer_f1, max_regression: 0.05}
  - {metric: qa.hallucination_rate, max_regression: 0.05}
  - {metric: latency.p95_ms, max: 15000}
"""

QUESTIONS = (
    "Say hello.",
    "What is the capital of France?",
    "Name a primary colour.",
    "How many days are in a week?",
    "What is two plus two?",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_env(**extra: str) -> dict[str, str]:
    """The environment of a child command: this one, with PYTHONPATH made absolute."""
    env = {**os.environ, **extra}
    if env.get("PYTHONPATH"):
        parts = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in parts if p)
    return env


def _say(started: float, message: str) -> None:
    print(f"[{time.monotonic() - started:7.1f} s] {message}", file=sys.stderr, flush=True)


# -- phases before the service ------------------------------------------------------------------
def _write_config(work: Path, threads: int) -> Path:
    config = {
        "data_dir": str(work / "data"),
        "log_level": "warning",
        "observability": {"access_log": False},
        "llm": {"n_threads": threads},
        "mlops": {"poll_s": 1.0, "eval_suite": str(work / "suite.yaml")},
    }
    path = work / "settings.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _train_data(work: Path, config: Path) -> dict[str, Any]:
    from genai_factory.config import bundled_docs_dir

    squad = DATASETS / "squad_v2" / "qa.jsonl"
    if not squad.is_file():
        raise SystemExit(f"SQuAD questions not found: {squad} (set GENAI_DATASETS)")
    command = [
        *CLI, "train", "data", "--squad", str(squad), "--docs", str(bundled_docs_dir()),
        "--holdout-share", "0.5", "--no-feedback", "--out", str(work / "train.jsonl"),
        "--heldout-out", str(work / "heldout.jsonl"), "--config", str(config), "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=_child_env())
    if done.returncode != 0:
        raise SystemExit(f"train data failed:\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _seed_champion(config: Path, champion: str) -> str:
    """Register the champion the loop challenges and promote it; its served model name."""
    from genai_factory.config import load_settings
    from genai_factory.llm.llamacpp import bundled_gguf_path, shipped_adapter_path
    from genai_factory.mlops.registry import ADAPTER_KIND, BASE_REF_TAG, KIND_TAG, ModelRegistry

    settings = load_settings(config)
    registry = ModelRegistry(settings)
    name = settings.mlops.llm_name
    if champion == "shipped":
        adapter = shipped_adapter_path()
        if adapter is None:
            raise SystemExit("this installation has no shipped adapter: use --champion base")
        created = registry.register(
            name,
            adapter,
            alias=None,
            tags={KIND_TAG: ADAPTER_KIND, BASE_REF_TAG: "base"},
            description="the shipped LoRA adapter on the bundled SmolLM2",
        )
    else:
        created = registry.register(
            name, bundled_gguf_path(), alias=None, description="the bundled SmolLM2, no adapter"
        )
    registry.promote(name, created.version)
    return f"{name}:v{created.version}"


# -- the service and its traffic --------------------------------------------------------------
class Service:
    """``genai-factory serve`` as a child process on a free port."""

    def __init__(self, config: Path, log_path: Path, threads: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = _child_env(GENAI_LLM__N_THREADS=str(threads))
        self.command = [
            *CLI, "serve", "--config", str(config), "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 600) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # fixed argument list, no shell
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"the service did not get ready:\n{tail}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@dataclass
class Answer:
    """One request as the client saw it."""

    started: float
    ended: float
    status: str
    model: str = ""


@dataclass
class Traffic:
    """Client threads sending paced chat completions until stopped."""

    url: str
    model: str
    rate: float
    threads: int = 2
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop_event: threading.Event = field(default_factory=threading.Event)
    workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for index in range(self.threads):
            worker = threading.Thread(target=self._send, args=(index,), daemon=True)
            worker.start()
            self.workers.append(worker)

    def stop(self) -> None:
        self.stop_event.set()
        for worker in self.workers:
            worker.join(timeout=180)

    def _send(self, index: int) -> None:
        period = self.threads / self.rate
        number = index
        with httpx.Client(timeout=180) as client:
            while not self.stop_event.is_set():
                started = time.monotonic()
                answer = self._one(client, QUESTIONS[number % len(QUESTIONS)], started)
                with self.lock:
                    self.answers.append(answer)
                number += self.threads
                self.stop_event.wait(max(0.0, period - (time.monotonic() - started)))

    def _one(self, client: httpx.Client, question: str, started: float) -> Answer:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": question}],
            "max_tokens": 8,
        }
        try:
            response = client.post(f"{self.url}/v1/chat/completions", json=body)
        except httpx.HTTPError as exc:
            return Answer(started, time.monotonic(), type(exc).__name__)
        model = response.json().get("model", "") if response.status_code == 200 else ""
        return Answer(started, time.monotonic(), str(response.status_code), str(model))

    def snapshot(self) -> list[Answer]:
        with self.lock:
            return list(self.answers)

    def first_from(self, model: str) -> Answer | None:
        found = [a for a in self.snapshot() if a.model == model]
        return min(found, key=lambda a: a.ended) if found else None


class ChampionWatch:
    """Notes when the registry's champion changes (the moment of the promotion)."""

    def __init__(self, config: Path) -> None:
        from genai_factory.config import load_settings

        self.settings = load_settings(config)
        self.changed: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _watch(self) -> None:
        from genai_factory.mlops.registry import ModelRegistry

        registry = ModelRegistry(self.settings)
        name = self.settings.mlops.llm_name
        while not self._stop.wait(0.5):
            try:
                found = registry.by_alias(name, "champion")
            except Exception:  # a locked store: ask again at the next tick
                continue
            if found is not None and found.version not in self.changed:
                self.changed[found.version] = time.monotonic()


# -- the loop ---------------------------------------------------------------------------------
def _run_loop(config: Path, work: Path, steps: int, started: float) -> dict[str, Any]:
    command = [
        *CLI, "jobs", "loop", "--once", "--force", "--train-data", str(work / "train.jsonl"),
        "--train-steps", str(steps), "--suite", str(work / "suite.yaml"),
        "--config", str(config), "--json",
    ]  # fmt: skip
    _say(started, "$ " + " ".join(["genai-factory", *command[len(CLI) :]]))
    process = subprocess.Popen(  # fixed argument list, no shell
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env()
    )
    assert process.stderr is not None and process.stdout is not None
    errors: list[str] = []
    with (work / "loop.log").open("w", encoding="utf-8") as log:
        for line in process.stderr:  # the step announcements as they come; the rest to loop.log
            log.write(line)
            errors.append(line)
            if line.startswith("loop") or "error" in line.lower():
                _say(started, "  " + line.rstrip())
    output = process.stdout.read()
    if process.wait() != 0:
        tail = "".join(errors[-40:])
        raise SystemExit(f"jobs loop failed (exit {process.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(output)
    return result


def _wait_for_swap(traffic: Traffic, model: str, timeout_s: float) -> Answer | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        first = traffic.first_from(model)
        if first is not None:
            return first
        time.sleep(0.2)
    return None


# -- the report -------------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _traffic_report(answers: list[Answer], new_model: str, seen: Answer | None) -> dict[str, Any]:
    latencies = [a.ended - a.started for a in answers if a.status == "200"]
    failed = [a for a in answers if a.status != "200"]
    span = (max(a.ended for a in answers) - min(a.started for a in answers)) if answers else 0.0
    after = [a for a in answers if seen is not None and a.started > seen.ended]
    return {
        "sent": len(answers),
        "failed": len(failed),
        "failures": dict(Counter(a.status for a in failed)),
        "rate_per_s": round(len(answers) / span, 2) if span else 0.0,
        "latency_p50_s": round(statistics.median(latencies), 2) if latencies else 0.0,
        "latency_p95_s": round(_percentile(latencies, 95), 2),
        "latency_max_s": round(max(latencies), 2) if latencies else 0.0,
        "models": dict(Counter(a.model for a in answers if a.model)),
        "after_swap_not_new": sum(a.model != new_model for a in after if a.status == "200"),
    }


def _print_report(report: dict[str, Any]) -> None:
    print("\nphase                wall time")
    for name, seconds in report["phases"].items():
        print(f"  {name:18} {seconds:8.1f} s")
    print("\nloop step            wall time  outcome")
    for step in report["loop"]["steps"]:
        gates = step["detail"].get("gates", [])
        outcome = step["outcome"].split(": FAILED")[0] if gates else step["outcome"]
        print(f"  {step['name']:18} {step['seconds']:8.1f} s  {outcome}")
        if step["name"] == "train":
            detail = step["detail"]
            print(
                f"  {'':18} {'':10}  of which {detail['train_seconds']:.1f} s in "
                f"{detail['steps']} steps ({detail['train_seconds'] / detail['steps']:.1f} s/step); "
                f"{detail['skipped_too_long']} rows over the length limit skipped"
            )
        for line in gates:
            print(f"  {'':18} {'':10}  {line}")
    print(f"  {'loop total':18} {report['loop']['seconds']:8.1f} s")
    traffic = report["traffic"]
    print(
        f"\nrequests: {traffic['sent']} sent, {traffic['failed']} failed "
        f"{traffic['failures'] or ''}; {traffic['rate_per_s']}/s; latency p50 "
        f"{traffic['latency_p50_s']} s, p95 {traffic['latency_p95_s']} s, max "
        f"{traffic['latency_max_s']} s"
    )
    print(f"answered by: {traffic['models']}")
    print(f"served before: {report['before']}; after: {report['after'] or '-'}")
    swap = report["swap_s"]
    print(
        "promotion → first answer by the new champion: "
        + (f"{swap:.1f} s" if swap is not None else "not seen")
    )
    total = report["total_s"]
    verdict = "met" if total <= TARGET_S else "missed"
    print(f"total wall time: {total:.1f} s ({total / 60:.1f} min; target ≤ 20 min {verdict})")
    for problem in report["problems"]:
        print(f"PROBLEM: {problem}")


def _problems(report: dict[str, Any]) -> list[str]:
    problems = []
    traffic = report["traffic"]
    if report["before"] != report["seeded"]:
        problems.append(f"the service served {report['before']}, not the seeded champion")
    if traffic["failed"]:
        problems.append(f"{traffic['failed']} request(s) failed: {traffic['failures']}")
    if not report["promoted_version"]:
        evaluate = [s for s in report["loop"]["steps"] if s["name"] == "evaluate"]
        why = evaluate[0]["outcome"] if evaluate else "the loop did not evaluate"
        problems.append(f"nothing was promoted ({why}); the gates judged honestly")
    elif report["after"] is None:
        problems.append("the service did not switch to the new champion")
    elif traffic["after_swap_not_new"]:
        problems.append(
            f"{traffic['after_swap_not_new']} request(s) after the switch had the old model"
        )
    return problems


# -- the run ----------------------------------------------------------------------------------
def _promoted_version(loop: dict[str, Any]) -> int | None:
    for step in loop["steps"]:
        if step["name"] == "evaluate" and "promoted" in step["detail"]:
            return int(step["detail"]["promoted"])
    return None


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    started = time.monotonic()
    phases: dict[str, float] = {}

    def phase(name: str, since: float) -> None:
        phases[name] = round(time.monotonic() - since, 1)

    config = _write_config(work, args.llm_threads)
    mark = time.monotonic()
    data = _train_data(work, config)
    phase("train data", mark)
    _say(started, f"training set: {data['examples']} rows ({data['documents']} from the guide)")
    mark = time.monotonic()
    before = _seed_champion(config, args.champion)
    (work / "suite.yaml").write_text(SUITE % {"limit": args.eval_limit}, encoding="utf-8")
    phase("seed champion", mark)
    _say(started, f"champion: {before}; starting the service")
    service = Service(config, work / "service.log", args.llm_threads)
    watch = ChampionWatch(config)
    traffic: Traffic | None = None
    try:
        mark = time.monotonic()
        service.start()
        phase("service start", mark)
        from genai_factory.config import load_settings

        traffic = Traffic(service.url, load_settings(config).llm.model, args.rate)
        traffic.start()
        watch.start()
        mark = time.monotonic()
        loop = _run_loop(config, work, args.train_steps, started)
        phase("jobs loop", mark)
        version = _promoted_version(loop)
        new_model = f"{load_settings(config).mlops.llm_name}:v{version}" if version else ""
        seen = _wait_for_swap(traffic, new_model, args.swap_timeout) if version else None
        if seen is not None:
            time.sleep(args.after_s)  # the traffic goes on: every later answer must be the new one
    finally:
        if traffic is not None:
            traffic.stop()
        watch.stop()
        service.stop()
    promoted_at = watch.changed.get(version) if version else None
    answers = traffic.snapshot()
    report = {
        "phases": phases,
        "loop": loop,
        "traffic": _traffic_report(answers, new_model, seen),
        "before": next((a.model for a in answers if a.model), None),
        "seeded": before,
        "after": seen.model if seen is not None else None,
        "promoted_version": version,
        "swap_s": (
            round(seen.ended - promoted_at, 1)
            if seen is not None and promoted_at is not None
            else None
        ),
        "total_s": round(time.monotonic() - started, 1),
        "params": {
            "train_steps": args.train_steps,
            "rate": args.rate,
            "eval_limit": args.eval_limit,
            "champion": args.champion,
            "llm_threads": args.llm_threads,
            "training_rows": data["examples"],
        },
    }
    report["problems"] = _problems(report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=40, help="LoRA steps of the loop.")
    parser.add_argument("--rate", type=float, default=2.0, help="Requests per second (all).")
    parser.add_argument("--eval-limit", type=int, default=60, help="Held-out questions asked.")
    parser.add_argument("--champion", choices=("base", "shipped"), default="base")
    parser.add_argument("--llm-threads", type=int, default=1, help="llama.cpp threads.")
    parser.add_argument("--swap-timeout", type=float, default=180.0)
    parser.add_argument("--after-s", type=float, default=5.0, help="Traffic after the switch.")
    parser.add_argument(
        "--work-dir", type=Path, help="Keep everything here, report.json included (default: temp)."
    )
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    args = parser.parse_args()
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        report = run(args, args.work_dir.resolve())
        (args.work_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    else:
        with tempfile.TemporaryDirectory(prefix="genai-loop-") as tmp:
            report = run(args, Path(tmp))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    raise SystemExit(1 if report["problems"] else 0)


if __name__ == "__main__":
    main()

"""Check the Grafana dashboards against PromQL and the service's own metrics.

For every Prometheus panel target of deploy/monitoring/grafana/dashboards/*.json:
  * the expression parses (promtool check rules over a generated rule file, one rule per target);
  * every metric it names exists: in the service's /metrics output (``--metrics-file``, else the
    families of ``genai_factory.observability.metrics.Metrics``), a recording rule of
    deploy/monitoring/prometheus/rules/, or the short list of kube-state-metrics series below.
Exit 1 on any failure, with one line per problem.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy/monitoring/grafana/dashboards"
RULES = ROOT / "deploy/monitoring/prometheus/rules"
#: Series other exporters provide (Prometheus itself, kube-state-metrics).
EXTERNAL = {"up", "kube_job_status_failed", "kube_job_status_succeeded", "kube_job_status_active"}
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "atan2",
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (identifiers that are neither functions nor labels)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end() :].lstrip()[:1]
        if following == "(" or word.lower() in KEYWORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        if text[max(0, match.start() - 1)] in "0123456789.":
            continue  # exponent of a number (1e-9)
        names.add(word)
    return names


def exposed_names(metrics_text: str) -> set[str]:
    """Every series name an exposition can hold (histogram and counter suffixes included)."""
    names: set[str] = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            base = name.removesuffix("_total")
            if kind == "counter":
                names |= {f"{base}_total", f"{base}_created"}
            elif kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
            else:
                names.add(name)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def static_metrics() -> str:
    from genai_factory.observability.metrics import Metrics

    return Metrics().render().decode()


def recorded_names() -> set[str]:
    names = set()
    for path in RULES.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


def targets(path: Path) -> list[tuple[str, str]]:
    found = []
    for panel in json.loads(path.read_text())["panels"]:
        for target in panel.get("targets", []):
            source = (target.get("datasource") or panel.get("datasource") or {}).get("type")
            if source == "prometheus":
                found.append((f"{path.name}: {panel['title']}", target["expr"]))
    return found


def check_parse(exprs: list[tuple[str, str]]) -> list[str]:
    problems = []
    for where, expr in exprs:
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        rules = {"groups": [{"name": "panel", "rules": [{"record": "panel:check", "expr": expr}]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as handle:
            yaml.safe_dump(rules, handle)
            handle.flush()
            done = subprocess.run(
                ["promtool", "check", "rules", handle.name], capture_output=True, text=True
            )
        if done.returncode != 0:
            problems.append(f"{where}: PromQL does not parse: {expr}\n{done.stdout}{done.stderr}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--metrics-file", type=Path, help="a /metrics output of the running service"
    )
    parser.add_argument("--dashboards", type=Path, default=DASHBOARDS)
    args = parser.parse_args()
    exposition = args.metrics_file.read_text() if args.metrics_file else static_metrics()
    known = exposed_names(exposition) | recorded_names() | EXTERNAL
    exprs = [t for path in sorted(args.dashboards.glob("*.json")) for t in targets(path)]
    problems = check_parse(exprs)
    for where, expr in exprs:
        for name in sorted(metric_names(expr) - known):
            problems.append(f"{where}: metric {name} is neither in /metrics nor a recording rule")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    source = args.metrics_file or "Metrics() families"
    print(
        f"dashboards: {len(exprs)} PromQL targets parsed and checked against {source}: "
        f"{'FAILED' if problems else 'ok'}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

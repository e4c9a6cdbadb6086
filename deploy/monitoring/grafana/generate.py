"""Write the provisioned Grafana dashboards (dashboards/*.json) from the panel lists below.

    python deploy/monitoring/grafana/generate.py          # rewrite the JSON files
    python deploy/monitoring/grafana/generate.py --check  # exit 1 when a file differs (CI)

Every PromQL expression here is parsed by promtool and every metric it names is looked up in the
service's /metrics output by deploy/checks/dashboards.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent / "dashboards"
PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
RATE = "$__rate_interval"
V1 = 'route=~"/v1/.*"'


def panel(
    title: str,
    exprs: list[tuple[str, str]],
    *,
    unit: str = "short",
    kind: str = "timeseries",
    width: int = 12,
    description: str = "",
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": PROM,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "gridPos": {"h": 8, "w": width},
        "targets": [
            {"refId": chr(65 + i), "datasource": PROM, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def row(title: str) -> dict[str, Any]:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24},
        "panels": [],
    }


def logs_panel() -> dict[str, Any]:
    return {
        "type": "logs",
        "title": "Logs (click a trace_id: the Loki datasource links it to the trace)",
        "datasource": LOKI,
        "gridPos": {"h": 10, "w": 24},
        "options": {"showTime": True, "wrapLogMessage": True, "enableLogDetails": True},
        "targets": [
            {
                "refId": "A",
                "datasource": LOKI,
                "expr": '{app="genai-factory"} | json | level=~"$level"',
            }
        ],
    }


def service_panels() -> list[dict[str, Any]]:
    return [
        row("Traffic and errors"),
        panel(
            "Requests per second by route",
            [(f"sum by (route) (rate(genai_http_requests_total{{{V1}}}[{RATE}]))", "{{route}}")],
            unit="reqps",
        ),
        panel(
            "Answers by outcome",
            [
                (
                    f"sum by (endpoint, status) (rate(genai_pipeline_requests_total[{RATE}]))",
                    "{{endpoint}} {{status}}",
                )
            ],
            unit="reqps",
        ),
        panel(
            "5xx ratio of /v1 (SLO 1 %)",
            [
                ("genai:http_errors:ratio_rate5m", "{{track}} 5m"),
                ("genai:http_errors:ratio_rate1h", "{{track}} 1h"),
            ],
            unit="percentunit",
        ),
        panel("Requests in flight", [("sum(genai_http_requests_in_flight)", "in flight")]),
        row("Latency"),
        panel(
            "Answer latency p50 / p95 by route",
            [
                (
                    f"histogram_quantile(0.5, sum by (route, le) (rate(genai_http_request_duration_seconds_bucket{{{V1}}}[{RATE}])))",
                    "p50 {{route}}",
                ),
                ("genai:http_request_duration_seconds:p95_5m", "p95 {{route}} {{track}}"),
            ],
            unit="s",
        ),
        panel(
            "p95 by pipeline stage",
            [("genai:stage_duration_seconds:p95_5m", "{{stage}}")],
            unit="s",
        ),
        panel(
            "Answers slower than 10 s (SLO 5 %)",
            [
                ("genai:answers_slow:ratio_rate5m", "{{track}} 5m"),
                ("genai:answers_slow:ratio_rate1h", "{{track}} 1h"),
            ],
            unit="percentunit",
        ),
        row("Tokens and cost"),
        panel(
            "Tokens per second by key",
            [
                (
                    f"sum by (key_id, kind) (rate(genai_llm_tokens_total[{RATE}]))",
                    "{{key_id}} {{kind}}",
                )
            ],
        ),
        panel(
            "Cost per key (USD per hour)",
            [("sum by (key_id) (increase(genai_llm_cost_usd_total[1h]))", "{{key_id}}")],
            unit="currencyUSD",
        ),
        panel(
            "Refused by the gateway",
            [(f"sum by (reason) (rate(genai_gateway_rejections_total[{RATE}]))", "{{reason}}")],
            unit="reqps",
        ),
        panel(
            "Budget alerts",
            [("sum by (key_id) (increase(genai_budget_alerts_total[1h]))", "{{key_id}}")],
        ),
        row("Guards and breakers"),
        panel(
            "Guard blocks by guard and stage",
            [
                (
                    f"sum by (guard, stage) (rate(genai_guard_blocks_total[{RATE}]))",
                    "{{guard}} {{stage}}",
                )
            ],
        ),
        panel(
            "Circuit breakers (0 closed, 1 half-open, 2 open)",
            [("max by (model) (genai_circuit_breaker_state)", "{{model}}")],
        ),
        panel(
            "Interaction log",
            [
                (
                    f"sum by (outcome) (rate(genai_interaction_log_records_total[{RATE}]))",
                    "{{outcome}}",
                ),
                ("sum(genai_interaction_log_queue_depth)", "queued"),
            ],
        ),
        panel(
            "User ratings",
            [(f"sum by (rating) (rate(genai_feedback_total[{RATE}]))", "{{rating}}")],
        ),
        row("Logs"),
        logs_panel(),
    ]


def mlops_panels() -> list[dict[str, Any]]:
    jobs = 'job_name=~"genai-factory-.*"'
    return [
        row("Jobs (kube-state-metrics)"),
        panel(
            "Job runs succeeded / failed (last 24 h)",
            [
                (f"count(kube_job_status_succeeded{{{jobs}}} > 0)", "succeeded"),
                (f"count(kube_job_status_failed{{{jobs}}} > 0)", "failed"),
            ],
            kind="stat",
        ),
        panel("Jobs running", [(f"sum(kube_job_status_active{{{jobs}}})", "active")], kind="stat"),
        panel(
            "Drift verdicts (a failed drift Job = drift found)",
            [
                (
                    'sum by (job_name) (kube_job_status_failed{job_name=~"genai-factory-drift-.*"})',
                    "drift {{job_name}}",
                ),
                (
                    'sum by (job_name) (kube_job_status_succeeded{job_name=~"genai-factory-drift-.*"})',
                    "no drift {{job_name}}",
                ),
            ],
            kind="table",
            width=24,
        ),
        row("Champion"),
        panel(
            "Model answering (tokens per second by model: a promotion shows as a new series)",
            [
                (
                    f'sum by (model) (rate(genai_llm_tokens_total{{kind="completion"}}[{RATE}]))',
                    "{{model}}",
                )
            ],
            width=24,
        ),
        panel(
            "Answer quality signals",
            [
                (
                    'sum(rate(genai_feedback_total{rating="down"}[1h])) / clamp_min(sum(rate(genai_feedback_total[1h])), 1e-9)',
                    "share rated down",
                ),
                ("genai:guard_blocks:ratio_rate10m", "share blocked by input guards"),
            ],
            unit="percentunit",
        ),
        row("Registry (read from MLflow by the service every observability.mlops_refresh_s)"),
        panel(
            "Champion and challenger versions",
            [("max by (model, alias) (genai_model_version)", "{{model}} {{alias}}")],
            kind="stat",
        ),
        panel(
            "Last drift verdict (1 drift, 0 none)",
            [("max by (run_id) (genai_drift_detected)", "run {{run_id}}")],
            kind="stat",
        ),
        panel(
            "Gate conditions of the newest evaluation suite",
            [("max by (status) (genai_eval_gate_results)", "{{status}}")],
            kind="stat",
        ),
        panel(
            "Newest run of each job",
            [
                (
                    "max by (job, status) (genai_job_last_run_timestamp_seconds) * 1000",
                    "{{job}} {{status}}",
                )
            ],
            kind="table",
            unit="dateTimeAsIso",
        ),
    ]


def dashboard(
    uid: str, title: str, panels: list[dict[str, Any]], templating: list[dict[str, Any]]
) -> dict[str, Any]:
    y = 0
    x = 0
    laid = []
    for number, item in enumerate(panels, start=1):
        pos = dict(item["gridPos"])
        if x + pos["w"] > 24 or item["type"] == "row":
            x, y = 0, y + (8 if x else 0)
        pos.update(x=x, y=y)
        x += pos["w"]
        if item["type"] == "row" or x >= 24:
            x, y = 0, y + pos["h"]
        laid.append({**item, "id": number, "gridPos": pos})
    return {
        "uid": uid,
        "title": title,
        "tags": ["genai-factory"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": templating},
        "panels": laid,
    }


LEVEL = {
    "name": "level",
    "type": "custom",
    "query": "debug,info,warning,error",
    "multi": True,
    "includeAll": True,
    "current": {"text": "All", "value": "$__all"},
    "allValue": ".*",
}


def render() -> dict[str, str]:
    boards = {
        "service.json": dashboard(
            "genai-service", "GenAI Factory — service", service_panels(), [LEVEL]
        ),
        "mlops.json": dashboard("genai-mlops", "GenAI Factory — MLOps", mlops_panels(), []),
    }
    return {
        name: json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        for name, board in boards.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when a written file differs")
    args = parser.parse_args()
    stale = []
    for name, text in render().items():
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale dashboards (run generate.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

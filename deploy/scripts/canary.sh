#!/usr/bin/env bash
# Canary rollout of the assistant (prod overlay): the canary Deployment runs the candidate image
# beside the stable one, behind the same Service, and takes its share of traffic by replica count.
#
#   canary.sh start IMAGE            candidate image on 1 canary replica (25 % of 3 stable + 1)
#   canary.sh analyse                every minute for ANALYSIS_MINUTES: the canary's own 5xx ratio
#                                    and p95 from Prometheus must stay under the limits; else abort
#   canary.sh promote IMAGE [TRAINER] stable Deployment and CronJobs take the image; canary to 0
#   canary.sh abort                  canary to 0 replicas (stable never changed)
#
# Env: NAMESPACE (genai-factory), PROMETHEUS_URL (http://prometheus.monitoring:9090),
#      ANALYSIS_MINUTES (10), MAX_ERROR_RATIO (0.01), MAX_P95_SECONDS (10).
set -euo pipefail
NAMESPACE=${NAMESPACE:-genai-factory}
PROMETHEUS_URL=${PROMETHEUS_URL:-http://prometheus.monitoring:9090}
MINUTES=${ANALYSIS_MINUTES:-10}
MAX_ERRORS=${MAX_ERROR_RATIO:-0.01}
MAX_P95=${MAX_P95_SECONDS:-10}
k() { kubectl -n "$NAMESPACE" "$@"; }

query() {  # one instant PromQL value, "NaN" when there is none
  curl -fsS "$PROMETHEUS_URL/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
result = json.load(sys.stdin)["data"]["result"]
print(result[0]["value"][1] if result else "NaN")'
}

over() { python3 -c 'import math, sys; v = float(sys.argv[1]); sys.exit(0 if not math.isnan(v) and v > float(sys.argv[2]) else 1)' "$1" "$2"; }

case "${1:-}" in
  start)
    k set image deploy/genai-factory-canary assistant="${2:?image}"
    k scale deploy/genai-factory-canary --replicas=1
    k rollout status deploy/genai-factory-canary --timeout=15m
    ;;
  analyse|analyze)
    for minute in $(seq "$MINUTES"); do
      sleep 60
      errors=$(query 'genai:http_errors:ratio_rate5m{track="canary"}')
      p95=$(query 'max(genai:http_request_duration_seconds:p95_5m{track="canary", route=~"/v1/(assistant/generate|chat/completions)"})')
      echo "minute $minute/$MINUTES: canary 5xx ratio $errors, p95 ${p95}s"
      if over "$errors" "$MAX_ERRORS" || over "$p95" "$MAX_P95"; then
        echo "canary over its limits (5xx ratio $MAX_ERRORS, p95 ${MAX_P95}s): aborting" >&2
        "$0" abort
        exit 1
      fi
    done
    ;;
  promote)
    k set image deploy/genai-factory assistant="${2:?image}"
    k rollout status deploy/genai-factory --timeout=30m
    if [ -n "${3:-}" ]; then
      for job in drift loop reindex train-guard train-llm; do
        k patch cronjob "genai-factory-$job" --type=json \
          -p "[{\"op\": \"replace\", \"path\": \"/spec/jobTemplate/spec/template/spec/containers/0/image\", \"value\": \"$3\"}]"
      done
    fi
    k scale deploy/genai-factory-canary --replicas=0
    ;;
  abort)
    k scale deploy/genai-factory-canary --replicas=0
    ;;
  *)
    sed -n '2,14p' "$0"; exit 2 ;;
esac

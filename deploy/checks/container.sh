#!/usr/bin/env bash
# Run the service image for real against the machine's PostgreSQL and Redis, and check:
#   1. it becomes ready (start-to-ready time printed), runs as uid 10001 on a read-only root fs;
#   2. /v1/assistant/generate gives a cited answer, /v1/chat/completions an answer;
#   3. a real Prometheus scrapes it and a PromQL query over its own series returns data, and every
#      metric the dashboards name is in its /metrics;
#   4. SIGTERM in the middle of a request: the request completes (200), the lifespan shutdown
#      completes, and the request's interaction-log and spend-ledger rows are in PostgreSQL after
#      the container has exited.
# Env: IMAGE (genai-factory:local), PORT (18000; the container's own default is 8000),
#      PROM_PORT (19090), APP_PYTHON, DEPLOY_BIN. Exits non-zero on the first failure.
# Deliberately broken runs (container-selftest.sh): RUN_AS=0 (root), READ_ONLY=0 (writable root),
# STOP_SIGNAL=KILL (no graceful stop): each must make this script fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-genai-factory:local}
PORT=${PORT:-18000}
PROM_PORT=${PROM_PORT:-19090}
APP_PYTHON=${APP_PYTHON:-.venv/bin/python}
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
NAME=genai-check-$$
VOLUME=genai-check-data-$$
DB=genai_check_$$
PG=${PG_HOST:-127.0.0.1}
DB_URL="postgresql+psycopg://$(id -un)@$PG:5432/$DB"
WORK=$(mktemp -d /tmp/genai-check.XXXXXX)
PROM_PID=
fail() { echo "FAIL: $*" >&2; "$DOCKER" logs --tail 40 "$NAME" >&2 2>&1 || true; exit 1; }
cleanup() {
  [ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null || true
  "$DOCKER" rm -f "$NAME" >/dev/null 2>&1 || true
  "$DOCKER" volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  dropdb -h "$PG" --if-exists "$DB" 2>/dev/null || true
  redis-cli -h 127.0.0.1 -n 7 --scan --pattern "gfcheck$$:*" 2>/dev/null | xargs -r redis-cli -h 127.0.0.1 -n 7 del >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
sql() { psql -h "$PG" -d "$DB" -At -c "$1"; }
http() { curl -s -o "$WORK/body" -w '%{http_code}' "$@"; }

createdb -h "$PG" "$DB"
ENV=(-e "GENAI_SERVICE__PORT=$PORT" -e "GENAI_GATEWAY__DATABASE_URL=$DB_URL"
     -e "GENAI_GATEWAY__REDIS_URL=redis://127.0.0.1:6379/7" -e "GENAI_GATEWAY__REDIS_PREFIX=gfcheck$$:")
# The hardening a Kubernetes pod gets: read-only root, /tmp in memory, no capabilities.
HARDEN=(--tmpfs /tmp:rw,size=512m --cap-drop ALL --security-opt no-new-privileges)
[ "${READ_ONLY:-1}" = 1 ] && HARDEN+=(--read-only)
[ -n "${RUN_AS:-}" ] && HARDEN+=(--user "$RUN_AS")
STOP_SIGNAL=${STOP_SIGNAL:-TERM}

echo ">>> API key in PostgreSQL (genai-factory keys create, in the image)"
KEY=$("$DOCKER" run --rm --network host "${HARDEN[@]}" -v "$VOLUME:/data" "${ENV[@]}" "$IMAGE" \
  genai-factory keys create --name container-check --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
AUTH=(-H "Authorization: Bearer $KEY" -H 'content-type: application/json')

echo ">>> start $IMAGE (port $PORT, --read-only, --cap-drop ALL)"
start=$(date +%s.%N)
"$DOCKER" run -d --name "$NAME" --network host "${HARDEN[@]}" -v "$VOLUME:/data" "${ENV[@]}" "$IMAGE" >/dev/null
echo ">>> non-root, read-only root filesystem"
uid=$("$DOCKER" exec "$NAME" id -u)
[ "$uid" = 10001 ] || fail "runs as uid $uid, not 10001"
[ "$("$DOCKER" inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$NAME")" = true ] || fail "root fs not read-only"
if "$DOCKER" exec "$NAME" sh -c 'echo x > /opt/venv/probe' 2>/dev/null; then fail "could write to /opt/venv"; fi
echo "uid $uid; writing under / refused"

for _ in $(seq 600); do
  [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$NAME")" = true ] || fail "container exited"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/readyz")" = 200 ] && break
  sleep 1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/readyz")" = 200 ] || fail "not ready after 600 s"
echo "start-to-ready: $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
for _ in $(seq 60); do
  [ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$NAME")" = healthy ] && break; sleep 1
done
[ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$NAME")" = healthy ] || fail "HEALTHCHECK not healthy"
echo "HEALTHCHECK: healthy"

echo ">>> POST /v1/assistant/generate"
code=$(http "127.0.0.1:$PORT/v1/assistant/generate" "${AUTH[@]}" -d '{"query": "How do I configure a fallback model?", "mode": "rag"}')
[ "$code" = 200 ] || fail "generate answered $code: $(cat "$WORK/body")"
python3 - "$WORK/body" <<'PY'
import json, sys
body = json.load(open(sys.argv[1]))
assert body["answer"].strip(), "empty answer"
assert body["citations"], "no citations"
print(f"answer ({body['usage']['completion_tokens']} tokens), {len(body['citations'])} citations, first: {body['citations'][0]['source']}")
PY
echo ">>> POST /v1/chat/completions"
model=$(curl -sf "127.0.0.1:$PORT/v1/models" "${AUTH[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
code=$(http "127.0.0.1:$PORT/v1/chat/completions" "${AUTH[@]}" \
  -d '{"model": "'"$model"'", "messages": [{"role": "user", "content": "What is a circuit breaker?"}], "max_tokens": 48}')
[ "$code" = 200 ] || fail "chat completions answered $code: $(cat "$WORK/body")"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); c=b["choices"][0]["message"]["content"]; assert c.strip(); print("answer:", c[:80].replace("\n"," "))' "$WORK/body"

echo ">>> Prometheus scrapes the container"
curl -sf "127.0.0.1:$PORT/metrics" > "$WORK/metrics.txt"
"$APP_PYTHON" deploy/checks/dashboards.py --metrics-file "$WORK/metrics.txt"
"$APP_PYTHON" - "$PORT" "$PWD" > "$WORK/prometheus.yml" <<'PY'
import sys, yaml
port, root = sys.argv[1], sys.argv[2]
config = yaml.safe_load(open(f"{root}/deploy/monitoring/prometheus/prometheus-compose.yml"))
config["global"].update(scrape_interval="2s", evaluation_interval="2s")
config["rule_files"] = [f"{root}/deploy/monitoring/prometheus/rules/*.yml"]
config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
print(yaml.safe_dump(config))
PY
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
ok=
for _ in $(seq 60); do
  if curl -s "127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=sum(genai_pipeline_requests_total{status="ok"})' \
      | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; assert r and float(r[0]["value"][1]) >= 2; print("PromQL sum(genai_pipeline_requests_total{status=\"ok\"}) =", r[0]["value"][1])' 2>/dev/null; then
    ok=1; break
  fi
  sleep 1
done
[ -n "$ok" ] || { tail -5 "$WORK/prometheus.log" >&2; fail "Prometheus returned no series of the service"; }
curl -s "127.0.0.1:$PROM_PORT/api/v1/targets" | python3 -c 'import json,sys; t=json.load(sys.stdin)["data"]["activeTargets"]; assert any(x["health"]=="up" for x in t), t; print("target up:", [x["scrapeUrl"] for x in t])'
curl -s "127.0.0.1:$PROM_PORT/api/v1/rules" | python3 -c 'import json,sys; g=json.load(sys.stdin)["data"]["groups"]; n=sum(len(x["rules"]) for x in g); assert n > 0; print(n, "rules loaded")'
kill "$PROM_PID"; PROM_PID=

echo ">>> SIGTERM in the middle of a request"
(http "127.0.0.1:$PORT/v1/assistant/generate" "${AUTH[@]}" \
   -d '{"query": "Explain in detail how retries, the circuit breaker and fallbacks work together.", "mode": "chat", "max_tokens": 200}' \
   > "$WORK/sigterm.code"; cp "$WORK/body" "$WORK/sigterm.body") &
CURL_PID=$!
for _ in $(seq 100); do
  curl -s "127.0.0.1:$PORT/metrics" | grep -q '^genai_http_requests_in_flight{method="POST"} [1-9]' && break
  sleep 0.1
done
sleep 1
"$DOCKER" kill --signal "$STOP_SIGNAL" "$NAME" >/dev/null
echo "SIG$STOP_SIGNAL sent with the request in flight"
wait "$CURL_PID" || true
[ "$(cat "$WORK/sigterm.code")" = 200 ] || fail "request cut by SIG$STOP_SIGNAL: HTTP $(cat "$WORK/sigterm.code")"
trace=$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); assert b["answer"].strip(); print(b["trace_id"])' "$WORK/sigterm.body")
for _ in $(seq 60); do [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$NAME")" = false ] && break; sleep 1; done
# uvicorn re-raises the signal once it has shut down, so a graceful stop exits 143 (or 0); what
# proves it graceful is the lifespan shutdown having completed (queues flushed) and the rows below.
status=$("$DOCKER" inspect -f '{{.State.Running}} {{.State.ExitCode}}' "$NAME")
case "$status" in "false 0" | "false 143") ;; *) fail "container after SIG$STOP_SIGNAL: running/exit = $status" ;; esac
"$DOCKER" logs "$NAME" 2>&1 | grep -q '"Application shutdown complete."' || fail "no completed lifespan shutdown in the log"
rows=$(sql "select count(*) from interactions where trace_id = '$trace' and status = 'ok'")
[ "$rows" = 1 ] || fail "interaction-log row of $trace: $rows"
spend=$(sql "select count(*) from gateway_spend where trace_id = '$trace'")
[ "$spend" -ge 1 ] || fail "spend-ledger row of $trace: $spend"
echo "request completed (200, trace $trace), shutdown complete (exit ${status#false }), interaction row and ledger row present"
echo "container checks: all passed"

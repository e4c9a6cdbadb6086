#!/usr/bin/env bash
# Bring up the part of the compose stack that can be built on a machine without a registry:
# PostgreSQL and Redis as Debian STAND-INS (deploy/docker/standins/, named genai-standin-*),
# the MLflow server (deploy/docker/mlflow.Dockerfile) and both assistant replicas
# (genai-factory:local). Qdrant and MinIO have no Debian package: the assistants use the
# embedded vector store here (GENAI_RAG__STORE=embedded) and MLflow's S3 artefact store is not
# exercised. Checks: every service healthy, each replica answers a question with citations, and a
# key's rate limit is shared by both replicas (Redis). Env: IMAGE, BASE_IMAGE (the local Debian base).
set -euo pipefail
cd "$(dirname "$0")/../.."
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
BASE=${BASE_IMAGE:-$(bash deploy/scripts/base-image.sh)}
export DOCKER_BUILDKIT=1
for name in postgres redis; do
  "$DOCKER" build -q --network host -f "deploy/docker/standins/$name.Dockerfile" \
    --build-arg BASE_IMAGE="$BASE" -t "genai-standin-$name:local" deploy/docker/standins >/dev/null
done
"$DOCKER" build -q --network host -f deploy/docker/mlflow.Dockerfile --build-arg BASE_IMAGE="$BASE" \
  -t genai-factory-mlflow:local . >/dev/null
WORK=$(mktemp -d /tmp/genai-compose.XXXXXX)
cp deploy/compose/env.example "$WORK/env"
export GENAI_ENV_FILE=$WORK/env POSTGRES_IMAGE=genai-standin-postgres:local REDIS_IMAGE=genai-standin-redis:local \
  MLFLOW_IMAGE=genai-factory-mlflow:local GENAI_IMAGE=${IMAGE:-genai-factory:local} GENAI_RAG__STORE=embedded
COMPOSE=(docker-compose --env-file "$WORK/env" -p genai-check -f deploy/compose/docker-compose.yaml)
cleanup() { "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; "${COMPOSE[@]}" ps >&2 || true; "${COMPOSE[@]}" logs --tail 20 >&2 || true; exit 1; }

echo ">>> compose up: postgres and redis (stand-ins), mlflow"
"${COMPOSE[@]}" up -d --no-build postgres redis
"${COMPOSE[@]}" up -d --no-build --no-deps mlflow
healthy() { [ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$("${COMPOSE[@]}" ps -q "$1")")" = healthy ]; }
for service in postgres redis mlflow; do
  for _ in $(seq 120); do healthy "$service" && break; sleep 2; done
  healthy "$service" || fail "$service not healthy"
  echo "$service: healthy"
done
KEY=$("${COMPOSE[@]}" run --rm --no-deps -T assistant-1 genai-factory keys create --name compose-check --rpm 3 --json \
  | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["key"])')
echo ">>> compose up: assistant-1, then assistant-2 (starts when assistant-1 is healthy)"
start=$SECONDS
"${COMPOSE[@]}" up -d --no-build --no-deps assistant-1
for _ in $(seq 300); do healthy assistant-1 && break; sleep 2; done
healthy assistant-1 || fail "assistant-1 not healthy"
"${COMPOSE[@]}" up -d --no-build --no-deps assistant-2
for _ in $(seq 300); do healthy assistant-2 && break; sleep 2; done
healthy assistant-2 || fail "assistant-2 not healthy"
echo "both replicas healthy after $((SECONDS - start)) s"
ask() {
  curl -s -o "$WORK/body" -w '%{http_code}' "127.0.0.1:$1/v1/assistant/generate" -H "Authorization: Bearer $KEY" \
    -H 'content-type: application/json' -d '{"query": "How do I create an API key?", "mode": "rag", "max_tokens": 32}'
}
for port in 8001 8002; do
  code=$(ask "$port")
  [ "$code" = 200 ] || fail "replica on $port answered $code: $(cat "$WORK/body")"
  python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); assert b["citations"]; print("replica", sys.argv[2], "answered with", len(b["citations"]), "citations")' "$WORK/body" "$port"
done
code=$(ask 8001)   # third request of a 3-per-minute key, on either replica: allowed
code=$(ask 8002)   # fourth: refused by the limit the two replicas share in Redis
[ "$code" = 429 ] || fail "fourth request within the minute answered $code, not 429 (limit not shared)"
echo "rate limit shared across replicas: 4th request of a 3 rpm key refused (429)"
echo "compose checks: all passed"

#!/usr/bin/env bash
# Smoke test of a deployed assistant: readiness, then one cited answer through the Service.
# Env: NAMESPACE (genai-factory), SMOKE_KEY (an API key; from the Secret genai-factory-smoke).
set -euo pipefail
NAMESPACE=${NAMESPACE:-genai-factory}
KEY=${SMOKE_KEY:-$(kubectl -n "$NAMESPACE" get secret genai-factory-smoke -o jsonpath='{.data.key}' | base64 -d)}
kubectl -n "$NAMESPACE" port-forward svc/genai-factory 18080:80 >/dev/null 2>&1 &
forward=$!
trap 'kill $forward' EXIT
for _ in $(seq 30); do curl -fs localhost:18080/readyz >/dev/null && break; sleep 2; done
curl -fsS localhost:18080/v1/assistant/generate -H "Authorization: Bearer $KEY" \
  -H 'content-type: application/json' -d '{"query": "How do I configure a fallback model?"}' \
  | python3 -c 'import json, sys; b = json.load(sys.stdin); assert b["answer"] and b["citations"], b; print("smoke test: answer with", len(b["citations"]), "citations")'

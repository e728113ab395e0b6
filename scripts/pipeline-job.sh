#!/usr/bin/env bash
# pipeline-job.sh — what a CI job does, as a script: it reads secrets from OpenBao with the
# run's scoped token, uses them (and, with LEAK=1, carelessly prints one base64-encoded and
# truncated into its log, the way CI masking misses), reports the secrets it used with
# `custos ci report`, then scans its own log with `custos scan-log --report`.
#
# Usage: scripts/pipeline-job.sh LOG NAME=PATH...
#   LOG        where the job's log is written (the job's stdout is tee'd there)
#   NAME=PATH  an environment variable to put the secret in, and the kv v2 path it is read
#              from (secret/data/...; the field read is `password`)
#
# Environment: BAO_ADDR, BAO_TOKEN (the run's token), CUSTOS_BIN, CUSTOS_URL, CUSTOS_TOKEN
# (an ingest token), LEAK (1: print the first secret base64-encoded and truncated),
# DEPLOY_ENVIRONMENT (the job's deployment environment: GitHub does not expose it to steps),
# and the run's GITHUB_* variables (as GitHub Actions sets them). Needs bash and python3.
#
# Exit status: that of `custos scan-log` (0 clean, 1 leaks found and reported, 2 error).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
LOG="$1"; shift
: "${BAO_ADDR:?}" "${BAO_TOKEN:?}" "${CUSTOS_BIN:?}" "${CUSTOS_URL:?}" "${CUSTOS_TOKEN:?}"

read_secret() {   # PATH -> the value of its `password` field on stdout
  python3 - "$1" <<'PY'
import json, os, sys, urllib.request
req = urllib.request.Request(os.environ["BAO_ADDR"] + "/v1/" + sys.argv[1],
                             headers={"X-Vault-Token": os.environ["BAO_TOKEN"]})
with urllib.request.urlopen(req, timeout=30) as r:
    sys.stdout.write(json.load(r)["data"]["data"]["password"])
PY
}

names=(); paths=(); scan_args=()
for pair in "$@"; do
  name="${pair%%=*}"; path="${pair#*=}"
  value="$(read_secret "$path")"
  export "$name=$value"
  names+=("$name"); paths+=("$path")
  scan_args+=(--secret-env "$name=$path")
done

{
  echo "##[group]Run ./deploy.sh"
  echo "connecting to the database as payments (${#names[@]} secret(s) loaded)"
  if [ "${LEAK:-0}" = 1 ]; then
    first="${!names[0]}"
    # The mistakes masking does not catch: an encoded copy, and a prefix cut by a column limit.
    echo "debug: auth header $(printf 'payments:%s' "$first" | base64 -w0)"
    echo "debug: password starts ${first:0:20}..."
  fi
  echo "deploy done"
  echo "##[endgroup]"
} | tee "$LOG"

report_args=()
[ -n "${DEPLOY_ENVIRONMENT:-}" ] && report_args+=(--environment "$DEPLOY_ENVIRONMENT")
for p in "${paths[@]}"; do report_args+=(--secret "$p"); done
"$CUSTOS_BIN" ci report --url "$CUSTOS_URL" "${report_args[@]}"

set +e
env_args=()
[ -n "${DEPLOY_ENVIRONMENT:-}" ] && env_args+=(--environment "$DEPLOY_ENVIRONMENT")
"$CUSTOS_BIN" scan-log "$LOG" "${scan_args[@]}" --no-detectors --report "$CUSTOS_URL" "${env_args[@]}"
rc=$?
set -e
for n in "${names[@]}"; do unset "$n"; done
exit $rc

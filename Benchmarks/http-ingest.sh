#!/usr/bin/env bash
# HTTP NDJSON ingest throughput of `custos serve`, acknowledged after fsync (issue 4's target:
# 100,000 events/s on the 2-core machine), beside `custos ingest` of the same records from a
# file in the same run (the same decode + durable trail + index, without HTTP).
#
#   Benchmarks/http-ingest.sh [SECONDS] [RUNS] [EVENTS_PER_BODY] [CONNECTIONS]   # defaults 20 3 1000 8
#
# Needs wrk (Debian: apt-get install wrk), python3, curl. Builds a release binary in
# .build-release/ (CUSTOS_BIN=path measures another). Each run starts a server on a fresh
# data directory in Benchmarks/work/, lets wrk (one thread, CONNECTIONS connections) post
# bodies of EVENTS_PER_BODY OpenBao KV-read request/response pairs for SECONDS, counts what
# the server acknowledged, then reads the trail size back from /metrics. Writes
# Benchmarks/results/<date>-<host>-http.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_RUN="${1:-20}"; RUNS="${2:-3}"; PER_BODY="${3:-1000}"; CONNS="${4:-8}"; FORMAT="${5:-openbao}"
case "$FORMAT" in openbao) TEMPLATE=Benchmarks/openbao-kv-read-pair.ndjson; WHAT="OpenBao KV-read request/response pairs (a real pair from examples/openbao-audit.log, a fresh request id per event: $((PER_BODY * 2)) lines";; custos) TEMPLATE=Benchmarks/custos-kv-read-event.ndjson; WHAT="custos.event/v1 events (the event Custos makes of that pair, a fresh id per event: $PER_BODY lines";; *) echo "FORMAT must be openbao or custos" >&2; exit 2;; esac
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
if [ -z "${CUSTOS_BIN:-}" ]; then
  swift build -c release --scratch-path .build-release --product custos >&2
  CUSTOS_BIN=.build-release/release/custos
fi
# BENCH_WORK=DIR puts the data directories (and the file for `custos ingest`) elsewhere, e.g.
# on tmpfs (/dev/shm/...) to see what the software does without the disk; the file system is
# named in the results, and a tmpfs run's file ends in -tmpfs.
WORK="${BENCH_WORK:-Benchmarks/work/http}"
# The data directories are deleted at the end (millions of files), never just before a run:
# ext4 without a journal (as on this VM) scans every inode freed in the last 60-300 s on each
# file creation (recently_deleted() in fs/ext4/ialloc.c), and a run started right after a big
# delete measures that scan, up to a fifth of its throughput. A run waits out that window.
STAMP="$(dirname "$WORK")/.$(basename "$WORK")-deleted-at"
if [ -e "$WORK" ]; then rm -rf "$WORK"; date +%s > "$STAMP"; fi
mkdir -p "$WORK"
FSTYPE=$(findmnt -n -o FSTYPE -T "$WORK" 2>/dev/null | head -1); FSTYPE=${FSTYPE:-unknown}
WAITED=0
if [ "$FSTYPE" != tmpfs ] && [ -e "$STAMP" ]; then
  left=$(( $(cat "$STAMP") + 300 - $(date +%s) ))
  if [ "$left" -gt 0 ]; then
    echo "waiting ${left}s: the last run's data was deleted less than 300 s ago (see the comment above)" >&2
    sleep "$left"; WAITED=$left
  fi
fi
PORT=18420
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
rates=(); cli_rates=(); lines=()
for run in $(seq 1 "$RUNS"); do
  data="$WORK/data-$run"
  "$CUSTOS_BIN" serve --data "$data" --listen "127.0.0.1:$PORT" > "$WORK/serve-$run.out" 2> "$WORK/serve-$run.err" &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  ingest=$(sed -n 's/^ingest token: //p' "$WORK/serve-$run.out"); auditor=$(sed -n 's/^auditor token: //p' "$WORK/serve-$run.out")
  out=$(wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN}s" --timeout 30s -s Benchmarks/http-ingest.lua "http://127.0.0.1:$PORT" -- "$TEMPLATE" "$PER_BODY" "$ingest" "$FORMAT")
  echo "$out" > "$WORK/wrk-$run.txt"
  size=$(curl -sf -H "Authorization: Bearer $auditor" "http://127.0.0.1:$PORT/metrics" | sed -n 's/^custos_trail_size //p')
  kill -TERM "$pid"; wait "$pid" || true
  line=$(echo "$out" | grep '^ACCEPTED')
  acc=$(echo "$line" | awk '{print $2}'); secs=$(echo "$line" | awk '{print $8}')
  rate=$(python3 -c "print(round($acc / $secs))")
  rates+=("$rate"); lines+=("| $run | $acc | $size | $secs | **$rate** | $(echo "$line" | awk '{print $10" / "$12}') | $(echo "$line" | awk '{print $6}') |")
  echo "run $run: $acc events acknowledged in $secs s = $rate events/s (trail size $size)" >&2
  # The same number of events (as many as this run acknowledged, at most 1M) through `custos ingest` from a file.
  n=$(( acc < 1000000 ? acc : 1000000 ))
  python3 - "$TEMPLATE" "$n" "$WORK/file-$run.log" <<'PY'
import sys
t = open(sys.argv[1]).read(); n = int(sys.argv[2])
with open(sys.argv[3], "w") as f:
    for i in range(n):
        f.write(t.replace("@ID@", "%08x-%04x-4000-8000-%012x" % (99, i % 65536, i)))
PY
  # The log was just written: flush it first, or the trail's first sync (syncfs) pays for it.
  sync
  t0=$(date +%s.%N)
  "$CUSTOS_BIN" ingest --quiet --data "$WORK/cli-$run" --format "$FORMAT" --instance bench "$WORK/file-$run.log" > /dev/null
  t1=$(date +%s.%N)
  cli=$(python3 -c "print(round($n / ($t1 - $t0)))"); cli_rates+=("$cli")
  echo "run $run: custos ingest of $n events from a file: $cli events/s" >&2
  rm -f "$WORK/file-$run.log"
  # Memory is not a disk: give it back before the next run.
  if [ "$FSTYPE" = tmpfs ]; then rm -rf "$data" "$WORK/cli-$run"; fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m=$(median "${rates[@]}"); mc=$(median "${cli_rates[@]}")
ratio=$(python3 -c "print(round($m / $mc, 2))")
SUFFIX=""; [ "$FORMAT" = custos ] && SUFFIX=-custos; [ "$FSTYPE" = tmpfs ] && SUFFIX="$SUFFIX-tmpfs"
day=$(date -u +%Y-%m-%d); host=$(hostname -s); f="Benchmarks/results/$day-$host-http$SUFFIX.md"; k=2
while [ -e "$f" ]; do f="Benchmarks/results/$day-$host-http$SUFFIX-$k.md"; k=$((k+1)); done
{
  echo "# HTTP ingest benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Command: \`${BENCH_WORK:+BENCH_WORK=$BENCH_WORK }Benchmarks/http-ingest.sh $SECONDS_PER_RUN $RUNS $PER_BODY $CONNS $FORMAT\` — binary \`$CUSTOS_BIN\` at $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')."
  echo
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); $(swift --version 2>&1 | head -1). Load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg). Data directories on $FSTYPE ($WORK)$( [ "$FSTYPE" = tmpfs ] && echo ': memory, not a disk — this run shows what the software does without the disk, not a durable rate')$( [ "$WAITED" -gt 0 ] && echo "; waited ${WAITED} s before the first run so that no file deleted in the last 300 s was left (see the script)")."
  echo
  echo "wrk (one thread, $CONNS connections, on the same 2 cores as the server) posts bodies of $PER_BODY $WHAT, ~$(( $(wc -c < "$TEMPLATE") * PER_BODY / 1024 )) KiB per body). Each 200 answer comes after the events are fsynced and a checkpoint is signed; events/s = events acknowledged / wrk's duration. Beside it, \`custos ingest\` of the same number of the same records from a file."
  echo
  echo "| run | events acknowledged | trail size (/metrics) | seconds | events/s | latency p50 / p99 ms | failed requests |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${lines[@]}"
  echo
  echo "\`custos ingest\` from a file, same records, events/s per run: ${cli_rates[*]}."
  echo
  if [ "$FSTYPE" = tmpfs ]; then
    echo "**Median: $m events/s over HTTP with the data directory in memory (tmpfs: fsync and syncfs return at once); $mc events/s through \`custos ingest\` from a file; ratio $ratio.** A diagnostic, not a durable rate: it does not count toward the target."
  else
    echo "**Median: $m events/s over HTTP, acknowledged after fsync; $mc events/s through \`custos ingest\` from a file; ratio $ratio.** Target ≥ 100,000 events/s: $( [ "$m" -ge 100000 ] && echo met || echo 'not met')."
  fi
} > "$f"
echo "wrote $f" >&2
cat "$f"
# Deleted now, after the measurements (see the top); the next run waits out the window.
rm -rf "$WORK"; date +%s > "$STAMP"

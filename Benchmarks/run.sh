#!/usr/bin/env bash
# Ingest and verify benchmark, each beside `openssl dgst -sha256` over the same bytes.
#
#   Benchmarks/run.sh [LINES] [RUNS]     (defaults: 1000000 lines, 3 runs)
#
# Builds a release binary (scratch path .build-release), generates a Vault/OpenBao audit
# log of LINES lines (Benchmarks/gen-vault-log.py, deterministic), then RUNS times each:
#   - custos ingest into an empty data directory (durable trail + SQLite index), and
#     openssl dgst -sha256 over the same log file;
#   - custos verify of the resulting trail, and openssl dgst -sha256 over the same entry
#     bundle bytes (cat of every bundle, from the page cache).
# Reports medians and ratios, and writes Benchmarks/results/<date>-<host>[-N].md (never
# over an earlier result).
#
# Each run ingests into a data directory of its own, and all of them are deleted only at
# the end: on a file system without a journal (this VM's ext4), for 60-360 s after files are
# deleted every new inode is allocated by scanning past each recently deleted one, so
# deleting the previous run's ~4,000 trail files right before a run would bill that scan
# (several seconds for a 1M-line log) to the ingest being measured.
#
# CUSTOS_BIN=path/to/custos measures that binary instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-1000000}
RUNS=${2:-3}
WORK=Benchmarks/work
mkdir -p "$WORK" Benchmarks/results
LOG="$WORK/audit-$LINES.log"

if [ -n "${CUSTOS_BIN:-}" ]; then
  BIN=$CUSTOS_BIN
  BUILT="binary $CUSTOS_BIN"
else
  echo "== building release binary" >&2
  swift build -c release --scratch-path .build-release --product custos >&2
  BIN=.build-release/release/custos
  BUILT="this tree at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- Sources 2>/dev/null || echo ' (with uncommitted changes)')"
fi
# Leftovers of an earlier run are moved aside now and deleted at the end (see above).
TRASH="$WORK/trash-$$"
mkdir -p "$TRASH"
for d in "$WORK"/data "$WORK"/data-stats "$WORK"/run-*; do [ -e "$d" ] && mv "$d" "$TRASH/" || true; done

if [ ! -f "$LOG" ]; then
  echo "== generating $LOG" >&2
  python3 Benchmarks/gen-vault-log.py "$LINES" "$LOG"
fi
BYTES=$(stat -c %s "$LOG")

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2==1)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

ingest_t=(); sha_log_t=(); verify_t=(); sha_entries_t=()
EVENTS=0
for r in $(seq 1 "$RUNS"); do
  DATA="$WORK/run-$r"
  "$BIN" keygen --data "$DATA" --origin bench.example/trail >/dev/null
  t0=$(now); out=$("$BIN" ingest --quiet --data "$DATA" --format openbao "$LOG"); t1=$(now)
  ingest_t+=("$(echo "$t1 - $t0" | bc -l)")
  EVENTS=$(echo "$out" | sed -n 's/.*accepted \([0-9]*\).*/\1/p')
  t0=$(now); openssl dgst -sha256 "$LOG" >/dev/null; t1=$(now)
  sha_log_t+=("$(echo "$t1 - $t0" | bc -l)")
  t0=$(now); "$BIN" verify --data "$DATA" --vkey "$DATA/keys/trail.vkey" >/dev/null; t1=$(now)
  verify_t+=("$(echo "$t1 - $t0" | bc -l)")
  t0=$(now); find "$DATA/trail/tile/entries" -type f -print0 | sort -z | xargs -0 cat | openssl dgst -sha256 >/dev/null; t1=$(now)
  sha_entries_t+=("$(echo "$t1 - $t0" | bc -l)")
  echo "run $r: ingest ${ingest_t[-1]} s, sha(log) ${sha_log_t[-1]} s, verify ${verify_t[-1]} s, sha(entries) ${sha_entries_t[-1]} s" >&2
done
# Where ingest time goes (one extra run each, not part of the medians).
"$BIN" keygen --data "$WORK/data-stats" --origin bench.example/trail >/dev/null
STATS=$("$BIN" ingest --quiet --stats --data "$WORK/data-stats" --format openbao "$LOG" 2>&1 >/dev/null | grep '^stats:' || true)
t0=$(now); "$BIN" ingest --check --quiet --format openbao "$LOG" >/dev/null; t1=$(now)
CHECK_T=$(echo "$t1 - $t0" | bc -l)
ENTRY_BYTES=$(find "$DATA/trail/tile/entries" -type f -print0 | xargs -0 cat | wc -c)
rm -rf "$WORK/data-stats" "$WORK"/run-* "$TRASH"

mi=$(printf '%s\n' "${ingest_t[@]}" | median)
ms=$(printf '%s\n' "${sha_log_t[@]}" | median)
mv=$(printf '%s\n' "${verify_t[@]}" | median)
me=$(printf '%s\n' "${sha_entries_t[@]}" | median)
f() { printf '%.0f' "$1"; }
ingest_rate=$(f "$(echo "$EVENTS / $mi" | bc -l)")
ingest_mbs=$(f "$(echo "$BYTES / $mi / 1000000" | bc -l)")
sha_log_mbs=$(f "$(echo "$BYTES / $ms / 1000000" | bc -l)")
sha_log_rate=$(f "$(echo "$EVENTS / $ms" | bc -l)")
verify_rate=$(f "$(echo "$EVENTS / $mv" | bc -l)")
sha_entries_rate=$(f "$(echo "$EVENTS / $me" | bc -l)")
ratio_i=$(printf '%.1f' "$(echo "$mi / $ms" | bc -l)")
ratio_v=$(printf '%.1f' "$(echo "$mv / $me" | bc -l)")

HOST=$(hostname)
OUT="Benchmarks/results/$(date -u +%Y-%m-%d)-$HOST.md"
n=2
while [ -e "$OUT" ]; do OUT="Benchmarks/results/$(date -u +%Y-%m-%d)-$HOST-$n.md"; n=$((n + 1)); done
{
  echo "# Benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Command: \`Benchmarks/run.sh $LINES $RUNS\` (medians of $RUNS runs; the machine is shared and noisy); $BUILT."
  echo
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); $(swift --version 2>&1 | head -1); $(openssl version)."
  echo "SHA extensions: $(grep -q ' sha_ni ' /proc/cpuinfo && echo 'SHA-NI present' || echo 'no SHA-NI')."
  echo
  echo "Input: $LINES lines ($BYTES bytes), $EVENTS events; trail entry bundles $ENTRY_BYTES bytes."
  echo
  echo "| what | custos | openssl dgst -sha256, same bytes | ratio (custos time / openssl time) |"
  echo "|---|---|---|---|"
  echo "| ingest (decode, durable trail, SQLite index) | $ingest_rate events/s ($ingest_mbs MB/s of log), ${mi} s | $sha_log_mbs MB/s ($sha_log_rate events/s), ${ms} s | $ratio_i |"
  echo "| verify (signature, canonical check + leaf hash of every entry, every tile, root, kept checkpoints) | $verify_rate entries/s, ${mv} s | $sha_entries_rate entries/s, ${me} s | $ratio_v |"
  echo
  echo "Where ingest time goes (one more run): \`$STATS\`; decoding alone (\`ingest --check\`): $(printf '%.2f' "$CHECK_T") s."
  echo
  echo "Runs (s): ingest ${ingest_t[*]}; sha(log) ${sha_log_t[*]}; verify ${verify_t[*]}; sha(entries) ${sha_entries_t[*]}."
} > "$OUT"
cat "$OUT"

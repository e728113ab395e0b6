#!/usr/bin/env bash
# scan-log throughput on one core, beside detect-secrets over the same log (README.md here).
#
#   Benchmarks/scan-log/run.sh [SIZE] [RUNS] [DETECT_SECRETS_PREFIX]   # defaults: 1G 3 4M
#
# Needs python3 (and `python3 -m pip install detect-secrets`), taskset. Writes
# Benchmarks/scan-log/results-<date>.md (-2, -3, ... rather than over an earlier result of the day).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-1G}; RUNS=${2:-3}; PREFIX=${3:-4M}
WORK=Benchmarks/work
LOG=$WORK/ci-$(echo "$SIZE" | tr 'A-Z' 'a-z').log
SECRETS=$WORK/ci-$(echo "$SIZE" | tr 'A-Z' 'a-z')-secrets.json
BIN=${CUSTOS_SCAN_BENCH:-.build-scan-bench/release/custos-scan-bench}
CORE=${CORE:-1}
mkdir -p "$WORK"

if [ -z "${CUSTOS_SCAN_BENCH:-}" ]; then
  swift build -c release --scratch-path .build-scan-bench --product custos-scan-bench
fi
if [ ! -s "$LOG" ] || [ ! -s "$SECRETS" ]; then
  python3 Benchmarks/scan-log/gen-ci-log.py "$LOG" "$SECRETS" --size "$SIZE" --secrets-count 1000 --leaks 300 --seed 1
fi
cat "$LOG" > /dev/null   # into the page cache, like the runs after it

echo "== custos-scan-bench (taskset -c $CORE)"
BENCH_OUT=$(taskset -c "$CORE" "$BIN" "$LOG" "$SECRETS" "$RUNS" --check "$SECRETS.leaks")
echo "$BENCH_OUT"

echo "== detect-secrets on the first $PREFIX of the same log (taskset -c $CORE)"
PFX=$WORK/ci-prefix-$PREFIX.log
head -c "$(python3 -c "import sys; s='$PREFIX'; m={'K':1<<10,'M':1<<20,'G':1<<30}; print(int(s[:-1])*m[s[-1]] if s[-1] in m else int(s))")" "$LOG" > "$PFX"
PFX_BYTES=$(stat -c %s "$PFX")
DS_VERSION=$(detect-secrets --version)
DS_TIMES=()
for i in $(seq 1 "$RUNS"); do
  T=$( { /usr/bin/time -f "%e %U %S" taskset -c "$CORE" detect-secrets scan --all-files "$PFX" > "$WORK/ds-out.json"; } 2>&1 | tail -1)
  echo "run $i: wall user sys = $T"
  DS_TIMES+=("$T")
done
DS_FOUND=$(python3 -c "import json,collections; d=json.load(open('$WORK/ds-out.json'))['results']; c=collections.Counter(x['type'] for v in d.values() for x in v); print(sum(c.values()), dict(c))")
echo "detect-secrets findings on the prefix: $DS_FOUND"
echo "== custos-scan-bench on the same prefix"
PFX_OUT=$(taskset -c "$CORE" "$BIN" "$PFX" "$SECRETS" "$RUNS")
echo "$PFX_OUT"

DATE=$(date -u +%Y-%m-%d)
OUT=Benchmarks/scan-log/results-$DATE.md
n=2; while [ -e "$OUT" ]; do OUT=Benchmarks/scan-log/results-$DATE-$n.md; n=$((n+1)); done
{
  echo "# scan-log benchmark, $DATE"
  echo
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Binary: $BIN (release), pinned with taskset -c $CORE. Command: \`Benchmarks/scan-log/run.sh $SIZE $RUNS $PREFIX\`"
  echo "Log: $LOG, $(stat -c %s "$LOG") bytes (gen-ci-log.py --size $SIZE --secrets-count 1000 --leaks 300 --seed 1); 1,000 secrets"
  echo
  echo '## custos-scan-bench over the whole log'
  echo; echo '```'; echo "$BENCH_OUT"; echo '```'
  echo
  echo "## detect-secrets $DS_VERSION over the first $PFX_BYTES bytes of the same log"
  echo
  echo '```'; for t in "${DS_TIMES[@]}"; do echo "wall user sys: $t"; done; echo "findings: $DS_FOUND"; echo '```'
  echo
  echo '## custos-scan-bench over the same prefix'
  echo; echo '```'; echo "$PFX_OUT"; echo '```'
} > "$OUT"
echo "wrote $OUT"

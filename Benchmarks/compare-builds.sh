#!/usr/bin/env bash
# Runs one custos binary over a set of audit logs and writes everything observable to OUTDIR:
# ingest summaries and rejection lists, a hash of every trail file (entry bundles, tiles,
# checkpoints; one fixed signing key, so checkpoints are comparable too), query results in
# every format and filter, and `ingest --check` over small chunks of the variety logs (so
# that every rejection reason is printed, not only the first 100). Run it for two builds
# and `diff -r` the two directories: any difference is a behaviour change.
#
#   Benchmarks/compare-builds.sh BINARY OUTDIR [LOG:FORMAT ...]
#
# Default logs: the OpenBao fixture and example, the Vault source fixtures, and (when they
# exist) Benchmarks/work/variety.log and fuzz.log (gen-variety-log.py) and the generated
# benchmark logs audit-20k.log, audit-200k.log, audit-1000000.log.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$(realpath -m "$2"); shift 2
cd "$(dirname "$0")/.."
W=Benchmarks/work
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

logs=("$@")
if [ ${#logs[@]} -eq 0 ]; then
  logs=(Tests/CustosCoreTests/Fixtures/openbao/audit-2.7.2.log:openbao examples/openbao-audit.log:openbao
        Tests/CustosCoreTests/Fixtures/sources/vault-1.json:vault Tests/CustosCoreTests/Fixtures/sources/vault-2.json:vault)
  for f in variety.log fuzz.log audit-20k.log audit-200k.log audit-1000000.log; do
    [ -f "$W/$f" ] && logs+=("$W/$f:$( [[ $f == audit-* ]] && echo openbao || echo vault)")
  done
fi

# One key for every run (Ed25519 signatures are deterministic, so checkpoints compare too).
KEYS=$W/compare-keys
if [ ! -d "$KEYS" ]; then
  "$BIN" keygen --data "$TMP/k" --origin compare.example/trail >/dev/null
  mkdir -p "$KEYS" && cp -p "$TMP/k/keys/"* "$KEYS/"
fi

strip_time() { sed -E 's/ \([0-9.]+ s\)$//'; }

for spec in "${logs[@]}"; do
  log=${spec%:*}; fmt=${spec##*:}
  name=$(basename "$log")
  d=$TMP/data-$name
  rm -rf "$d"; mkdir -p "$d/keys"; cp -p "$KEYS/"* "$d/keys/"
  o=$OUT/$name
  mkdir -p "$o"
  "$BIN" ingest --quiet --data "$d" --format "$fmt" --instance "i-$fmt" "$log" >"$o/ingest.out" 2>"$o/ingest.err" || echo "exit $?" >>"$o/ingest.out"
  strip_time <"$o/ingest.out" >"$o/ingest.txt"; rm "$o/ingest.out"
  # Re-ingesting the same file: everything is a duplicate.
  "$BIN" ingest --quiet --data "$d" --format "$fmt" --instance "i-$fmt" "$log" 2>&1 | strip_time >"$o/reingest.txt" || true
  (cd "$d" && find trail checkpoints -type f | sort | xargs sha256sum) >"$o/trail.sha256"
  q() { "$BIN" query --data "$d" "$@" 2>&1 | sha256sum | cut -c1-64; }
  {
    echo "json $(q --format json)"
    echo "csv $(q --format csv)"
    echo "table $(q)"
    filters=("--outcome denied" "--outcome error" "--outcome success --kind human" "--kind root" "--kind api_key"
             "--kind service --kind pipeline" "--kind unknown" "--env prod" "--env staging --env dev" "--env test"
             "--action read" "--action login --action token_create" "--action write --action delete"
             "--secret secret/data/prod/*" "--secret *db*" "--secret auth/token/*" "--identity token-*"
             "--identity *-*-*" "--identity oidc-*" "--from 2026-11-10 --to 2026-11-20" "--from 2026-11-18T11:07:00Z"
             "--to 2026-11-05T00:00:00.5Z" "--limit 17" "--outcome denied --env prod --action read")
    for f in "${filters[@]}"; do
      # shellcheck disable=SC2086
      echo "$f: count $("$BIN" query --data "$d" $f --count 2>&1) json $(q $f --format json)"
    done
  } >"$o/queries.txt"
  "$BIN" verify --data "$d" --vkey "$d/keys/trail.vkey" 2>&1 | sed -E 's/[0-9.]+ s\b/T s/g; s/[0-9]+ entries\/s//' >"$o/verify.txt" || true
  rm -rf "$d"
done

# Every rejection reason of the variety logs: chunks small enough that each prints them all.
for f in variety.log fuzz.log; do
  [ -f "$W/$f" ] || continue
  rm -rf "$TMP/chunks"; mkdir -p "$TMP/chunks"
  split -l 300 -d -a 4 "$W/$f" "$TMP/chunks/c"
  for c in "$TMP"/chunks/c*; do
    echo "== $(basename "$c")"
    "$BIN" ingest --check --quiet --format vault "$c" 2>&1 | strip_time | sed "s#$TMP/chunks/##"
  done >"$OUT/$f.check.txt"
done
echo "written to $OUT" >&2

#!/usr/bin/env bash
# Instructions per cold request, counted by callgrind: repeatable whatever else the machine is
# doing (a shared 2-core machine makes wall-clock comparisons of two builds noisy; see
# docs/benchmarks.md, "Instructions per cold request").
#
#   crates/bench/scripts/cold-instructions.sh BENCH_BINARY [REQUESTS] [DATABASE_URL]
#
# Runs `BENCH_BINARY cold --concurrency 1` under valgrind with instrumentation off, switches it
# on when the customers are created (so migrations, seeding and start-up are not counted) and
# off when the timed phase prints its result. What is counted is the whole process: the server,
# the in-process simulators and the load client, for the 64 warm-up requests and REQUESTS cold
# ones, each for a customer never fetched before, both providers answering. Prints the count and
# the count per request.
set -euo pipefail
bin=$1
requests=${2:-136}
url=${3:-postgres://postgres@127.0.0.1:5432/coffer_bench_callgrind}
out=$(mktemp -d)
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg.out" \
  "$bin" --database-url "$url" cold --concurrency 1 --requests "$requests" \
  > "$out/stdout" 2> "$out/stderr" &
pid=$!
state=off
until [ -e "$out/stdout" ]; do sleep 0.05; done
while kill -0 "$pid" 2>/dev/null; do
  if [ $state = off ] && grep -q '^created ' "$out/stdout"; then
    callgrind_control -i on "$pid" > /dev/null && state=on
  elif [ $state = on ] && grep -q '^(c) GET balance (cold' "$out/stdout"; then
    callgrind_control -i off "$pid" > /dev/null && state=done
  fi
  sleep 0.2
done
wait "$pid"
grep -E '^\(c\) GET balance|^RESULT cold' "$out/stdout" || true
total=$(awk '/^totals:/ {print $2; exit}' "$out"/cg.out*)
if [ -z "$total" ]; then echo "no instruction count in $out"; ls -la "$out"; exit 1; fi
counted=$((requests + 64))
echo "instructions: $total for $counted cold requests: $((total / counted)) per request"
[ -n "${KEEP:-}" ] && echo "kept $out" || rm -rf "$out"

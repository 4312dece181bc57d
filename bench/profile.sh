#!/usr/bin/env bash
# Instructions per delivery of the whole `herald serve` hot path (publish → dispatch →
# encode → write), counted by callgrind: repeatable whatever else the machine does.
#
#   bench/profile.sh [extra herald-loadgen options…]
#
# Runs herald under `valgrind --tool=callgrind`, drives it with herald-loadgen
# (SUBS subscribers on one topic, RATE events/s for SECS seconds; defaults 50, 20, 8;
# extra options go to herald-loadgen after these and override them, e.g.
# `-n 200 -k 20 -r 100 --user-scoped`), reads herald_events_delivered_total and
# herald_events_published_total from /metrics, stops it and prints the total
# instruction count, instructions per delivery and per published event, and the
# functions that cost the most (own instructions). The callgrind file is kept (OUT,
# default a temp dir) for callgrind_annotate or kcachegrind. Binaries: HERALD_BIN and
# LOADGEN_BIN (default the release builds). Needs valgrind (apt-get install valgrind).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
herald_bin=${HERALD_BIN:-$target/release/herald}
loadgen_bin=${LOADGEN_BIN:-$target/release/herald-loadgen}
subs=${SUBS:-50}
rate=${RATE:-20}
secs=${SECS:-8}
port=${PORT:-18321}
out=${OUT:-$(mktemp -d -t herald-profile.XXXXXX)}
mkdir -p "$out"

command -v valgrind >/dev/null || { echo "SKIP: needs valgrind (apt-get install valgrind)"; exit 0; }
for bin in "$herald_bin" "$loadgen_bin"; do
  [[ -x "$bin" ]] || { echo "error: $bin not found; build with cargo build --release -p herald-server -p herald-loadgen" >&2; exit 2; }
done

valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  "$herald_bin" serve --listen "127.0.0.1:$port" >"$out/herald.out" 2>"$out/herald.err" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "herald listening" "$out/herald.out" 2>/dev/null && break
  sleep 0.2
done

"$loadgen_bin" run --url "http://127.0.0.1:$port" -n "$subs" -k 1 -r "$rate" \
  -d "${secs}s" --warmup 2s "$@" --json "$out/loadgen.json" >"$out/loadgen.txt"
metrics=$(curl -sf "http://127.0.0.1:$port/metrics") || true
count() { awk -v name="$1" '$1 == name {print int($2)}' <<<"$metrics"; }
delivered=$(count herald_events_delivered_total)
published=$(count herald_events_published_total)
[[ -n "$delivered" && "$delivered" -gt 0 ]] || { echo "error: no deliveries counted (see $out)" >&2; exit 1; }
kill -INT "$pid"
wait "$pid" || true
trap - EXIT

total=$(callgrind_annotate "$out/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen {gsub(",", "", $1); print $1; seen = 1}')
echo "events published            $published"
echo "deliveries                  $delivered"
echo "instructions (whole run)    $total"
echo "instructions per delivery   $(( total / delivered ))"
echo "instructions per event      $(( total / published ))"
grep -E '^lost / dup' "$out/loadgen.txt" || true
echo
echo "top functions by own instructions (callgrind file: $out/callgrind.out)"
callgrind_annotate "$out/callgrind.out" 2>/dev/null | sed -n '/file:function/,$p' | sed -n '3,27p' | cut -c1-160 || true

#!/usr/bin/env bash
# Instructions per delivery of the whole `herald serve` hot path (publish → dispatch →
# encode → write), counted by callgrind: repeatable whatever else the machine does.
#
#   bench/profile.sh [HERALD_BIN] [LOADGEN_BIN]
#
# Runs herald under `valgrind --tool=callgrind`, drives it with herald-loadgen
# (SUBS subscribers on one topic, RATE events/s for SECS seconds; defaults 50, 20, 8),
# reads herald_events_delivered_total from /metrics, stops it and prints the total
# instruction count, instructions per delivery and the functions that cost the most
# (inclusive). The callgrind file is kept (OUT, default a temp dir) for
# callgrind_annotate or kcachegrind. Needs valgrind (Debian: apt-get install valgrind).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
herald_bin=${1:-$target/release/herald}
loadgen_bin=${2:-$target/release/herald-loadgen}
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
  -d "${secs}s" --warmup 2s --json "$out/loadgen.json" >"$out/loadgen.txt"
delivered=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "herald_events_delivered_total" {print int($2)}') || true
[[ -n "$delivered" && "$delivered" -gt 0 ]] || { echo "error: no deliveries counted (see $out)" >&2; exit 1; }
kill -INT "$pid"
wait "$pid" || true
trap - EXIT

total=$(callgrind_annotate "$out/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen {gsub(",", "", $1); print $1; seen = 1}')
echo "deliveries                  $delivered"
echo "instructions (whole run)    $total"
echo "instructions per delivery   $(( total / delivered ))"
grep -E '^lost / dup' "$out/loadgen.txt" || true
echo
echo "top functions by own instructions (callgrind file: $out/callgrind.out)"
callgrind_annotate "$out/callgrind.out" 2>/dev/null | sed -n '/file:function/,$p' | sed -n '3,27p' | cut -c1-160 || true

#!/usr/bin/env bash
# Herald vs nchan: one load scenario against both servers on loopback, in the
# same run, with herald-loadgen; prints both reports and the ratios.
#
#   bench/compare.sh SCENARIO [extra herald-loadgen options…]
#
# Scenarios (SIZE=full for the real sizes; the default SIZE=small is a smoke run):
#   a  1,000 subscribers on one topic × 100 events/s
#   b  10,000 subscribers × 10 events/s
#   c  19,000 idle connections: memory per connection
#   d  catch-up after a reconnect that missed 1,000 events (Last-Event-ID)
#   e  publish latency while fanning out to 10,000 (10 events/s, the load of b,
#      plus a probe: a second generator process with one subscriber on its own
#      topic that publishes 20 events/s and times each publish; the main
#      generator's own publish timings wait behind its 10,000 receivers)
#   f  1,000 topics × 10 subscribers each, user-scoped events (nchan: plain topics)
#
# Extra options go to herald-loadgen after the scenario's own and override them
# (e.g. `bench/compare.sh a -n 300 -d 5s`). Environment: SIZE (small|full),
# ONLY (herald|nchan), CARGO_TARGET_DIR, HERALD_BIN, LOADGEN_BIN, NGINX,
# NCHAN_MODULE, OUT (directory for the JSON reports; default a temp dir).
#
# Needs nginx with the nchan module (Debian: apt-get install nginx
# libnginx-mod-nchan); without them it prints SKIP and exits 0. It installs
# nothing itself. Exit status: 0 clean, 1 a run saw lost / duplicated /
# out-of-order events, other: a run failed. Timings never fail it.
set -euo pipefail

scenario=${1:-}
case "$scenario" in
  a|b|c|d|e|f) shift ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
herald_bin=${HERALD_BIN:-$target/release/herald}
loadgen_bin=${LOADGEN_BIN:-$target/release/herald-loadgen}
nginx_bin=${NGINX:-/usr/sbin/nginx}
nchan_module=${NCHAN_MODULE:-/usr/lib/nginx/modules/ngx_nchan_module.so}
size=${SIZE:-small}
only=${ONLY:-}

if [[ -z "$only" || "$only" == nchan ]] && { [[ ! -x "$nginx_bin" ]] || [[ ! -f "$nchan_module" ]]; }; then
  echo "SKIP: nchan comparison needs $nginx_bin and $nchan_module"
  echo "      install them with: sudo apt-get install nginx libnginx-mod-nchan"
  echo "      (or run Herald alone: ONLY=herald $0 $scenario)"
  exit 0
fi
for bin in "$herald_bin" "$loadgen_bin"; do
  if [[ ! -x "$bin" ]]; then
    echo "error: $bin not found; build first: cargo build --release -p herald-server -p herald-loadgen" >&2
    exit 2
  fi
done

# Every connection is a descriptor, in the servers and in the generator.
ulimit -n "$(ulimit -Hn)"

# Scenario options: small (smoke) and full sizes.
sources=(--source-ips 127.0.0.1-127.0.0.20)
probe=()
case "$scenario:$size" in
  a:full)  cmd=run;     opts=(-n 1000 -k 1 -r 100 -d 30s --warmup 5s) ;;
  a:*)     cmd=run;     opts=(-n 100 -k 1 -r 100 -d 3s --warmup 1s) ;;
  b:full)  cmd=run;     opts=(-n 10000 -k 1 -r 10 -d 30s --warmup 5s "${sources[@]}") ;;
  b:*)     cmd=run;     opts=(-n 200 -k 1 -r 10 -d 3s --warmup 1s) ;;
  c:full)  cmd=run;     opts=(-n 19000 --idle -d 10s --settle 3s "${sources[@]}") ;;
  c:*)     cmd=run;     opts=(-n 200 --idle -d 2s) ;;
  d:full)  cmd=catchup; opts=(-m 1000 -n 1) ;;
  d:*)     cmd=catchup; opts=(-m 1000 -n 1) ;;
  e:full)  cmd=run;     opts=(-n 10000 -k 1 -r 10 -d 30s --warmup 5s --publishers 1 "${sources[@]}")
           probe=(-n 1 -k 1 -r 20 -d 25s --warmup 1s --topic-template 'probe.{k}') ;;
  e:*)     cmd=run;     opts=(-n 200 -k 1 -r 10 -d 3s --warmup 1s --publishers 1)
           probe=(-n 1 -k 1 -r 20 -d 2s --warmup 1s --topic-template 'probe.{k}') ;;
  f:full)  cmd=run;     opts=(-n 10000 -k 1000 -r 1000 -d 30s --warmup 5s --user-scoped "${sources[@]}") ;;
  f:*)     cmd=run;     opts=(-n 200 -k 20 -r 100 -d 3s --warmup 1s --user-scoped) ;;
esac

work=$(mktemp -d -t herald-compare.XXXXXX)
out=${OUT:-$work}
mkdir -p "$out"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port: nothing answers on it.
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "error: no free port found" >&2
  exit 2
}

wait_port() { # port
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "error: nothing listening on 127.0.0.1:$1" >&2
  exit 2
}

start_herald() {
  cat >"$work/herald.toml" <<EOF
listen = "127.0.0.1:0"
[retention]
max_events = 2000
max_age_secs = 3600
[limits]
max_connections = 100000
max_connections_per_user = 64
publish_rate_per_sec = 0
EOF
  RUST_LOG=warn "$herald_bin" serve --config "$work/herald.toml" --listen 127.0.0.1:0 \
    >"$work/herald.out" 2>"$work/herald.err" &
  herald_pid=$!
  pids+=("$herald_pid")
  for _ in $(seq 1 100); do
    herald_addr=$(sed -n 's#^herald listening on http://##p' "$work/herald.out" | head -1)
    [[ -n "$herald_addr" ]] && return
    sleep 0.1
  done
  echo "error: herald did not start:" >&2
  cat "$work/herald.err" >&2
  exit 2
}

start_nchan() {
  nchan_port=$(free_port)
  local prefix=$work/nginx
  mkdir -p "$prefix/logs" "$prefix/tmp"
  # In-memory nchan, one worker; buffers sized like Herald's retention above.
  cat >"$prefix/nginx.conf" <<EOF
load_module $nchan_module;
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $prefix/tmp/body;
  proxy_temp_path $prefix/tmp/proxy;
  fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi;
  scgi_temp_path $prefix/tmp/scgi;
  nchan_shared_memory_size 256m;
  server {
    listen 127.0.0.1:$nchan_port;
    nchan_message_buffer_length 2000;
    nchan_message_timeout 1h;
    location = /pub {
      nchan_publisher;
      nchan_channel_id \$arg_topic;
    }
    location = /sub {
      nchan_subscriber eventsource;
      nchan_channel_id \$arg_topic;
      nchan_subscriber_first_message newest;
    }
  }
}
EOF
  "$nginx_bin" -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" -t -q
  "$nginx_bin" -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" &
  nchan_pid=$!
  pids+=("$nchan_pid")
  wait_port "$nchan_port"
  nchan_worker=$(pgrep -P "$nchan_pid" | head -1)
}

status=0
run_against() { # name, loadgen options…
  local name=$1
  shift
  echo
  echo "=== $name: $cmd ${opts[*]} $*"
  local code=0 probe_pid=
  if ((${#probe[@]})); then
    # Once the main run's subscribers are connected and publishing has begun.
    (sleep 3 && "$loadgen_bin" run "${probe[@]}" --json "$out/$name-probe.json" "$@" \
      >"$out/$name-probe.txt" 2>&1) &
    probe_pid=$!
  fi
  "$loadgen_bin" "$cmd" "${opts[@]}" --json "$out/$name.json" "$@" || code=$?
  echo "=== $name: exit $code"
  if [[ -n "$probe_pid" ]]; then
    wait "$probe_pid" || code=$?
    echo "=== $name probe (${probe[*]}):"
    grep -E '^(publish round trip|lost / dup)' "$out/$name-probe.txt" || cat "$out/$name-probe.txt"
  fi
  if ((code != 0 && status != 1)); then status=$code; fi
}

extra=("$@")
echo "scenario $scenario ($size); reports in $out"
if [[ -z "$only" || "$only" == herald ]]; then
  start_herald
  run_against herald --url "http://$herald_addr" --server-pid "$herald_pid" "${extra[@]}"
fi
if [[ -z "$only" || "$only" == nchan ]]; then
  start_nchan
  nchan_opts=(--url "http://127.0.0.1:$nchan_port" --server-pid "$nchan_pid"
    --subscribe-template '/sub?topic={topic}' --publish-template '/pub?topic={topic}' --publish-body '{data}')
  [[ -n "$nchan_worker" ]] && nchan_opts+=(--server-pid "$nchan_worker")
  run_against nchan "${nchan_opts[@]}" "${extra[@]}"
fi
if [[ -f "$out/herald.json" && -f "$out/nchan.json" ]]; then
  echo
  echo "=== ratios (herald / nchan; below 1 is better for times, CPU and memory)"
  "$loadgen_bin" compare "$out/herald.json" "$out/nchan.json" --names herald,nchan
  if [[ -f "$out/herald-probe.json" && -f "$out/nchan-probe.json" ]]; then
    echo
    echo "=== probe ratios (publish round trips from a process of its own)"
    "$loadgen_bin" compare "$out/herald-probe.json" "$out/nchan-probe.json" --names herald,nchan
  fi
fi
[[ -n "${OUT:-}" ]] || echo "(reports removed with $work; set OUT=dir to keep them)"
exit "$status"

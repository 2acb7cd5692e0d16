#!/usr/bin/env bash
# The faultproxy benchmark (issue 3, "Performance"): measures every figure three ways in one run,
# directly against an upstream, through HAProxy (TCP mode, one thread) and through faultproxy (no
# toxics, except the 100 ms latency figure), and prints a table of absolute figures, ratios to
# direct, and the issue's targets next to them. Figures are printed, never asserted: the exit code
# is 0 whenever the run completed, whatever the figures.
#
# It builds nothing: binaries come from the release build (`cmake --preset release && cmake --build
# --preset release`, or `./dev build`). It starts, on free 127.0.0.1 ports and with its files in a
# temporary folder: the upstream servers (proxy_bench upstream), haproxy, and faultproxy (whose
# proxies it creates through the API with faultproxy-cli). On exit, however it exits, it stops
# exactly those processes, by the PIDs it recorded, and removes the folder. A run takes about a
# minute with the default 3 s per figure (13 figures x 3 targets); at most ~2 minutes.
#
# Usage: bench/faultproxy.sh [--seconds S] [--rounds N] [--idle N] [--threads N] [--busy-poll-us N]
#                            [--only GROUPS] [--copy-paths MODES] [--build-dir DIR]
#   --seconds S     measuring time per figure and target (default 3; env BENCH_SECONDS)
#   --rounds N      throughput figures: S is split into N rounds, the targets taking turns, and each
#                   figure is the median of its rounds (default 3; env BENCH_ROUNDS)
#   --idle N        idle proxied connections for the RSS figure (default 1000; env BENCH_IDLE)
#   --threads N     faultproxy -threads (default: faultproxy's own default; env FAULTPROXY_THREADS)
#   --busy-poll-us N  faultproxy -busy-poll-us (default: faultproxy's own default; env
#                   FAULTPROXY_BUSY_POLL_US); 0 shows the figures without busy polling
#   --only GROUPS   measure only these comma-separated figure groups: rss, bulk, rr (request/response
#                   and round-trip latency), conn (new connections), toxic (100 ms latency toxic),
#                   tools (issue 15's figures with the standard tools, below)
#   --copy-paths MODES  also measure `proxy_bench copy-proxy` (one-thread epoll proxies, one per
#                   comma-separated mode: copy16k, copy256k, adaptive, drain, msgmore, splice), to
#                   compare ways of moving bytes with the same figures (issue 15)
#   --build-dir DIR where the binaries are (default <repo>/build/release; env BUILD_DIR)
# Env: HAPROXY=path of haproxy (default: haproxy from PATH; without it the HAProxy column is skipped;
# HAPROXY=none skips it too).
# The tools group (issue 15) measures what users measure with the tools they know, direct and through
# faultproxy in interleaved rounds (medians): iperf3 one stream, redis-benchmark GET with 50 clients,
# and redis-benchmark GET with a new connection per request (-k 0), against a redis-server and an
# iperf3 server it starts; it is skipped when iperf3, redis-server or redis-benchmark is missing. FAULTPROXY=path of the faultproxy binary to measure (default: the one in
# the build dir; e.g. a copy of an older build, to compare two versions run after run).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${BENCH_SECONDS:-3}"
rounds="${BENCH_ROUNDS:-3}"
idle="${BENCH_IDLE:-1000}"
threads="${FAULTPROXY_THREADS:-}"
busy_poll="${FAULTPROXY_BUSY_POLL_US:-}"
build_dir="${BUILD_DIR:-$repo/build/release}"
haproxy_bin="${HAPROXY:-$(command -v haproxy || true)}"
only=""
copy_paths=""

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
    --idle) idle="${2:?--idle needs a value}"; shift 2 ;;
    --threads) threads="${2:?--threads needs a value}"; shift 2 ;;
    --busy-poll-us) busy_poll="${2:?--busy-poll-us needs a value}"; shift 2 ;;
    --only) only="${2:?--only needs a value}"; shift 2 ;;
    --copy-paths) copy_paths="${2:?--copy-paths needs a value}"; shift 2 ;;
    --build-dir) build_dir="${2:?--build-dir needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "faultproxy.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

bench_bin="$build_dir/bench/proxy_bench"
faultproxy_bin="${FAULTPROXY:-$build_dir/src/faultproxy/faultproxy}"
cli_bin="$build_dir/src/faultproxy/cli/faultproxy-cli"
for bin in "$bench_bin" "$faultproxy_bin" "$cli_bin"; do
  if [[ ! -x "$bin" ]]; then
    echo "faultproxy.sh: $bin is missing; build the release preset first (./dev build)" >&2
    exit 1
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/faultproxy-bench.XXXXXX")"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {  # message [log file]
  echo "faultproxy.sh: $1" >&2
  if [[ -n "${2:-}" && -s "$2" ]]; then tail -n 20 "$2" | sed 's/^/    /' >&2; fi
  exit 1
}

accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # port pid what log
  local i
  for ((i = 0; i < 200; i++)); do
    accepts "$1" && return 0
    kill -0 "$2" 2>/dev/null || fail "$3 exited during start-up" "$4"
    sleep 0.05
  done
  fail "$3 did not listen on 127.0.0.1:$1 within 10 s" "$4"
}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Upstream servers: echo, source (bulk) and one-shot echo (new connections).
"$bench_bin" upstream --ports-file "$work/upstream.ports" >"$work/upstream.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 200; i++)); do [[ -s "$work/upstream.ports" ]] && break; sleep 0.05; done
[[ -s "$work/upstream.ports" ]] || fail "the upstream servers did not start" "$work/upstream.log"
read -r up_echo up_source up_oneshot <"$work/upstream.ports"
targets=(--target "name=direct,echo=$up_echo,source=$up_source,oneshot=$up_oneshot")

# HAProxy: TCP mode, one thread, one frontend per upstream.
haproxy_note="not installed: skipped"
if [[ "$haproxy_bin" != none && -n "$haproxy_bin" && -x "$haproxy_bin" ]]; then
  read -r hp_echo hp_source hp_oneshot <<<"$("$bench_bin" free-ports 3)"
  cat >"$work/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen echo
    bind 127.0.0.1:$hp_echo
    server upstream 127.0.0.1:$up_echo
listen source
    bind 127.0.0.1:$hp_source
    server upstream 127.0.0.1:$up_source
listen oneshot
    bind 127.0.0.1:$hp_oneshot
    server upstream 127.0.0.1:$up_oneshot
CFG
  "$haproxy_bin" -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
  hp_pid=$!
  pids+=("$hp_pid")
  for port in "$hp_echo" "$hp_source" "$hp_oneshot"; do wait_port "$port" "$hp_pid" haproxy "$work/haproxy.log"; done
  targets+=(--target "name=haproxy,echo=$hp_echo,source=$hp_source,oneshot=$hp_oneshot,pid=$hp_pid")
  # sed reads to the end: with head, haproxy could die of SIGPIPE and pipefail end the script.
  haproxy_note="$("$haproxy_bin" -v | sed -n 1p | cut -d' ' -f1-3), nbthread 1, tcp mode"
fi

# faultproxy, with its three proxies created through the API (ports chosen by the server).
api_port="$("$bench_bin" free-ports 1)"
fp_args=(-host 127.0.0.1 -port "$api_port")
[[ -n "$threads" ]] && fp_args+=(-threads "$threads")
[[ -n "$busy_poll" ]] && fp_args+=(-busy-poll-us "$busy_poll")
LOG_LEVEL="${LOG_LEVEL:-error}" "$faultproxy_bin" "${fp_args[@]}" >"$work/faultproxy.log" 2>&1 &
fp_pid=$!
pids+=("$fp_pid")
wait_port "$api_port" "$fp_pid" faultproxy "$work/faultproxy.log"
cli=("$cli_bin" -h "127.0.0.1:$api_port")
for name in echo source oneshot; do
  var="up_$name"
  "${cli[@]}" create -l 127.0.0.1:0 -u "127.0.0.1:${!var}" "bench_$name" >/dev/null ||
    fail "could not create proxy bench_$name" "$work/faultproxy.log"
done
declare -A fp_port
while IFS=$'\t' read -r name listen _; do fp_port[$name]="${listen##*:}"; done < <("${cli[@]}" list)
targets+=(--target "name=faultproxy,echo=${fp_port[bench_echo]},source=${fp_port[bench_source]},oneshot=${fp_port[bench_oneshot]},pid=$fp_pid,api=127.0.0.1:$api_port,echo_proxy=bench_echo")

# Copy-path proxies (--copy-paths): one process per mode, in front of the same upstreams.
for mode in ${copy_paths//,/ }; do
  "$bench_bin" copy-proxy --mode "$mode" --ports-file "$work/copy-$mode.ports" "$up_echo" "$up_source" "$up_oneshot" \
    >"$work/copy-$mode.log" 2>&1 &
  cp_pid=$!
  pids+=("$cp_pid")
  for ((i = 0; i < 200; i++)); do [[ -s "$work/copy-$mode.ports" ]] && break; sleep 0.05; done
  [[ -s "$work/copy-$mode.ports" ]] || fail "copy-proxy --mode $mode did not start" "$work/copy-$mode.log"
  read -r cp_echo cp_source cp_oneshot <"$work/copy-$mode.ports"
  targets+=(--target "name=$mode,echo=$cp_echo,source=$cp_source,oneshot=$cp_oneshot,pid=$cp_pid")
done

echo "faultproxy benchmark: $(nproc) CPUs, ${seconds} s per figure; haproxy: $haproxy_note;" \
  "faultproxy: -threads ${threads:-default} -busy-poll-us ${busy_poll:-default}; binaries from $build_dir"
# The driver's groups are all but "tools", which this script measures itself (below).
driver_only="$(tr ',' '\n' <<<"$only" | grep -v '^tools$' | paste -sd, || true)"
if [[ -z "$only" || -n "$driver_only" ]]; then
  only_args=()
  [[ -n "$driver_only" ]] && only_args=(--only "$driver_only")
  timeout 300 "$bench_bin" run "${targets[@]}" --seconds "$seconds" --rounds "$rounds" --idle "$idle" "${only_args[@]}" ||
    fail "the benchmark driver failed (exit $?)"
fi
[[ -z "$only" || ",$only," == *,tools,* ]] || exit 0

# ------------------------------------------------------------------------------------------ tools
# Issue 15's figures as users take them: each tool run against the upstream directly and through
# faultproxy in turn, `rounds` times; a figure is the median of its rounds, its ratio is
# faultproxy's median over direct's.
missing_tools=()
for tool in iperf3 redis-server redis-benchmark; do command -v "$tool" >/dev/null || missing_tools+=("$tool"); done
if ((${#missing_tools[@]})); then
  echo
  echo "Standard tools (issue 15): skipped, not installed: ${missing_tools[*]} (./dev setup installs them)"
  exit 0
fi
read -r redis_port iperf_port <<<"$("$bench_bin" free-ports 2)"
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --daemonize no \
  --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_port "$redis_port" "$redis_pid" redis-server "$work/redis.log"
redis-cli -p "$redis_port" set key:__rand_int__ xxx >/dev/null
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >"$work/iperf3.log" 2>&1 &
iperf_pid=$!
pids+=("$iperf_pid")
wait_port "$iperf_port" "$iperf_pid" "iperf3 -s" "$work/iperf3.log"
for name in redis iperf; do
  var="${name}_port"
  "${cli[@]}" create -l 127.0.0.1:0 -u "127.0.0.1:${!var}" "bench_$name" >/dev/null ||
    fail "could not create proxy bench_$name" "$work/faultproxy.log"
done
while IFS=$'\t' read -r name listen _; do fp_port[$name]="${listen##*:}"; done < <("${cli[@]}" list)

round_seconds=$(((seconds + rounds - 1) / rounds))
((round_seconds >= 1)) || round_seconds=1
bulk_mibs() {  # port: MiB/s received by the iperf3 server, one stream, round_seconds after 1 s of warm-up
  iperf3 -c 127.0.0.1 -p "$1" -P 1 -O 1 -t "$round_seconds" -J 2>"$work/iperf3-client.err" |
    jq -e '.end.sum_received.bits_per_second / 8 / 1048576' || fail "iperf3 against port $1 failed" "$work/iperf3-client.err"
}
get_rps() {  # port keepalive requests: redis-benchmark GET, 50 clients
  redis-benchmark -h 127.0.0.1 -p "$1" -t get -c 50 -k "$2" -n "$3" --csv 2>"$work/redis-benchmark.err" |
    awk -F'"' '$2 == "GET" { print $4 }' | grep . || fail "redis-benchmark against port $1 failed" "$work/redis-benchmark.err"
}
# Request counts sized to about round_seconds at direct's pace on this machine.
rr_requests=$((100000 * round_seconds))
conn_requests=$((15000 * round_seconds))
# CPU accounting, to tell what a target asks of the proxy (below): the machine's busy time (user,
# nice, system, irq, softirq; not idle, iowait or steal; softirq work is charged to the process it
# interrupts, whichever that is) and faultproxy's own, in clock ticks.
clk_tck="$(getconf CLK_TCK)"
machine_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
process_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# measure key target command...: runs the command, which prints the figure (a rate), and appends to
# samples[key,target] the figure, to busy[key,target] the CPUs the machine kept busy meanwhile, and
# to proxy_cost[key,target] faultproxy's CPU per unit of the figure, in microseconds.
declare -A busy=() proxy_cost=()
measure() {
  local key=$1 target=$2 t0 b0 p0 figure t1 b1 p1 b p
  shift 2
  t0=$(date +%s%N) b0=$(machine_busy_ticks) p0=$(process_ticks "$fp_pid")
  figure="$("$@")"
  t1=$(date +%s%N) b1=$(machine_busy_ticks) p1=$(process_ticks "$fp_pid")
  samples[$key,$target]+="$figure "
  read -r b p < <(awk -v f="$figure" -v t="$((t1 - t0))" -v b="$((b1 - b0))" -v p="$((p1 - p0))" \
    -v hz="$clk_tck" 'BEGIN { s = t / 1e9; printf "%.3f %.3f\n", b / hz / s, (f > 0) ? p / hz * 1e6 / (f * s) : 0 }')
  busy[$key,$target]+="$b "
  proxy_cost[$key,$target]+="$p "
}
declare -A samples=()
echo
echo "  measuring with the standard tools (iperf3, redis-benchmark), $rounds interleaved rounds..."
for ((r = 0; r < rounds; r++)); do
  for target in direct faultproxy; do
    if [[ $target == direct ]]; then p_iperf=$iperf_port p_redis=$redis_port; else
      p_iperf=${fp_port[bench_iperf]} p_redis=${fp_port[bench_redis]}; fi
    measure bulk "$target" bulk_mibs "$p_iperf"
    measure rr "$target" get_rps "$p_redis" 1 "$rr_requests"
    measure conn "$target" get_rps "$p_redis" 0 "$conn_requests"
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "Standard tools (issue 15): medians of $rounds interleaved rounds (each direct, then through faultproxy);" \
  "load average $(cut -d' ' -f1 /proc/loadavg) after, on $(nproc) CPUs"
echo
printf '%-52s %-14s %-22s %-10s %s\n' figure direct faultproxy target "faultproxy vs target"
printf '%s\n' "$(printf -- '-%.0s' {1..120})"
tool_row() {  # key label unit target
  local d f ratio verdict
  d="$(median <<<"${samples[$1,direct]}")"
  f="$(median <<<"${samples[$1,faultproxy]}")"
  ratio="$(awk -v d="$d" -v f="$f" 'BEGIN { printf "%.2f", (d > 0) ? f / d : 0 }')"
  verdict="$(awk -v r="$ratio" -v t="$4" 'BEGIN { print (r >= t) ? "meets" : "below" }')"
  printf '%-52s %-14s %-22s %-10s %s\n' "$2 ($3)" "$(printf '%.1f' "$d")" "$(printf '%.1f' "$f") (${ratio}x)" ">= ${4}x" "$verdict"
}
tool_row bulk "bulk, iperf3 1 stream" "MiB/s" 0.75
tool_row rr "redis-benchmark GET, 50 clients" "req/s" 0.80
tool_row conn "new connections, redis-benchmark -k 0 -c 50" "req/s" 0.60

# What each target asks of faultproxy's CPU. Through faultproxy, the machine was busy for B CPUs at
# rate F, faultproxy itself costing P per unit. At the target's rate T (target x direct's rate), the
# machine has $(nproc) / T per unit, so with the tools costing what they cost through faultproxy
# (B / F - P per unit), faultproxy may cost at most $(nproc) / T - (B / F - P); and for one stream,
# served by one worker thread, at most 1 / T as well.
echo
printf '%-52s %-18s %-22s %s\n' "CPU at the target (medians)" "CPUs busy, direct" "through faultproxy" \
  "faultproxy's CPU per unit: now -> the most the target allows"
printf '%s\n' "$(printf -- '-%.0s' {1..140})"
cpu_row() {  # key label unit target [one_stream]
  local d f bd bf p
  d="$(median <<<"${samples[$1,direct]}")"
  f="$(median <<<"${samples[$1,faultproxy]}")"
  bd="$(median <<<"${busy[$1,direct]}")"
  bf="$(median <<<"${busy[$1,faultproxy]}")"
  p="$(median <<<"${proxy_cost[$1,faultproxy]}")"
  awk -v label="$2" -v unit="${3%/s}" -v t="$4" -v one="${5:-0}" -v d="$d" -v f="$f" -v bd="$bd" -v bf="$bf" \
    -v p="$p" -v n="$(nproc)" 'BEGIN {
      rate = t * d; tools = (f > 0) ? bf * 1e6 / f - p : 0
      allowed = n * 1e6 / rate - tools; how = ""
      if (one && 1e6 / rate < allowed) { allowed = 1e6 / rate; how = " (one worker thread)" }
      printf "%-52s %-18s %-22s %.1f -> %s us per %s%s\n", label, sprintf("%.2f", bd), sprintf("%.2f", bf), p,
        (allowed > 0) ? sprintf("%.1f", allowed) : "none", unit, how }'
}
cpu_row bulk "bulk, iperf3 1 stream" "MiB/s" 0.75 1
cpu_row rr "redis-benchmark GET, 50 clients" "req/s" 0.80
cpu_row conn "new connections, redis-benchmark -k 0 -c 50" "req/s" 0.60

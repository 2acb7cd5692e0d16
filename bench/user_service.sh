#!/usr/bin/env bash
# The user-service benchmark (issue 4, "Performance"): wrk at 50 connections against user-service
# and, in the same run, against user-service-baseline (the same HTTP stack answering a constant
# body), then the figures under faults through faultproxy; prints a table of absolute figures
# (median and range over the runs), ratios and the issue's targets. Figures are printed, never
# asserted: the exit code is 0 whenever the run completed, whatever the figures.
#
# It builds nothing: binaries come from the release build (`./dev build`, or `./dev bench
# user_service`, which builds first). It starts, on free 127.0.0.1 ports with its files in a
# temporary folder: Redis master and replica, MariaDB (mariadb-install-db + mariadbd, as ./dev),
# faultproxy with the proxies mysql, redis-master and redis-replica, two user-service instances
# (`direct`, connected straight to Redis and MariaDB, for the load figures; `proxied`, connected
# through the three proxies, for the figures under faults) and user-service-baseline. On exit,
# however it exits, it stops exactly the PIDs it started and removes the folder. A run takes
# about 75 s with the defaults (at most ~3 minutes on a loaded machine). The instances run with
# their defaults plus --service-arg flags only (USER_SERVICE_* variables are not passed on).
#
# Figures (wrk -c50):
#   GET cache hit   GET /users/u-1, cached in Redis, against user-service and the baseline in turn
#                   (the order swapped every other run); checked: every answer came from the cache;
#                   also the CPU time per request of user-service, of the Redis master and of the
#                   baseline (from /proc/PID/task/*/schedstat): less sensitive to a busy machine
#   GET miss        a user in MariaDB only: each request asks for a different id, never asked
#                   before (ids m-1.. seeded by SQL straight into MariaDB, none ever cached), so the
#                   service's own cache fill after a miss can never turn a later request into a
#                   hit; checked: every answer came from MariaDB (X-Data-Source origin, metrics)
#   PUT             1000 ids, upserts (durable InnoDB commits, then the Redis compare-and-set)
#   RSS             VmHWM (peak resident set) of the direct instance after all the load above
#   Faults (the proxied instance; toxics `timeout` 0 = blackhole, both directions of `mysql`):
#   cached GET p99, healthy vs MariaDB blackholed (wrk -c50, alternating, breaker open);
#   PUT latency with a paced client (bench/http_pace, one PUT every 5 ms, open loop) from the
#   moment the toxics are added: PUTs that tried MariaDB (the breaker was still closed; answer
#   "MariaDB: ..."), PUTs queued behind the calls in flight (admission control) and answered
#   "MariaDB unavailable" the moment the breaker opened, and PUTs sent after it opened, refused at
#   once (answer "MariaDB unavailable: ...") are reported separately; the same pacing against the baseline at the same time shows the latency
#   the machine itself adds.
#   Recovery: MariaDB refused (proxy disabled) or blackholed until the breaker opens, then back: the
#   time to the first PUT answered 2xx (PUTs back to back), for each kind of failure.
#   Cost of a cached GET (load-independent): issue 14's additions to it, each on its own
#   (bench/user_service_bench, ns, and their share of the CPU per cached GET above); and,
#   when valgrind is installed, instructions and allocations per cached GET of a fresh user-service
#   instance and of the baseline under callgrind (10 connections, steady state: counted from after a
#   warm-up; --callgrind-seconds).
# Exit code: 0 when the run completed (whatever the figures), 1 when something could not start
# (the message names it and shows the tail of its log), 2 for bad arguments.
#
# Usage: bench/user_service.sh [--seconds S] [--runs N] [--wrk-threads N] [--build-dir DIR] [--service-arg A]...
#                              [--callgrind-seconds S] [--keep]
#   --seconds S      wrk duration per figure and run (default 3; env BENCH_SECONDS)
#   --runs N         repetitions of every figure (default 3; env BENCH_RUNS)
#   --wrk-threads N  wrk -t (default 2; env WRK_THREADS)
#   --build-dir DIR  where the binaries are (default <repo>/build/release; env BUILD_DIR)
#   --service-arg A  one more flag for both user-service instances, e.g. --service-arg --mysql.pool_size=8
#   --callgrind-seconds S  measuring time of each callgrind figure (default 5; 0 skips them; env CALLGRIND_SECONDS)
#   --keep           keep the temporary folder (logs, raw figures in results and pace-*) and print its path
# Env: LOG_LEVEL (default warn) for user-service and faultproxy; their logs are shown on failure.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${BENCH_SECONDS:-3}"
runs="${BENCH_RUNS:-3}"
wrk_threads="${WRK_THREADS:-2}"
build_dir="${BUILD_DIR:-$repo/build/release}"
connections=50
callgrind_seconds="${CALLGRIND_SECONDS:-5}"
service_args=()
keep=0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    --runs) runs="${2:?--runs needs a value}"; shift 2 ;;
    --wrk-threads) wrk_threads="${2:?--wrk-threads needs a value}"; shift 2 ;;
    --build-dir) build_dir="${2:?--build-dir needs a value}"; shift 2 ;;
    --service-arg) service_args+=("${2:?--service-arg needs a value}"); shift 2 ;;
    --callgrind-seconds) callgrind_seconds="${2:?--callgrind-seconds needs a value}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "user_service.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "user_service.sh: --seconds must be a whole number >= 1" >&2; exit 2; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "user_service.sh: --runs must be >= 1" >&2; exit 2; }
[[ $wrk_threads =~ ^[1-9][0-9]*$ ]] || { echo "user_service.sh: --wrk-threads must be >= 1" >&2; exit 2; }
[[ $callgrind_seconds =~ ^[0-9]+$ ]] || { echo "user_service.sh: --callgrind-seconds must be a whole number" >&2; exit 2; }

us_bin="$build_dir/src/user_service/user-service"
baseline_bin="$build_dir/src/user_service/user-service-baseline"
faultproxy_bin="$build_dir/src/faultproxy/faultproxy"
cli_bin="$build_dir/src/faultproxy/cli/faultproxy-cli"
ports_bin="$build_dir/bench/proxy_bench"
pace_bin="$build_dir/bench/http_pace"
us_bench_bin="$build_dir/bench/user_service_bench"  # optional: the cost of issue 14's additions
for bin in "$us_bin" "$baseline_bin" "$faultproxy_bin" "$cli_bin" "$ports_bin" "$pace_bin"; do
  if [[ ! -x "$bin" ]]; then
    echo "user_service.sh: $bin is missing; build the release preset first (./dev build)" >&2
    exit 1
  fi
done
for tool in wrk redis-server redis-cli mariadbd mariadb-install-db mariadb curl; do
  command -v "$tool" >/dev/null || { echo "user_service.sh: $tool is not installed (./dev setup)" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/user-service-bench.XXXXXX")"
pids=()
declare -A pid_of  # what -> pid, for the processes the figures look at
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((keep)); then echo "user_service.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {  # message [log file]
  echo "user_service.sh: $1" >&2
  if [[ -n "${2:-}" && -s "$2" ]]; then tail -n 20 "$2" | sed 's/^/    /' >&2; fi
  exit 1
}

accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until() {  # seconds pid what log command...
  local limit=$1 pid=$2 what=$3 log=$4 i
  shift 4
  for ((i = 0; i < limit * 20; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || fail "$what exited during start-up" "$log"
    sleep 0.05
  done
  fail "$what was not ready within $limit s" "$log"
}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# The instances' settings are their defaults and --service-arg, whatever the caller's environment.
unset "${!USER_SERVICE_@}"
log_level="${LOG_LEVEL:-warn}"
read -r p_master p_replica p_mariadb p_api p_direct p_proxied p_baseline a_direct a_proxied p_cg a_cg p_cg_base \
  <<<"$("$ports_bin" free-ports 12)"
# The admin listener (/metrics, /config) of each user-service instance, by its public port.
declare -A admin_of=([$p_direct]=$a_direct [$p_proxied]=$a_proxied [$p_cg]=$a_cg)

# ---- dependencies -------------------------------------------------------------------------------
for node in master replica; do
  port_var="p_$node"
  args=(--port "${!port_var}" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --daemonize no
    --protected-mode no --repl-diskless-sync-delay 0 --dbfilename "$node.rdb")
  [[ $node == replica ]] && args+=(--replicaof 127.0.0.1 "$p_master")
  redis-server "${args[@]}" >"$work/redis-$node.log" 2>&1 &
  pids+=($!)
  pid_of[redis-$node]=$!
  wait_until 20 "$!" "redis $node" "$work/redis-$node.log" redis-cli -p "${!port_var}" ping
done
wait_until 20 "${pid_of[redis-replica]}" "the redis replica's sync" "$work/redis-replica.log" \
  bash -c "redis-cli -p $p_replica info replication | grep -q master_link_status:up"

# A private tmpdir: bootstrap temporary tables in a shared /tmp were seen vanishing while other
# MariaDB instances ran on the machine (as in src/testing/servers.cpp).
mkdir -p "$work/mariadb-tmp"
mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$work/mariadb" --tmpdir="$work/mariadb-tmp" \
  --auth-root-authentication-method=normal --skip-test-db --innodb-log-file-size=8M \
  --innodb-buffer-pool-size=32M >"$work/mariadb-install.log" 2>&1 ||
  fail "mariadb-install-db failed: $(grep -m3 -iE 'error|fatal|abort' "$work/mariadb-install.log")"
mariadbd --no-defaults --user="$(id -un)" --datadir="$work/mariadb" --tmpdir="$work/mariadb-tmp" --bind-address=127.0.0.1 \
  --port="$p_mariadb" --socket="$work/mysqld.sock" --pid-file="$work/mysqld.pid" \
  --log-error="$work/mariadb.log" --skip-name-resolve --innodb-log-file-size=8M \
  --innodb-buffer-pool-size=32M --max-connections=500 >/dev/null 2>&1 &
pids+=($!)
sql() { mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$p_mariadb" -uroot --batch --skip-column-names -e "$1"; }
wait_until 60 "$!" mariadbd "$work/mariadb.log" sql "SELECT 1"

# faultproxy and its three proxies (ports chosen by the server).
LOG_LEVEL="$log_level" "$faultproxy_bin" -host 127.0.0.1 -port "$p_api" >"$work/faultproxy.log" 2>&1 &
fp_pid=$!
pids+=("$fp_pid")
wait_until 20 "$fp_pid" faultproxy "$work/faultproxy.log" accepts "$p_api"
cli=("$cli_bin" -h "127.0.0.1:$p_api")
"${cli[@]}" create -l 127.0.0.1:0 -u "127.0.0.1:$p_mariadb" mysql >/dev/null
"${cli[@]}" create -l 127.0.0.1:0 -u "127.0.0.1:$p_master" redis-master >/dev/null
"${cli[@]}" create -l 127.0.0.1:0 -u "127.0.0.1:$p_replica" redis-replica >/dev/null
declare -A proxy_port
while IFS=$'\t' read -r name listen _; do proxy_port[$name]="${listen##*:}"; done < <("${cli[@]}" list)
[[ -n "${proxy_port[mysql]:-}" && -n "${proxy_port[redis-master]:-}" && -n "${proxy_port[redis-replica]:-}" ]] ||
  fail "could not create the proxies" "$work/faultproxy.log"

# ---- the services ---------------------------------------------------------------------------------
start_service() {  # name port redis-master-port redis-replica-port mysql-port
  "$us_bin" --listen="127.0.0.1:$2" --admin.listen="127.0.0.1:${admin_of[$2]}" --redis.master="127.0.0.1:$3" --redis.replica="127.0.0.1:$4" \
    --mysql.port="$5" --log_level="$log_level" "${service_args[@]}" >"$work/us-$1.log" 2>&1 &
  pids+=($!)
  pid_of[$1]=$!
}
ready_up() { curl -fsS -m 1 "http://127.0.0.1:$1/health/ready" | grep -q '^{[^{]*"status":"up"'; }  # top level, before "dependencies"
start_service direct "$p_direct" "$p_master" "$p_replica" "$p_mariadb"
start_service proxied "$p_proxied" "${proxy_port[redis-master]}" "${proxy_port[redis-replica]}" "${proxy_port[mysql]}"
"$baseline_bin" "127.0.0.1:$p_baseline" >"$work/baseline.log" 2>&1 &
pid_baseline=$!
pids+=("$pid_baseline")
wait_until 30 "${pid_of[direct]}" "user-service (direct)" "$work/us-direct.log" ready_up "$p_direct"
wait_until 30 "${pid_of[proxied]}" "user-service (proxied)" "$work/us-proxied.log" ready_up "$p_proxied"
wait_until 20 "$pid_baseline" user-service-baseline "$work/baseline.log" accepts "$p_baseline"
mysql_deadline_ms="$(curl -fsS "http://127.0.0.1:$a_direct/config" | grep -o '"mysql":{[^}]*}' |
  grep -o '"call_deadline_ms":[0-9]*' | cut -d: -f2)"

# ---- data -----------------------------------------------------------------------------------------
# The cached user, written through the service (so Redis holds it with its version); the warm-up
# below reads it through both instances.
curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' -d '{"name":"Jack"}' \
  "http://127.0.0.1:$p_direct/users/u-1" || fail "PUT /users/u-1 failed" "$work/us-direct.log"
# Miss users: straight into MariaDB (never through the service, so never cached), enough for every
# miss run to ask for ids nobody asked for before.
miss_per_run=100000
miss_total=$((miss_per_run * runs))
sql "USE users; INSERT INTO user (id, name, version) SELECT CONCAT('m-', seq), CONCAT('miss user ', seq), 1
     FROM seq_1_to_$miss_total" || fail "could not seed the miss users" "$work/mariadb.log"

# ---- wrk and its scripts --------------------------------------------------------------------------
report_lua='
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end'
printf '%s\n' "$report_lua" >"$work/static.lua"
cat >"$work/miss.lua" <<LUA
-- Every request asks for an id never asked for before: m-<first + thread + k * threads>.
local threads, counter, first, nthreads = 0, 0, 0, 1
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) first = tonumber(args[1]); nthreads = tonumber(args[2]) end
function request()
  local id = first + tid + counter * nthreads
  counter = counter + 1
  return wrk.format("GET", "/users/m-" .. id)
end
$report_lua
LUA
cat >"$work/put.lua" <<LUA
-- Upserts over 1000 ids (p-0 .. p-999), a new name each time.
local threads, counter, nthreads = 0, 0, 1
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) nthreads = tonumber(args[1]) end
function request()
  local n = tid + counter * nthreads
  counter = counter + 1
  return wrk.format("PUT", "/users/p-" .. (n % 1000), {["Content-Type"] = "application/json"},
    '{"name":"bench ' .. n .. '"}')
end
$report_lua
LUA

# run_wrk <label> <port> <path> <script> [script args...]: runs wrk, appends to $work/results:
#   <label> <requests/s> <p50 ms> <p99 ms> <max ms> <socket errors> <non-2xx/3xx> <requests>
run_wrk() {
  local label=$1 port=$2 path=$3 script=$4 out line
  shift 4
  out="$(wrk -t"$wrk_threads" -c"$connections" -d"${seconds}s" --timeout 5s -s "$script" \
    "http://127.0.0.1:$port$path" -- "$@" 2>&1)" || fail "wrk failed: $out"
  line="$(grep '^WRK ' <<<"$out")" || fail "no figures from wrk: $out"
  read -r _ reqs dur p50 p99 max errs non2xx <<<"$line"
  awk -v l="$label" -v r="$reqs" -v d="$dur" -v a="$p50" -v b="$p99" -v m="$max" -v e="$errs" -v n="$non2xx" \
    'BEGIN { printf "%s %.1f %.3f %.3f %.3f %d %d %d\n", l, r / (d / 1e6), a / 1e3, b / 1e3, m / 1e3, e, n, r }' \
    >>"$work/results"
}

gets_from() {  # port source status: GET /users/{id} answers counted by the service
  local text
  text="$(curl -fsS "http://127.0.0.1:${admin_of[$1]}/metrics")" || fail "GET /metrics of the service on port $1 failed"
  awk -v p="user_service_http_requests_total{route=\"/users/{id}\",method=\"GET\",status=\"$3\",source=\"$2\"} " \
    'index($0, p) == 1 { s += $NF } END { printf "%d\n", s }' <<<"$text"
}
check() { echo "$1" >>"$work/checks"; }
# CPU time a process has run, in ns, all its threads (schedstat: not the 10 ms ticks of /proc/pid/stat).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'; }
# cpu_per_request <label> <requests> <ns before> <ns after>: appends "<label> <us per request>".
cpu_per_request() { awk -v l="$1" -v n="$2" -v a="$3" -v b="$4" 'BEGIN { if (n > 0) printf "%s %.2f\n", l, (b - a) / n / 1e3 }' >>"$work/cpu"; }

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "user-service benchmark: $(nproc) CPUs, load average $load_before; wrk -t$wrk_threads -c$connections," \
  "${seconds} s per figure, $runs runs; binaries from $build_dir${service_args[*]:+; service flags: ${service_args[*]}}"
echo "  direct instance: Redis and MariaDB straight; proxied instance: through faultproxy; progress:"

# Warm-up: connections, caches, allocator.
wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$p_baseline/users/u-1" >/dev/null
wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$p_direct/users/u-1" >/dev/null
wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$p_proxied/users/u-1" >/dev/null

# ---- load figures (direct instance) ----------------------------------------------------------------
hits0=$(gets_from "$p_direct" cache 200)
# Cache hits first (the miss and PUT loads leave MariaDB busy for a while), baseline and
# user-service alternating, in swapped order every other run so drift does not favour either.
printf '    cache hits, baseline and user-service alternating (%d x 2 x %d s)' "$runs" "$seconds"
base_hit() {
  local b0 b1
  b0=$(cpu_ns "$pid_baseline")
  run_wrk "base_hit" "$p_baseline" /users/u-1 "$work/static.lua"
  b1=$(cpu_ns "$pid_baseline")
  cpu_per_request base "$(tail -n1 "$work/results" | cut -d' ' -f8)" "$b0" "$b1"
}
for ((run = 1; run <= runs; run++)); do
  ((run % 2 == 0)) || base_hit
  c0=$(gets_from "$p_direct" cache 200)
  s0=$(cpu_ns "${pid_of[direct]}")
  r0=$(cpu_ns "${pid_of[redis-master]}")
  run_wrk "hit" "$p_direct" /users/u-1 "$work/static.lua"
  s1=$(cpu_ns "${pid_of[direct]}")
  r1=$(cpu_ns "${pid_of[redis-master]}")
  c1=$(gets_from "$p_direct" cache 200)
  cpu_per_request us $((c1 - c0)) "$s0" "$s1"
  cpu_per_request redis $((c1 - c0)) "$r0" "$r1"
  reqs=$(tail -n1 "$work/results" | cut -d' ' -f8)
  check "hit run $run: wrk $reqs answers, the service counted $((c1 - c0)) GET 200 from cache (wrk leaves out the <= $connections in flight when it stops)"
  ((run % 2 == 1)) || base_hit
done
printf ', misses'
for ((run = 1; run <= runs; run++)); do
  o0=$(gets_from "$p_direct" origin 200)
  h0=$(gets_from "$p_direct" cache 200)
  run_wrk "miss" "$p_direct" /users/m-1 "$work/miss.lua" $(((run - 1) * miss_per_run + 1)) "$wrk_threads"
  o1=$(gets_from "$p_direct" origin 200)
  h1=$(gets_from "$p_direct" cache 200)
  reqs=$(tail -n1 "$work/results" | cut -d' ' -f8)
  ((reqs <= miss_per_run)) || check "WARNING: miss run $run made $reqs requests, more than the $miss_per_run seeded ids"
  check "miss run $run: wrk $reqs answers, the service counted $((o1 - o0)) GET 200 from MariaDB, $((h1 - h0)) from cache"
done
printf ', PUTs\n'
for ((run = 1; run <= runs; run++)); do
  run_wrk "put" "$p_direct" /users/p-0 "$work/put.lua" "$wrk_threads"
done
hwm_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/${pid_of[direct]}/status")
rss_kb=$(awk '/^VmRSS/ { print $2 }' "/proc/${pid_of[direct]}/status")
hits1=$(gets_from "$p_direct" cache 200)
check "RSS of the direct instance after $((hits1 - hits0)) cache hits and all misses and PUTs: peak (VmHWM) $((hwm_kb / 1024)) MB, now $((rss_kb / 1024)) MB"

# ---- faults (proxied instance) --------------------------------------------------------------------
breaker_closed() { curl -fsS -m 1 "http://127.0.0.1:$p_proxied/health/ready" |
  grep -q '"mysql":{"state":"up","since":"[^"]*","breaker":"closed"'; }
for ((run = 1; run <= runs; run++)); do
  printf '    faults %d/%d: healthy GET' "$run" "$runs"
  run_wrk "px_hit" "$p_proxied" /users/u-1 "$work/static.lua"
  printf ', blackhole PUTs'
  "${cli[@]}" toxic add -n bh_up -t timeout -u -a timeout=0 mysql >/dev/null
  "${cli[@]}" toxic add -n bh_down -t timeout -d -a timeout=0 mysql >/dev/null
  # The same pacing against the baseline at the same time: what the machine itself adds.
  "$pace_bin" --port "$p_baseline" --method PUT --path "/users/fault-$run-{n}" --body '{"name":"f"}' \
    --interval-ms 5 --count 300 >"$work/basepace-$run" &
  base_pace=$!
  "$pace_bin" --port "$p_proxied" --method PUT --path "/users/fault-$run-{n}" --body '{"name":"f"}' \
    --interval-ms 5 --count 300 --match "MariaDB unavailable" >"$work/pace-$run"
  wait "$base_pace" || fail "http_pace against the baseline failed"
  printf ', blackhole GET'
  run_wrk "bh_hit" "$p_proxied" /users/u-1 "$work/static.lua"
  "${cli[@]}" toxic remove -n bh_up mysql >/dev/null
  "${cli[@]}" toxic remove -n bh_down mysql >/dev/null
  printf ', recovery'
  t0=$SECONDS
  wait_until 20 "${pid_of[proxied]}" "the proxied instance's recovery" "$work/us-proxied.log" breaker_closed
  printf ' (%d s)\n' $((SECONDS - t0))
done

# Recovery: MariaDB fails until the proxied instance's breaker is open, then comes back; the figure is
# the time from its return to the first PUT answered 2xx, PUTs sent back to back (curl, a few ms
# each: the resolution). Two kinds of failure: `refused` (the proxy disabled: connections refused, a
# fast failure, so a request may itself be the breaker's trial) and `blackhole` (timeout toxics: a
# slow failure, so the probe, every resilience.probe_interval_ms, finds the return).
breaker_open() { curl -fsS -m 1 "http://127.0.0.1:$p_proxied/health/ready" | grep -q '"mysql":{[^}]*"breaker":"open"'; }
put_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
  -d '{"name":"r"}' "http://127.0.0.1:$p_proxied/users/recovery-$1" || true; }
open_breaker() { local n=0; until breaker_open; do put_code open >/dev/null; ((++n < 200)) || return 1; done; }
first_success_ms() {  # kind run
  if [[ $1 == refused ]]; then
    "${cli[@]}" toggle mysql >/dev/null
  else
    "${cli[@]}" toxic add -n rc_up -t timeout -u -a timeout=0 mysql >/dev/null
    "${cli[@]}" toxic add -n rc_down -t timeout -d -a timeout=0 mysql >/dev/null
  fi
  open_breaker || fail "the breaker did not open under MariaDB's $1 failure" "$work/us-proxied.log"
  local t0 n=0
  if [[ $1 == refused ]]; then
    t0=$(date +%s%N)
    "${cli[@]}" toggle mysql >/dev/null
  else
    t0=$(date +%s%N)
    "${cli[@]}" toxic remove -n rc_up mysql >/dev/null
    "${cli[@]}" toxic remove -n rc_down mysql >/dev/null
  fi
  until [[ $(put_code "$2-$n") == 2* ]]; do ((++n < 5000)) || fail "no PUT succeeded after MariaDB's return"; done
  echo "$1 $(( ($(date +%s%N) - t0) / 1000000 ))" >>"$work/recovery"
  wait_until 20 "${pid_of[proxied]}" "the proxied instance's recovery" "$work/us-proxied.log" breaker_closed
}
: >"$work/recovery"
for ((run = 1; run <= runs; run++)); do
  printf '    recovery %d/%d: refused' "$run" "$runs"
  first_success_ms refused "$run"
  printf ', blackhole\n'
  first_success_ms blackhole "$run"
done

# ---- the cost of a cached GET ----------------------------------------------------------------------
# Issue 14's additions, each on its own: bench/user_service_bench (Google Benchmark, CPU ns per
# operation, median of 5 interleaved repetitions) and, with valgrind, the same parts' instructions
# per call (callgrind: the inclusive cost of each part's function over its calls).
: >"$work/additions"
: >"$work/additions-ir"
cg_ok=0
if ((callgrind_seconds > 0)) && command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; then cg_ok=1; fi
if [[ -x $us_bench_bin ]]; then
  printf '    cost of a cached GET: issue 14 additions (user_service_bench'
  "$us_bench_bin" --benchmark_filter='UsCachedGet' --benchmark_format=csv --benchmark_repetitions=5 \
    --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
    --benchmark_min_time=0.1 2>/dev/null |
    awk -F, '$1 ~ /_median"?$/ { gsub(/"/, "", $1); sub(/_median$/, "", $1); print $1, $4 }' >"$work/additions" ||
    check "WARNING: $us_bench_bin failed: no figures for issue 14's additions"
  if ((cg_ok)); then
    printf ', under callgrind'
    valgrind --tool=callgrind --callgrind-out-file="$work/cg-parts.out" "$us_bench_bin" \
      --benchmark_filter='UsCachedGet' --benchmark_min_time=0.3 >/dev/null 2>&1 || true
    # A call's inclusive cost is on the line after its `calls=` line.
    awk '/^c?fn=\([0-9]+\)/ { id = substr($1, index($1, "(")); name = $0; sub(/^[^)]*\) ?/, "", name)
           if (name != "") names[id] = name
           if ($1 ~ /^cfn=/) callee = names[id]
           next }
         /^calls=/ { split($1, a, "="); n = a[2]; take = 1; next }
         take { take = 0; if (match(callee, /(answer_before_issue14|answer_with_etag|issue14_header_checks)\(/)) {
           part = substr(callee, RSTART, RLENGTH - 1); calls[part] += n; cost[part] += $2 } }
         END { for (p in calls) if (calls[p] > 0) printf "%s %.0f\n", p, cost[p] / calls[p] }' \
      "$work/cg-parts.out" >"$work/additions-ir" 2>/dev/null || true
  fi
  printf ')\n'
else
  check "$us_bench_bin is missing: no figures for issue 14's additions (build the release preset)"
fi

# callgrind: a fresh instance under valgrind (the direct instance's Redis and MariaDB; deadlines
# stretched for valgrind's ~50x slowdown), instrumentation switched on after start-up, a warm-up of
# 2 s at 10 connections, counters zeroed, `--callgrind-seconds` of load at 10 connections, a dump.
# Instructions per request: the dump's total over the requests the instance counted in between (the
# baseline, which counts nothing: wrk's count). Allocations: calls of malloc, calloc, realloc and the
# aligned allocators from outside the allocator (operator new's included). Background work (probes every 200 ms) is included: a
# fraction of a percent.
: >"$work/callgrind"
callgrind_run() {  # label port kind(service|baseline) command...
  local label=$1 port=$2 kind=$3 vpid c0=0 c1=0 out dump
  shift 3
  out="$work/cg-$label"
  mkdir -p "$out"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/callgrind.out.%p" "$@" \
    >"$out/log" 2>&1 &
  vpid=$!
  pids+=("$vpid")
  if [[ $kind == service ]]; then
    wait_until 180 "$vpid" "user-service under callgrind" "$out/log" ready_up "$port"
  else
    wait_until 180 "$vpid" "user-service-baseline under callgrind" "$out/log" accepts "$port"
  fi
  callgrind_control -i on "$vpid" >/dev/null 2>&1
  wrk -t1 -c10 -d2s "http://127.0.0.1:$port/users/u-1" >/dev/null
  if [[ $kind == service ]]; then c0=$(gets_from "$port" cache 200); fi
  callgrind_control -z "$vpid" >/dev/null 2>&1
  local w
  w="$(wrk -t1 -c10 -d"${callgrind_seconds}s" "http://127.0.0.1:$port/users/u-1")" || fail "wrk against $label under callgrind failed"
  callgrind_control -d "$vpid" >/dev/null 2>&1
  if [[ $kind == service ]]; then c1=$(gets_from "$port" cache 200); fi
  kill "$vpid" 2>/dev/null || true
  wait "$vpid" 2>/dev/null || true
  local n=$((c1 - c0))
  [[ $kind == service ]] || n=$(grep -o '[0-9]* requests in' <<<"$w" | cut -d' ' -f1)
  dump="$(ls -t "$out"/callgrind.out.*.1 2>/dev/null | head -n1)"
  [[ -n $dump && ${n:-0} -gt 0 ]] || { check "WARNING: no callgrind figures for $label (see $out/log)"; return 0; }
  # An allocation: a call into the allocator's entry points from outside them (glibc's or jemalloc's,
  # which also takes C++'s operator new itself).
  awk -v label="$label" -v n="$n" -v alloc='^(malloc|calloc|realloc|memalign|aligned_alloc|posix_memalign|operator new(\\[\\])?\\(.*)$' '
    /^(fn|cfn)=\([0-9]+\)/ { id = substr($1, index($1, "(")); sub(/\).*/, ")", id)
      name = $0; sub(/^[^)]*\) ?/, "", name); if (name != "") names[id] = name }
    /^fn=/ { caller = names[id] } /^cfn=/ { callee = names[id] }
    /^calls=/ { split($1, a, "="); if (callee ~ alloc && caller !~ alloc && caller !~ /^(_mid_memalign.*|__libc_.*)$/) allocs += a[2] }
    /^(summary|totals):/ { ir = $2 }
    END { printf "%s %.0f %.1f %d\n", label, ir / n, allocs / n, n }' "$dump" >>"$work/callgrind"
}
if ((cg_ok)); then
  printf '    callgrind (user-service'
  callgrind_run us "$p_cg" service "$us_bin" --listen="127.0.0.1:$p_cg" --admin.listen="127.0.0.1:$a_cg" \
    --redis.master="127.0.0.1:$p_master" --redis.replica="127.0.0.1:$p_replica" --mysql.port="$p_mariadb" \
    --log_level="$log_level" --request_deadline_ms=5000 --redis.call_deadline_ms=2000 \
    --redis.connect_timeout_ms=2000 --mysql.call_deadline_ms=3000 --mysql.connect_timeout_ms=3000 \
    "${service_args[@]}"
  printf ', baseline'
  callgrind_run base "$p_cg_base" baseline "$baseline_bin" "127.0.0.1:$p_cg_base"
  printf ')\n'
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the table -------------------------------------------------------------------------------------
# stats: reads numbers, prints "median min max" (the median of an even count is the lower middle).
stats() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- - -"; exit }
  printf "%s %s %s\n", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
col() { awk -v l="$1" -v c="$2" '$1 == l { print $c }' "$work/results"; }
# ratio <label a> <label b> <column>: per-run ratios a/b (runs paired in order).
ratio() { paste -d' ' <(col "$1" "$3") <(col "$2" "$3") | awk '$2 > 0 { printf "%.3f\n", $1 / $2 }'; }
fmt() {  # stdin "median min max", [decimals] [suffix] -> "median [min-max]"
  local m lo hi d=${1:-1} sfx=${2:-}
  read -r m lo hi
  if [[ $m == - ]]; then echo "-"; elif [[ $lo == "$hi" ]]; then printf "%.${d}f%s" "$m" "$sfx"
  else printf "%.${d}f%s [%.${d}f-%.${d}f]" "$m" "$sfx" "$lo" "$hi"; fi
}
kfmt() { awk '$1 == "-" { print; next } { print $1 / 1e3, $2 / 1e3, $3 / 1e3 }' | fmt 1 k; }
# verdict <values one per line> <awk condition on v>: meets (every run) / below (no run) / mixed.
verdict() { awk -v cond="$2" '$1 == "-" || NF == 0 { next } { n++; if ((cond == "ge0.5" && $1 >= 0.5) || (cond == "le2" && $1 <= 2) ||
  (cond ~ /^lt/ && $1 < substr(cond, 3) + 0)) ok++ }
  END { if (n == 0) print "-"; else if (ok == n) print "meets"; else if (ok == 0) print "below"; else printf "mixed %d/%d\n", ok, n }' <<<"$1"; }

row() { printf '%-36s %-26s %-26s %-22s %-16s %s\n' "$@"; }
echo
echo "user-service benchmark: wrk -t$wrk_threads -c$connections, $seconds s per figure, $runs runs: median [min-max];" \
  "load average $load_before before, $load_after after, $(nproc) CPUs (a shared, noisy machine: compare ratios)"
echo
row "figure" "user-service" "baseline" "ratio" "target" "verdict"
hit_ratio="$(ratio hit base_hit 2)"
row "GET cache hit, requests/s" "$(col hit 2 | stats | kfmt)" "$(col base_hit 2 | stats | kfmt)" \
  "$(stats <<<"$hit_ratio" | fmt 2 x)" ">= 0.5x" "$(verdict "$hit_ratio" ge0.5)"
row "GET cache hit, p50 ms" "$(col hit 3 | stats | fmt 2)" "$(col base_hit 3 | stats | fmt 2)" \
  "$(ratio hit base_hit 3 | stats | fmt 2 x)" "" ""
row "GET cache hit, p99 ms" "$(col hit 4 | stats | fmt 2)" "$(col base_hit 4 | stats | fmt 2)" \
  "$(ratio hit base_hit 4 | stats | fmt 2 x)" "" ""
cpu_col() { awk -v l="$1" '$1 == l { print $2 }' "$work/cpu"; }
us_total="$(paste -d' ' <(cpu_col us) <(cpu_col redis) | awk '{ print $1 + $2 }')"
row "GET cache hit, CPU us/request" "$(cpu_col us | stats | fmt 1)" "$(cpu_col base | stats | fmt 1)" \
  "$(paste -d' ' <(cpu_col us) <(cpu_col base) | awk '$2 > 0 { print $1 / $2 }' | stats | fmt 2 x)" "" ""
row "  + Redis master CPU us/request" "$(cpu_col redis | stats | fmt 1)" "" \
  "$(paste -d' ' <(echo "$us_total") <(cpu_col base) | awk '$2 > 0 { print $1 / $2 }' | stats | fmt 2 x)" "" ""
row "GET miss (MariaDB), requests/s" "$(col miss 2 | stats | kfmt)" "" "$(ratio miss base_hit 2 | stats | fmt 2 x)" "" ""
row "GET miss, p50 / p99 ms" "$(col miss 3 | stats | fmt 2) / $(col miss 4 | stats | fmt 1)" "" "" "" ""
row "PUT (1000 ids), requests/s" "$(col put 2 | stats | kfmt)" "" "$(ratio put base_hit 2 | stats | fmt 2 x)" "" ""
row "PUT, p50 / p99 ms" "$(col put 3 | stats | fmt 2) / $(col put 4 | stats | fmt 1)" "" "" "" ""
cg() { awk -v l="$1" -v c="$2" '$1 == l { print $c }' "$work/callgrind"; }
if [[ -s $work/callgrind ]]; then
  row "GET cache hit, instructions/request" "$(cg us 2)" "$(cg base 2)" \
    "$(awk -v a="$(cg us 2)" -v b="$(cg base 2)" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b; else print "-" }')" "" ""
  row "GET cache hit, allocations/request" "$(cg us 3)" "$(cg base 3)" "" "" ""
fi
row "RSS under load, peak (VmHWM) MB" "$(awk -v k="$hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')" "" "" "< 30 MB" \
  "$(verdict "$(awk -v k="$hwm_kb" 'BEGIN { print k / 1024 }')" lt30)"
echo
echo "Through faultproxy (proxied instance; MariaDB blackholed = timeout toxics, timeout 0, both directions):"
row "figure" "blackholed" "healthy" "ratio" "target" "verdict"
bh_ratio="$(ratio bh_hit px_hit 4)"
row "cached GET, requests/s" "$(col bh_hit 2 | stats | kfmt)" "$(col px_hit 2 | stats | kfmt)" \
  "$(ratio bh_hit px_hit 2 | stats | fmt 2 x)" "" ""
row "cached GET, p99 ms" "$(col bh_hit 4 | stats | fmt 2)" "$(col px_hit 4 | stats | fmt 2)" \
  "$(stats <<<"$bh_ratio" | fmt 2 x)" "<= 2x healthy" "$(verdict "$bh_ratio" le2)"
# The paced PUTs of every run, pooled, with a class in column 6: 0 tried MariaDB (answer without
# "MariaDB unavailable"); 1 refused by the open breaker, sent after it opened (after the first such
# refusal was answered, in that run); 2 sent before it opened, queued behind the MariaDB calls in
# flight (admission control) and answered "unavailable" the moment it opened.
for f in "$work"/pace-*; do
  awk 'NR == FNR { if ($5 == 1 && $4 != 0 && (open == "" || $2 + $3 < open)) open = $2 + $3; next }
       { c = $5 == 1 ? ($2 >= open ? 1 : 2) : 0; print $0, c }' "$f" "$f"
done >"$work/pace"
awk '{ print $0, 0 }' "$work"/basepace-* >"$work/basepace"
pace_stats() {  # class (0/1/2) [file]: "n p50 p99 max" of the answered requests of that class
  awk -v m="$1" '$6 == m && $4 != 0 { print $3 }' "${2:-$work/pace}" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print "0 - - -"; exit }
      i = int(NR * 0.99 + 0.999); if (i > NR) i = NR
      printf "%d %.1f %.1f %.1f\n", NR, v[int((NR + 1) / 2)], v[i], v[NR] }'
}
read -r wn wp50 wp99 wmax <<<"$(pace_stats 0)"
read -r on op50 op99 omax <<<"$(pace_stats 1)"
read -r qn qp50 qp99 qmax <<<"$(pace_stats 2)"
read -r bn bp50 bp99 bmax <<<"$(pace_stats 0 "$work/basepace")"
wait_target=$((mysql_deadline_ms + 20))
echo
row "PUT under the blackhole (paced)" "p50 / p99 / max ms" "PUTs" "" "target" "verdict"
row "  tried MariaDB (breaker closed)" "$wp50 / $wp99 / $wmax" "$wn" "" "p99 < $wait_target ms" "$(verdict "$wp99" "lt$wait_target")"
row "  queued, answered as it opened" "$qp50 / $qp99 / $qmax" "$qn" "" "p99 < $wait_target ms" "$(verdict "$qp99" "lt$wait_target")"
row "  refused by the open breaker" "$op50 / $op99 / $omax" "$on" "" "p99 < 5 ms" "$(verdict "$op99" lt5)"
row "  baseline, same pacing, same time" "$bp50 / $bp99 / $bmax" "$bn" "" "" ""
echo
rec() { awk -v k="$1" '$1 == k { print $2 }' "$work/recovery" | stats | fmt 0; }
row "MariaDB back: first PUT 2xx after" "ms" "" "" "" ""
row "  refused (fast failure)" "$(rec refused)" "" "" "a request is the trial" ""
row "  blackholed (slow failure)" "$(rec blackhole)" "" "" "the next probe" ""
echo
# Issue 14's additions to a cached GET, each on its own: CPU ns and their share of the service's CPU
# per cached GET in this run (the median above); instructions and their share of the instructions
# per cached GET under callgrind (load-independent), when valgrind is there.
add_ns() { awk -v l="$1" '$1 == l { print $2 }' "$work/additions"; }
add_ir() { awk -v l="$1" '$1 == l { print $2 }' "$work/additions-ir"; }
us_cpu_ns="$(cpu_col us | stats | awk '{ print $1 * 1000 }')"
us_ir="$(cg us 2)"
share() { awk -v n="$1" -v c="$2" 'BEGIN { if (n != "" && c > 0) printf "%.1f %%", 100 * n / c; else print "-" }'; }
addition() {  # label ns instructions
  row "  $1" "$2" "$(share "$2" "$us_cpu_ns")" "${3:--}" "$(share "$3" "$us_ir")" ""
}
if [[ -s $work/additions ]]; then
  row "Issue 14 additions to a cached GET" "CPU ns" "share of its CPU" "instructions" "share of its instr." ""
  etag_ir=""
  if [[ -s $work/additions-ir ]]; then
    etag_ir="$(awk -v a="$(add_ir answer_with_etag)" -v b="$(add_ir answer_before_issue14)" 'BEGIN { printf "%.0f", a - b }')"
  fi
  addition "ETag (format, set, serialize)" \
    "$(awk -v a="$(add_ns BM_UsCachedGetAnswer/1)" -v b="$(add_ns BM_UsCachedGetAnswer/0)" 'BEGIN { printf "%.0f", a - b }')" "$etag_ir"
  addition "If-None-Match/X-Request-Timeout-Ms" "$(add_ns BM_UsCachedGetHeaderChecks | awk '{ printf "%.0f", $1 }')" \
    "$(add_ir issue14_header_checks)"
  row "  breaker trial, single-flight," "0: MariaDB reads or an open breaker only" "" "" "" ""
  row "  admission, retry budget" "" "" "" "" ""
  echo
fi
echo "Checks:"
statuses="$(awk '{ c[$4]++ } END { for (s in c) printf "%s%s x%d", (n++ ? ", " : ""), (s == 0 ? "transport error" : s), c[s] }' "$work/pace")"
check "paced PUTs under the blackhole ($runs x 300, one every 5 ms): statuses $statuses; MariaDB deadline $mysql_deadline_ms ms"
awk '$7 > 0 || $6 > 0 { printf "%s run: %d socket errors, %d non-2xx answers\n", $1, $6, $7 }' "$work/results" >>"$work/checks"
sed 's/^/  /' "$work/checks"

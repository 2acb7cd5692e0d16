#!/usr/bin/env bash
# fuzz/run.sh: builds the fuzz targets (clang, the `fuzz` preset) and runs each for a while.
#
#   fuzz/run.sh [--seconds N] [--jobs N] [--seed S] [--no-build] [target ...]
#
# Each target <name> runs with its seed corpus fuzz/corpus/<name> (read only: every seed is
# replayed first, so a fixed crash whose input was added there is a regression test) and a working
# corpus build/fuzz/corpus/<name> that keeps what it found across runs; dictionary fuzz/dict/*.dict.
# Logs and crash reproducers go to reports/fuzz/. Prints executions and coverage per target and
# ends with `fuzz: N passed, N failed` (a crash, a leak, a hang or an invariant violated is a
# failure, with the reproducer's path). Run one input again: build/fuzz/fuzz/<name>_fuzz <file>.
# --seed S (or FUZZ_SEED) fixes libFuzzer's random seed: a run then repeats the same mutations
# (./dev test does, so that CI is reproducible); without it every run explores anew.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECONDS_EACH=60
JOBS=2
SEED=${FUZZ_SEED:-}
BUILD=1
TARGETS=()
while (($#)); do
  case $1 in
    --seconds) SECONDS_EACH=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz/run.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1") ;;
  esac
  shift
done
[[ $SECONDS_EACH =~ ^[0-9]+$ && $SECONDS_EACH -gt 0 ]] || { echo "fuzz/run.sh: seconds must be a positive integer" >&2; exit 2; }
[[ -z $SEED || $SEED =~ ^[1-9][0-9]*$ ]] || { echo "fuzz/run.sh: the seed must be a positive integer" >&2; exit 2; }

# The dictionary of each target (by the input language it reads).
dict_for() {
  case $1 in
    user_service_validation | faultproxy_json) echo fuzz/dict/json.dict ;;
    user_service_api) echo fuzz/dict/user_service.dict ;;
    user_service_config) echo fuzz/dict/user_service_config.dict ;;
    faultproxy_api | faultproxy_config) echo fuzz/dict/toxiproxy.dict ;;
    http_server | http_parser) echo fuzz/dict/http.dict ;;
    redis_reply | resp_parser) echo fuzz/dict/resp.dict ;;
  esac
}

BIN=build/fuzz/fuzz
REPORTS=reports/fuzz
if ((BUILD)); then
  command -v clang++ >/dev/null || { echo "fuzz/run.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
  started=$SECONDS
  echo "building the fuzz targets (clang, preset fuzz)"
  cmake --preset fuzz >/dev/null || exit 2
  cmake --build --preset fuzz --target fuzzers -- -j"$(nproc)" >"$ROOT/build/fuzz-build.log" 2>&1 ||
    { tail -n 40 "$ROOT/build/fuzz-build.log"; echo "fuzz: 0 passed, 1 failed (the build failed)"; exit 1; }
  echo "built in $((SECONDS - started)) s"
fi
if ((${#TARGETS[@]} == 0)); then
  for f in "$BIN"/*_fuzz; do
    [[ -x $f ]] && TARGETS+=("$(basename "$f" _fuzz)")
  done
fi
((${#TARGETS[@]})) || { echo "fuzz/run.sh: no fuzz targets built in $BIN" >&2; exit 2; }
mkdir -p "$REPORTS"

run_one() { # <target>: runs it, writes $REPORTS/<target>.log and .result
  local t=$1 work=build/fuzz/corpus/$1 seeds=fuzz/corpus/$1 dict args=()
  mkdir -p "$work" "$REPORTS/$t"
  dict=$(dict_for "$t")
  [[ -n $dict ]] && args+=("-dict=$dict")
  [[ -n $SEED ]] && args+=("-seed=$SEED")
  [[ -d $seeds ]] || seeds=
  local rc=0
  # -timeout: one input running 10 s is a hang; -error_exitcode: any finding exits non-zero.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    timeout --kill-after=10 $((SECONDS_EACH + 120)) "$BIN/${t}_fuzz" -max_total_time="$SECONDS_EACH" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$REPORTS/$t/" "${args[@]}" "$work" ${seeds:+"$seeds"} \
    >"$REPORTS/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$REPORTS/$t.result"
}

echo "fuzzing ${#TARGETS[@]} targets, ${SECONDS_EACH} s each, $JOBS at a time, seed ${SEED:-random} (logs in $REPORTS/)"
started=$SECONDS
for t in "${TARGETS[@]}"; do
  [[ -x $BIN/${t}_fuzz ]] || { echo "fuzz/run.sh: no such target '$t'" >&2; exit 2; }
  rm -f "$REPORTS/$t.result"
  while (($(jobs -rp | wc -l) >= JOBS)); do wait -n; done
  run_one "$t" &
done
wait

passed=0 failed=0
printf '%-26s %12s %9s %7s %8s %8s  %s\n' TARGET EXECUTIONS EXEC/S COV FEATURES CORPUS RESULT
for t in "${TARGETS[@]}"; do
  log=$REPORTS/$t.log
  rc=$(cat "$REPORTS/$t.result" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  last=$(grep -aE '^#[0-9]+' "$log" | tail -n1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  if [[ $rc == 0 ]]; then
    result=ok
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    artifact=$(grep -aoE '(Test unit written to|artifact_prefix.*Test unit written to) [^ ]+' "$log" | tail -n1 | awk '{print $NF}')
    what=$(grep -aE 'invariant violated|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$log" | head -n1)
    result="FAILED (exit $rc): ${what:-see $log}"
    [[ -n $artifact ]] && result+=$'\n'"    reproducer: $artifact  (run: $BIN/${t}_fuzz $artifact)"
  fi
  printf '%-26s %12s %9s %7s %8s %8s  %s\n' "$t" "${execs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$result"
done
echo "fuzzing took $((SECONDS - started)) s"
echo "fuzz: $passed passed, $failed failed"
((failed == 0))

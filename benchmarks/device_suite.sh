#!/usr/bin/env bash
# Every GPU benchmark and the paper-preset timing, in one call of under 10 minutes.
#
#   bash benchmarks/device_suite.sh               # on the GPU machine (see DESIGN.md)
#   bash benchmarks/device_suite.sh --cpu-smoke   # the same steps at tiny sizes on CPU (~1 min)
#   bash benchmarks/device_suite.sh --cpu-smoke --only ntk   # one step (the tests run each apart)
#
# Each step is `python3 -m benchmarks.X ...` under `timeout`; a failing or timed-out step is
# reported and the suite goes on. Every JSON goes to $OUT (default benchmarks/results/device,
# or .../smoke), through LAZYRICH_BENCH_OUT; logs to $OUT/logs/. Ends with a summary table
# (also $OUT/suite_summary.tsv). On the device, wheels in .whl/ (benchmarks/fetch_wheels.sh)
# are installed first: pip install --no-index --no-deps --target .site .whl/*.whl (not in the
# smoke run, whose python is the project's environment: PYTHON=.venv/bin/python or similar).
# Environment: OUT, PYTHON (default python3), SUITE_BUDGET_S (default 570: the whole suite).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD

SMOKE=0
ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-smoke) SMOKE=1 ;;
    --only)
      if [ -z "${2:-}" ]; then
        echo "device_suite.sh: --only needs a step name, e.g. --only ntk" >&2; exit 2
      fi
      ONLY=$2; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "device_suite.sh: unknown option '$1': pass --cpu-smoke, --only STEP or nothing" >&2
       exit 2 ;;
  esac
  shift
done

PY=${PYTHON:-python3}
if [ "$SMOKE" = 1 ]; then
  OUT=${OUT:-$ROOT/benchmarks/results/smoke}
  export JAX_PLATFORMS=cpu
else
  OUT=${OUT:-$ROOT/benchmarks/results/device}
fi
mkdir -p "$OUT/logs"
export LAZYRICH_BENCH_OUT=$OUT
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
if [ "$SMOKE" = 0 ] && compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --target .site .whl/*.whl \
    && export PYTHONPATH=$ROOT/.site:$PYTHONPATH
fi

BUDGET=${SUITE_BUDGET_S:-570}
START=$(date +%s)
SUMMARY=$OUT/suite_summary.tsv
printf 'step\tstatus\tseconds\tjson\n' > "$SUMMARY"

# step NAME TIMEOUT_S MODULE ARGS...: run `$PY -m benchmarks.MODULE ARGS` with a timeout
# (never past the suite's budget), log it, print its result lines, record a summary row.
step() {
  local name=$1 limit=$2 module=$3; shift 3
  [ -n "$ONLY" ] && [ "$name" != "$ONLY" ] && return
  local left=$(( BUDGET - ($(date +%s) - START) ))
  (( limit > left )) && limit=$left
  if (( limit < 5 )); then
    printf '%s\tSKIPPED (suite budget spent)\t0\t-\n' "$name" >> "$SUMMARY"; return
  fi
  echo "== $name (timeout ${limit}s): $PY -m benchmarks.$module $*"
  local t0=$(date +%s%N)
  timeout --kill-after=5 "$limit" "$PY" -m "benchmarks.$module" "$@" > "$OUT/logs/$name.log" 2>&1
  local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  local dt=$(( ms / 1000 )).$(( ms % 1000 / 100 ))
  grep -v -E '^\s*$|Warning|warn\(' "$OUT/logs/$name.log" | tail -n 25
  local status=ok
  if (( rc == 124 || rc == 137 )); then status="TIMEOUT"; elif (( rc != 0 )); then
    status="FAILED rc=$rc"; tail -n 5 "$OUT/logs/$name.log"; fi
  local json=$OUT/$module.json
  [ -f "$json" ] || json="-"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$dt" "${json#"$OUT"/}" >> "$SUMMARY"
}

# smoke limits are generous: the smoke run checks that every step runs end to end, not its
# speed (a loaded 2-core machine is 5-10x slower than an idle one)
if [ "$SMOKE" = 1 ]; then
  step sweep_throughput 300 sweep_throughput --small
  step ntk 300 ntk --small
  step lazy_dynamics 300 lazy_dynamics --small
  step gauss_newton 300 gauss_newton --small
  step dldr 300 dldr --small
  step lws 300 lws --small
  step gamma_eta_timing 600 gamma_eta_timing --small --timeout 280
  step dmft 300 dmft --small
else
  step sweep_throughput 75 sweep_throughput --width 1000 --steps 1000 --loop-steps 100 --rounds 2
  step ntk 80 ntk --paper
  step lazy_dynamics 60 lazy_dynamics --paper
  step gauss_newton 60 gauss_newton --paper
  step dldr 60 dldr --parts 1 --width 1024 --depth 4 --batch 1024 --d 40
  step lws 50 lws --width 2048 --batch 1024 --cnn-width 64 --image 32
  step gamma_eta_timing 170 gamma_eta_timing --timeout 80
  step dmft 90 dmft --paper --timeout 28
fi

if [ -n "$ONLY" ] && [ "$(wc -l < "$SUMMARY")" = 1 ]; then
  echo "device_suite.sh: --only '$ONLY' is not a step: pass one of the names in $0" >&2; exit 2
fi

echo
echo "== summary ($(( $(date +%s) - START )) s; JSON under $OUT)"
column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
# exit status: the number of steps that did not end ok (0: all ran)
exit "$(tail -n +2 "$SUMMARY" | cut -f2 | grep -vcx ok)"

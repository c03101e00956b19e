#!/bin/sh
# Where the CPU per `@connections` post and per warm Lambda event goes (bench/FINDINGS.md,
# "Where the remaining CPU per post and per event goes"): runs one part of wsgw-bench with
# one tool on the process measured.
#
# usage: bench/profile/profile.sh fanout|echo none|perf|strace|alloc BENCH ECHO OUT
#   fanout: the fan-out part alone (wsgw's sender; N = 1,000 and 10,000 over loopback, 3
#           rounds each, then the +5 ms pass); the tool is attached to the N = 10,000
#           sender once it runs (after its start-up).
#   echo:   the quick Lambda part (2 cold starts per function, then 1,000 warm events; set
#           FULL=1 for 7 cold starts and 10,000 events); the echo runs under the tool, perf
#           starting 300 ms after it (start-up left out).
#   perf:   perf record -F 1999 --call-graph dwarf, then
#           perf script -i F -F comm,tid,ip,sym,dso --no-inline | bench/profile/buckets.py
#   strace: strace -c -f (system calls by name)
#   alloc:  bench/profile/count_alloc.c built into OUT and preloaded: allocations per
#           process in OUT/alloc-PID.txt
# BENCH and ECHO: release binaries with symbols
# (CARGO_PROFILE_RELEASE_STRIP=none cargo build --release -p wsgw-bench -p echo).
# OUT: a directory for the reports. PEERS (the Node peers' directory, default
# target/bench-work/peers) and PYTHON (default .venv/bin/python) as for wsgw-bench.
# Run from the workspace root.
set -eu
PART=$1 MODE=$2 BENCH=$3 ECHO=$4 OUT=$5
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
PEERS=${PEERS:-target/bench-work/peers}
PYTHON=${PYTHON:-.venv/bin/python}
run() {
  "$BENCH" run --work "$OUT/work" --python "$PYTHON" --peers "$PEERS" --out-md "$OUT/$PART-$MODE.md" \
    --out-svg "$OUT/$PART-$MODE.svg" --command-line "bench/profile/profile.sh $PART $MODE" "$@"
}
mkdir -p "$OUT/work"
if [ "$MODE" = alloc ]; then
  gcc -O2 -shared -fPIC -o "$OUT/count_alloc.so" "$HERE/count_alloc.c" -lpthread
fi
case $PART in
fanout)
  attach() {
    i=0 pid=
    while [ $i -lt 6000 ] && [ -z "$pid" ]; do
      pid=$(pgrep -f "fanout-send .*ids-10000.txt" | head -1) || true
      sleep 0.02; i=$((i + 1))
    done
    [ -n "$pid" ] || return 0
    case $MODE in
      perf) perf record -q -F 1999 --call-graph dwarf,16384 -o "$OUT/fanout-10000.perf" -p "$pid" ;;
      strace) strace -c -f -o "$OUT/fanout-10000.strace" -p "$pid" ;;
      alloc)
        sleep 0.05; cp "$OUT/alloc-$pid.txt" "$OUT/fanout-10000-alloc-start.txt"
        while kill -0 "$pid" 2>/dev/null; do
          cp "$OUT/alloc-$pid.txt" "$OUT/fanout-10000-alloc-end.txt" 2>/dev/null || true; sleep 0.02
        done ;;
    esac
  }
  [ "$MODE" = none ] || attach &
  if [ "$MODE" = alloc ]; then
    export ALLOC_COUNT_DIR="$OUT" LD_PRELOAD="$OUT/count_alloc.so"
  fi
  run --echo-bin "$ECHO" \
    --skip criterion,roundtrip,memory,sls,dynamodb,shares,fanout-node,fanout-python,lambda
  unset LD_PRELOAD
  wait
  ;;
echo)
  export ECHO_BIN="$ECHO" MODE OUT ALLOC_COUNT_DIR="$OUT"
  # The tool runs in the background so that the bench's kill of this wrapper leaves it to
  # finish its report when the echo exits.
  cat > "$OUT/echo-wrapper.sh" <<'WRAPPER'
#!/bin/sh
case $MODE in
  perf) perf record -q -D 300 -F 1999 --call-graph dwarf,16384 -o "$OUT/echo-$$.perf" -- "$ECHO_BIN" "$@" & ;;
  strace) strace -f -c -o "$OUT/echo-$$.strace" -- "$ECHO_BIN" "$@" & ;;
  alloc) LD_PRELOAD="$OUT/count_alloc.so" "$ECHO_BIN" "$@" & ;;
  *) "$ECHO_BIN" "$@" & ;;
esac
wait
WRAPPER
  chmod +x "$OUT/echo-wrapper.sh"
  bin="$OUT/echo-wrapper.sh"
  [ "$MODE" = none ] && bin="$ECHO"
  if [ "${FULL:-}" = 1 ]; then quick=; else quick=--quick; fi
  run $quick --echo-bin "$bin" --skip criterion,roundtrip,memory,sls,dynamodb,shares,fanout
  ;;
*)
  echo "usage: $0 fanout|echo none|perf|strace|alloc BENCH ECHO OUT" >&2
  exit 2
  ;;
esac

#!/usr/bin/env bash
# The parser fuzz loop (tests/src/fuzz/, binary `fuzz`), not part of CI: builds it in release
# mode and runs every parser for ITERATIONS inputs (default 1,000,000), JOBS parsers at a time
# (default: the number of cores), each in its own process under an address-space limit
# (MEMORY_LIMIT_KB, default 4 GiB), so an unbounded allocation aborts that parser's process
# and is reported instead of swapping the machine. Prints one table row per parser; exit
# status 1 if any parser crashed, hung or ran out of memory.
#
#   scripts/fuzz.sh [--iterations N] [--seed N] [--parser NAME]...
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/argosy/target}"
ITERATIONS="${ITERATIONS:-1000000}"
SEED="${SEED:-10641502}"
JOBS="${JOBS:-$(nproc)}"
MEMORY_LIMIT_KB="${MEMORY_LIMIT_KB:-4194304}"
parsers=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --iterations) ITERATIONS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --parser) parsers+=("$2"); shift 2 ;;
    *) echo "usage: $0 [--iterations N] [--seed N] [--parser NAME]..." >&2; exit 2 ;;
  esac
done

cargo build --release -q -p argosy-tests --bin fuzz
bin="$CARGO_TARGET_DIR/release/fuzz"
if [[ ${#parsers[@]} -eq 0 ]]; then
  mapfile -t parsers < <("$bin" --list | awk '{print $1}')
fi
logs="$CARGO_TARGET_DIR/fuzz-logs"
rm -rf "$logs" && mkdir -p "$logs"

echo "fuzz: ${#parsers[@]} parsers x $ITERATIONS inputs, seed $SEED, $JOBS at a time; logs in $logs" >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)" >&2
start=$(date +%s)
printf '%s\n' "${parsers[@]}" | xargs -P "$JOBS" -I{} bash -c '
  ulimit -v "$1"
  if "$2" --parser "$3" --iterations "$4" --seed "$5" > "$6/$3.out" 2> "$6/$3.err"; then
    echo "ok $3" > "$6/$3.status"
  else
    echo "FAILED $3 (exit $?)" > "$6/$3.status"
  fi
  tail -n 1 "$6/$3.err" | sed "s/^/[$3] /" >&2
' _ "$MEMORY_LIMIT_KB" "$bin" {} "$ITERATIONS" "$SEED" "$logs"
end=$(date +%s)

echo
echo "| parser | inputs | seconds | inputs/s | corpus seeds | crashes | slow (>100 ms) | slowest |"
echo "|---|---|---|---|---|---|---|---|"
failed=0
for p in "${parsers[@]}"; do
  grep "^| $p |" "$logs/$p.out" || echo "| $p | (no result) | | | | | | |"
  if ! grep -q '^ok' "$logs/$p.status" 2>/dev/null; then
    failed=1
    echo "--- $p: $(cat "$logs/$p.status" 2>/dev/null || echo 'no status')" >&2
    grep -E '^(CRASH|HANG|memory allocation)' -A1 "$logs/$p.err" >&2 || tail -n 5 "$logs/$p.err" >&2
  fi
done
echo
echo "wall time: $((end - start)) s"
exit "$failed"

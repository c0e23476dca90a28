#!/bin/sh
# Runs every cargo-fuzz target for SECONDS seconds each, one after another, and prints
# libFuzzer's final statistics (execs, exec/s, peak RSS) and last coverage line per target.
# Usage: fuzz/run.sh SECONDS [TARGET...]   (from anywhere; default: all targets)
# New inputs go to fuzz/scratch/<target>/ (ignored), so fuzz/corpus/ stays small; see
# fuzz/README.md for minimising them. Exits non-zero if any target failed (a crash leaves
# its input in fuzz/artifacts/<target>/).
set -u

if [ $# -lt 1 ] || ! [ "$1" -gt 0 ] 2>/dev/null; then
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
fi
seconds=$1
shift

cd "$(dirname "$0")/.." || exit 2
if [ $# -gt 0 ]; then
    targets="$*"
else
    targets=$(RUSTC_BOOTSTRAP=1 cargo fuzz list --fuzz-dir fuzz) || exit 2
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=""
for t in $targets; do
    echo "== $t: ${seconds}s"
    mkdir -p "fuzz/scratch/$t" "fuzz/corpus/$t"
    if RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "fuzz/scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$logs/$t.log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed="$failed $t"
        tail -n 40 "$logs/$t.log"
    fi
    echo "-- $t: $status"
    grep -E '^#[0-9]+.*(DONE|cov:)' "$logs/$t.log" | tail -n 1
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
        "$logs/$t.log"
done

if [ -n "$failed" ]; then
    echo "failed:$failed" >&2
    exit 1
fi
echo "all targets ran ${seconds}s without a failure"

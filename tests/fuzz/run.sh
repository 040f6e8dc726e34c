#!/bin/sh
# Runs libFuzzer targets, as many at once as there are CPUs, each for SECONDS:
#   tests/fuzz/run.sh BUILD_DIR SECONDS TARGET...     (make fuzz, make fuzz-smoke)
# Each target starts from its seeds (tests/fuzz/corpus/T) and past crashers
# (tests/fuzz/regressions/T), which it runs first; new inputs go to BUILD_DIR/corpus/T and
# a crashing input to BUILD_DIR/findings/T/. Prints one line per target (executions, exec/s,
# verdict) and exits 1 when any target found something.
set -u
build=$1
seconds=$2
shift 2
jobs=$(nproc 2>/dev/null || echo 2)

fuzz_one() {
    t=$1
    mkdir -p "$build/corpus/$t" "$build/findings/$t" "tests/fuzz/regressions/$t"
    dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    # shellcheck disable=SC2086
    "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/findings/$t/" $dict \
        "$build/corpus/$t" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$build/$t.log" 2>&1
    echo $? >"$build/$t.rc"
}

# In batches of one target per CPU.
running=0
for t in "$@"; do
    rm -f "$build/$t.rc"
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait   # the whole batch (POSIX sh has no wait -n)
        running=0
    fi
done
wait

failed=0
for t in "$@"; do
    rc=$(cat "$build/$t.rc" 2>/dev/null || echo 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$t.log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$build/$t.log")
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $t: ${runs:-?} runs in ${seconds} s (${speed:-?}/s), nothing found"
    else
        failed=1
        echo "fuzz $t: FAILED (exit $rc) after ${runs:-?} runs; the input is in $build/findings/$t/:"
        grep -E '^property broken|^==[0-9]+== ?ERROR|^SUMMARY|runtime error|Test unit written' \
            "$build/$t.log" | head -20 | sed 's/^/    /'
        echo "    (full log: $build/$t.log)"
    fi
done
exit $failed

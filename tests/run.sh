#!/bin/sh
# Runs every suite against one binary and ends with the line "N passed, N failed".
#   tests/run.sh ./codeassist           (make test)
#   tests/run.sh build/asan/codeassist  (make asan)
# Suites speak TAP; a suite that dies without reporting counts as one failure.
set -u
BIN=${1:-./codeassist}
BUILD=${BUILD:-build}
case "$BIN" in /*) ;; *) BIN="$(pwd)/$BIN" ;; esac
export CODEASSIST_BIN="$BIN"
export CODEASSIST_ROOT="$(pwd)"
BUSTED=${BUSTED:-/usr/bin/busted}

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run_suite NAME COMMAND...: shows the suite's output and adds up its TAP lines.
run_suite() {
    name=$1
    shift
    echo "== $name"
    "$@" >"$log" 2>&1
    rc=$?
    cat "$log"
    p=$(grep -c '^ok ' "$log")
    f=$(grep -c '^not ok ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "not ok - suite '$name' exited with status $rc without a failing test"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
}

for t in "$BUILD"/test_*; do
    [ -x "$t" ] && run_suite "C unit: $(basename "$t")" "$t"
done

# busted runs inside the real host: `codeassist run` behaves like `lua FILE`.
run_suite "Lua specs" "$BIN" run "$BUSTED" --ignore-lua -o TAP --lpath="tests/spec/?.lua" tests/spec

# `make demo`, the newcomer's first five minutes, end to end.
run_suite "make demo (smoke)" sh tests/smoke/demo.sh

# The streaming paths once more under valgrind (not with the sanitizer build: they clash).
# valgrind's own notes (e.g. about pidfd_open, which it lacks) go to a log shown on failure.
if command -v valgrind >/dev/null 2>&1 && [ "${BUILD#build/asan}" = "$BUILD" ]; then
    vglog=$(mktemp)
    run_suite "valgrind: streams" valgrind -q --log-file="$vglog" --error-exitcode=99 \
        --leak-check=full --errors-for-leak-kinds=definite "$BIN" run tests/valgrind/streams.lua
    if [ "$rc" -ne 0 ]; then grep -v 'syscall: 434\|README_MISSING\|handler\.\|bug_reports\|consider this a bug' "$vglog"; fi
    rm -f "$vglog"
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

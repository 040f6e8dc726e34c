#!/bin/sh
# `make demo` as the suite's smoke test (TAP): the whole loop offline, from the doctor to the
# pull request, the report and whatif — what a newcomer sees first must keep working.
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s%N)
# the compiler's message is matched in English; the demo is bounded like every test
LANGUAGE=C LC_MESSAGES=C timeout 300 sh tools/demo.sh >"$out" 2>&1
status=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
n=0
check() {   # check DESCRIPTION PATTERN: the demo's output holds PATTERN (grep -E)
    n=$((n + 1))
    if grep -Eq -- "$2" "$out"; then echo "ok $n - demo: $1"; else echo "not ok $n - demo: $1 (no line matching: $2)"; failed=1; fi
}
failed=0
n=$((n + 1))
if [ "$status" -eq 0 ]; then echo "ok $n - demo: exits 0"; else echo "not ok $n - demo: exits 0 (it exited $status)"; failed=1; fi
check "the doctor accepts every route" "Every required route is usable"
check "a preset's typos are named" "architcet.*did you mean 'architect'"
check "iteration 1 fails the real build" "build +0 +FAIL +measured.*error: expected"
check "the finding reaches iteration 2, which passes" "^  test +100 +PASS +measured +all 3 tests passed"
check "done in two iterations with a pull request" "Done: score 100/95 after 2 iterations; pull request https://"
check "the cost and savings" "^Cost \\\$[0-9.]+; all on Claude it would have been about \\\$[0-9.]+: saved"
check "one commit on the pushed branch" "commit [0-9a-f]+ fix: add\\(\\) subtracts instead of adding \\(#7\\)"
check "runs lists the run" "^  [0-9]{8}-[0-9]{6}-7-[0-9a-f]+ +#7 +ollama_hybrid +done"
check "whatif prices it under other presets" "^  TOTAL +\\\$[0-9.]+ +\\\$[0-9.]+ +\\\$0"
echo "1..$n"
echo "# make demo took $ms ms"
[ "$failed" -eq 0 ] || { echo "# the demo's output:"; sed 's/^/#   /' "$out"; }
exit "$failed"

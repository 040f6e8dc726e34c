#!/bin/sh
# `make demo`: the whole product offline, in a few seconds. A simulated Claude and a simulated
# 24 GB GPU (tests/fakes/llm_server.py on loopback) are scripted (examples/demo/scenario.json)
# so that the agent fixes issue #7 of a small C project (examples/demo/project) in two
# iterations: the doctor checks every route, the loop implements, builds and tests for real,
# scores the gates, feeds the failure back, commits, pushes to a local bare remote and opens
# the pull request through the gh stand-in; then the run's report, its cost and savings, and
# what other presets would have cost.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${CODEASSIST_BIN:-$root/codeassist}   # the suite runs the demo with the binary under test
dir=$(mktemp -d)
cleanup() { kill $(cat "$dir"/*.pid 2>/dev/null) 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# Only loopback is used: a proxy in the environment must not stand in between.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

# start_simulator NAME ARGS...: a simulator on a free loopback port; prints its URL.
start_simulator() {
    name=$1
    shift
    timeout 600 python3 tests/fakes/llm_server.py --port-file "$dir/$name.port" "$@" 2>"$dir/$name.log" &
    echo $! >"$dir/$name.pid"
    i=0
    while [ ! -f "$dir/$name.port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    [ -f "$dir/$name.port" ] || { cat "$dir/$name.log" >&2; echo "demo: the $name simulator did not start" >&2; exit 1; }
}
start_simulator gpu
start_simulator claude --flavor anthropic
GPU_URL="http://127.0.0.1:$(cat "$dir/gpu.port")"
CLAUDE_URL="http://127.0.0.1:$(cat "$dir/claude.port")"
# The setup guide's models on the GPU; both scripted; replies timed like a small real run.
curl -sS --fail -o /dev/null -X POST --data @examples/demo-models.json "$GPU_URL/_sim/models"
for url in "$GPU_URL" "$CLAUDE_URL"; do
    curl -sS --fail -o /dev/null -X POST --data @examples/demo/scenario.json "$url/_sim/scenario"
done
curl -sS --fail -o /dev/null -X POST --data '{"load_seconds": 0.4, "reply_seconds": 0.15}' "$GPU_URL/_sim/scenario"
curl -sS --fail -o /dev/null -X POST --data '{"reply_seconds": 0.15}' "$CLAUDE_URL/_sim/scenario"

sh tools/demo-project.sh "$dir/demo"
repo=$dir/demo/repo
mkdir -p "$repo/.claude"
cat >"$repo/.claude/autonomous.yml" <<YAML
iteration_delay: 0
providers:
  default: claude
  ollama:
    enabled: true
    base_url: $GPU_URL
    vram_gb: 24
YAML
# What a user's shell holds: a key for Claude (the simulated one), gh on PATH (the stand-in).
export PATH="$root/tests/fakes:$PATH" FAKE_FORGE_DIR="$dir/demo/forge"
export ANTHROPIC_API_KEY=sk-ant-demo ANTHROPIC_BASE_URL="$CLAUDE_URL" OLLAMA_HOST=
cd "$repo"

echo "== codeassist doctor ollama_hybrid   (is every gate's route usable? Claude and a 24 GB GPU, both simulated)"
"$bin" doctor ollama_hybrid | sed -n '/^Gates:/,$p'

# A preset of one's own, with the typos people make: every one named at once, nothing spent.
cat >mine.lua <<'LUA'
local preset = require "codeassist.preset"
return preset.define{
  name = "mine", extends = "ollama_hybrid",
  routes = { architcet = { provider = "olama" } },
  target_score = 150,
}
LUA
echo
echo "== codeassist doctor mine.lua   (a preset with typos)"
"$bin" doctor mine.lua 2>&1 || echo "(exit $?: fix the preset, then run again)"
rm mine.lua

echo
echo "== codeassist run ollama_hybrid --issue 7   (issue #7: \"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["title"])' "$root/examples/demo/issue-7.json")\")"
status=0
"$bin" run ollama_hybrid --issue 7 || status=$?

echo
echo "== what it left behind (exit $status)"
git -C "$dir/demo/remote.git" log --format='  commit %h %s' main..feature/7-add-subtracts-instead-of-adding 2>/dev/null || true
python3 -c 'import json,sys; [print("  pull request", p["url"], "-", p["title"], "(" + p["head"] + " -> " + p["base"] + ")") for p in json.load(open(sys.argv[1]))]' \
    "$dir/demo/forge/prs.json" 2>/dev/null || true
echo
echo "== codeassist runs"
"$bin" runs
run_id=$("$bin" runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
echo
echo "== codeassist whatif $run_id claude ollama_only   (the same run priced under other presets)"
"$bin" whatif "$run_id" claude ollama_only
echo
echo "== codeassist report   (report.md, also the pull request's body; the run's folder .codeassist/runs/$run_id"
echo "   holds it with state.json, ledger.jsonl, trace.jsonl and audit.jsonl)"
"$bin" report | sed -n '/^Closes/,$p'
exit "$status"

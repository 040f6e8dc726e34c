#!/bin/sh
# `make bench`: every benchmark, each figure printed with its ratio against its baseline.
#   tests/bench/run.sh ./codeassist
set -eu
BIN=${1:-./codeassist}
case "$BIN" in /*) ;; *) BIN="$(pwd)/$BIN" ;; esac
export CODEASSIST_BIN="$BIN"
cd "$(dirname "$0")/../.."

"$BIN" run tests/bench/startup.lua

# The model simulator on a free loopback port, for the streaming benchmarks.
dir=$(mktemp -d)
trap 'kill "$sim_pid" "$claude_pid" 2>/dev/null; rm -rf "$dir"' EXIT
timeout 900 python3 tests/fakes/llm_server.py --port-file "$dir/port" 2>"$dir/sim.log" &
sim_pid=$!
timeout 900 python3 tests/fakes/llm_server.py --flavor anthropic --port-file "$dir/claude_port" 2>"$dir/claude.log" &
claude_pid=$!
i=0
while { [ ! -f "$dir/port" ] || [ ! -f "$dir/claude_port" ]; } && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -f "$dir/port" ] && [ -f "$dir/claude_port" ] || { cat "$dir/sim.log" "$dir/claude.log"; echo "bench: the simulator did not start" >&2; exit 1; }
export SIM_URL="http://127.0.0.1:$(cat "$dir/port")"
export CLAUDE_URL="http://127.0.0.1:$(cat "$dir/claude_port")"
"$BIN" run tests/bench/streams.lua
"$BIN" run tests/bench/doctor.lua
"$BIN" run tests/bench/provider.lua
"$BIN" run tests/bench/agent.lua
"$BIN" run tests/bench/loop.lua
"$BIN" run tests/bench/runstate.lua

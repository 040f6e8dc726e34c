#!/bin/sh
# `make demo`: starts the bundled model simulator on a free loopback port, runs the tour in
# examples/demo.lua against it, and stops the simulator again.
set -eu
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'kill "$sim_pid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
timeout 600 python3 tests/fakes/llm_server.py --port-file "$dir/port" 2>"$dir/sim.log" &
sim_pid=$!
i=0
while [ ! -f "$dir/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -f "$dir/port" ] || { cat "$dir/sim.log" >&2; echo "demo: the model simulator did not start" >&2; exit 1; }
SIM_URL="http://127.0.0.1:$(cat "$dir/port")" ./codeassist run examples/demo.lua

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
SIM_URL="http://127.0.0.1:$(cat "$dir/port")"
SIM_URL=$SIM_URL ./codeassist run examples/demo.lua

# The doctor against a simulated 24 GB GPU server holding the setup guide's models.
curl -s -X POST --data @examples/demo-models.json "$SIM_URL/_sim/models" >/dev/null
mkdir -p "$dir/project/.claude"
cat > "$dir/project/.claude/autonomous.yml" <<YAML
providers:
  default: ollama
  ollama:
    enabled: true
    base_url: $SIM_URL
    model: qwen3-coder
    vram_gb: 24
YAML
bin=$(pwd)/codeassist
echo
echo "== codeassist doctor ollama_only   (a simulated 24 GB GPU with the setup guide's models)"
(cd "$dir/project" && "$bin" doctor ollama_only) || echo "(doctor exit $?: see the problems above)"
echo
echo "== codeassist models --vram 24"
(cd "$dir/project" && "$bin" models --vram 24)

# Editing a preset: a copy of ollama_hybrid with the typos people make, every one named at once.
cat > "$dir/project/mine.lua" <<'LUA'
local preset = require "codeassist.preset"
return preset.define{
  name = "mine", extends = "ollama_hybrid",
  route = { review = "claude" },                                   -- meant: routes
  routes = { architcet = { provider = "olama", floor = "degradeable", fallback = "cluade" } },
  target_score = 150,
}
LUA
echo
echo "== codeassist doctor mine.lua   (a preset with typos: nothing is checked until they are fixed)"
(cd "$dir/project" && "$bin" doctor mine.lua) 2>&1 || echo "(exit $?: a usage error)"

# The same preset, fixed, with one gate moved to Claude for this run by a flag.
cat > "$dir/project/mine.lua" <<'LUA'
local preset = require "codeassist.preset"
return preset.define{
  name = "mine", extends = "ollama_hybrid", target_score = 90,
  routes = { architect = { provider = "ollama", model = "qwen3-coder", floor = "degradable", fallback = "claude" } },
}
LUA
echo
echo "== codeassist doctor mine.lua --route ux=claude   (where each route came from: FROM)"
(cd "$dir/project" && ANTHROPIC_API_KEY=sk-demo "$bin" doctor mine.lua --route ux=claude 2>&1 | sed -n '/^Gates:/,/^$/p')

#!/bin/sh
# `make demo`: starts the bundled model simulator on a free loopback port, runs the tour in
# examples/demo.lua against it, the doctor, and then the main job — `codeassist run
# ollama_hybrid --issue 7` on a small project with a bug, from the issue to a pull request —
# against a simulated Claude and a simulated 24 GB GPU; then stops the simulators again.
set -eu
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
claude_pid=
trap 'kill "$sim_pid" $claude_pid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
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

# The main job. Claude (simulated) implements and runs the critical gates; the simulated GPU
# serves the rest; tests/fakes/gh stands in for GitHub's CLI and records the pull request.
timeout 600 python3 tests/fakes/llm_server.py --flavor anthropic --port-file "$dir/claude_port" 2>"$dir/claude.log" &
claude_pid=$!
i=0
while [ ! -f "$dir/claude_port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -f "$dir/claude_port" ] || { cat "$dir/claude.log" >&2; echo "demo: the Claude simulator did not start" >&2; exit 1; }
CLAUDE_URL="http://127.0.0.1:$(cat "$dir/claude_port")"
curl -s -X POST --data @examples/loop-scenario.json "$SIM_URL/_sim/scenario" >/dev/null
curl -s -X POST --data '{"load_seconds": 0.5, "reply_seconds": 0.2}' "$SIM_URL/_sim/scenario" >/dev/null
curl -s -X POST --data @examples/loop-scenario.json "$CLAUDE_URL/_sim/scenario" >/dev/null
curl -s -X POST --data '{"reply_seconds": 0.2}' "$CLAUDE_URL/_sim/scenario" >/dev/null
sh tests/fakes/make_project.sh "$dir/loop"
mkdir -p "$dir/loop/repo/.claude"
cat > "$dir/loop/repo/.claude/autonomous.yml" <<YAML
iteration_delay: 0
providers:
  default: claude
  ollama:
    enabled: true
    base_url: $SIM_URL
    vram_gb: 24
YAML
echo
echo "== codeassist run ollama_hybrid --issue 7   (issue #7: calc.sh's add() subtracts)"
status=0
(cd "$dir/loop/repo" && PATH="$(cd "$OLDPWD" && pwd)/tests/fakes:$PATH" FAKE_FORGE_DIR="$dir/loop/forge" \
  ANTHROPIC_API_KEY=sk-demo ANTHROPIC_BASE_URL="$CLAUDE_URL" OLLAMA_HOST= \
  "$bin" run ollama_hybrid --issue 7) || status=$?
echo
echo "== what it left behind (exit $status)"
git -C "$dir/loop/remote.git" log --format='%h %s' main..feature/7-add-subtracts-instead-of-adding 2>/dev/null || true
python3 -c 'import json,sys; [print("pull request:", p["url"], "-", p["title"], "(" + p["head"] + " -> " + p["base"] + ")") for p in json.load(open(sys.argv[1]))]' "$dir/loop/forge/prs.json" 2>/dev/null || true

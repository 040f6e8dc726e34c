-- What a person sees in a real terminal (tmux): the doctor's header at once, a live line with
-- the elapsed time while a slow check runs, sections as they finish, and no live line left
-- behind at the end.
local support = require "support"
local clock = require "codeassist.clock"

local function tmux(socket, ...)
  local argv = { "tmux", "-L", socket, ... }
  local r = assert(require("codeassist.proc").run(argv))
  return r.stdout
end

describe("the doctor in a terminal", function()
  local sim, socket
  setup(function()
    sim = support.simulator()
    socket = "codeassist-spec-" .. tostring(math.floor(clock.wall() * 1000) % 1000000)
  end)
  teardown(function()
    tmux(socket, "kill-server")
    sim:stop()
    support.cleanup()
  end)

  it("shows progress at once and leaves a clean screen", function()
    local dir = support.tmpdir()
    support.write(dir .. "/.claude/autonomous.yml", ("providers:\n  default: ollama\n  ollama:\n    enabled: true\n"
      .. "    base_url: %s\n    model: qwen3-coder\n"):format(sim.url))
    -- reading the models' details takes 2 s: long enough to be seen
    sim:fault{ match = { path = "/api/show" }, times = 10, kind = "delay", seconds = 2 }
    local cmd = ("cd '%s' && '%s' doctor ollama_only; echo EXIT=$?; sleep 120"):format(dir, support.bin)
    tmux(socket, "new-session", "-d", "-s", "doctor", "-x", "110", "-y", "50", cmd)

    local function screen() return tmux(socket, "capture-pane", "-p", "-t", "doctor") end
    local started = clock.monotonic()
    local early
    repeat
      clock.sleep(0.1)
      early = screen()
    until early:find("… reading", 1, true) or clock.monotonic() - started > 5
    assert.matches("^codeassist doctor — preset ollama_only, config %.claude/autonomous%.yml\n", early)
    assert.matches("\n… checking Ollama at " .. sim.url:gsub("%p", "%%%0") .. " %(%d+%.%ds%)", early)
    assert.matches("\n… reading qwen3%-coder on ", early)
    assert.not_matches("Gates:", early)

    local final
    repeat
      clock.sleep(0.2)
      final = screen()
    until final:find("EXIT=", 1, true) or clock.monotonic() - started > 20
    assert.matches("EXIT=1", final)
    assert.matches("\nOllama %(" .. sim.url:gsub("%p", "%%%0") .. "%):\n  ✓ Server reachable", final)
    assert.matches("\nGates:\n", final)
    assert.not_matches("\n…", final)   -- every live line was erased
    -- the sections come in order, each once
    local _, headers = final:gsub("codeassist doctor —", "")
    assert.are.equal(1, headers)
    assert.is_true(final:find("Ollama (", 1, true) < final:find("Gates:", 1, true))
  end)
end)

describe("a run in a terminal", function()
  local sim, socket
  local cjson = require "cjson"
  local fs = require "codeassist.fs"
  setup(function()
    sim = support.simulator()
    socket = "codeassist-spec-run-" .. tostring(math.floor(clock.wall() * 1000) % 1000000)
  end)
  teardown(function()
    tmux(socket, "kill-server")
    sim:stop()
    support.cleanup()
  end)

  it("shows the plan and live progress at once, and --supervised asks before the next iteration", function()
    local top = support.tmpdir()
    local made = support.sh(("sh %s/tests/fakes/make_project.sh %s"):format(support.root, top))
    assert(made.code == 0, made.stderr)
    support.write(top .. "/repo/.claude/autonomous.yml", ("iteration_delay: 0\nproviders:\n  default: ollama\n  ollama:\n"
      .. "    enabled: true\n    base_url: %s\n    model: qwen3-coder\n"):format(sim.url))
    -- the agent breaks the build; every reply takes 1 s, long enough to be seen
    local scen = cjson.decode(fs.read(support.root .. "/examples/loop-scenario.json"))
    for _, c in ipairs(scen.conversations) do
      if c.gate == "implement" then
        c.replies = { { tool_calls = { { name = "edit", input = { path = "calc.sh", old_string = "$1 - $2", new_string = "$1 + ))" } } } },
                      { text = "Done." } }
      end
    end
    scen.reply_seconds = 1
    sim:control("/_sim/scenario", scen)
    local cmd = ("cd '%s/repo' && PATH='%s/tests/fakes':$PATH FAKE_FORGE_DIR='%s/forge' '%s' run ollama_only --issue 7 "
      .. "--max-iterations 2 --supervised --route build=ollama:qwen3-coder --route architect=ollama:qwen3-coder "
      .. "--route devops=ollama:qwen3-coder; echo EXIT=$?; sleep 120"):format(top, support.root, top, support.bin)
    tmux(socket, "new-session", "-d", "-s", "run", "-x", "160", "-y", "60", cmd)
    local function screen() return tmux(socket, "capture-pane", "-p", "-t", "run") end
    local function wait_for(text, seconds)
      local started, s = clock.monotonic(), ""
      repeat
        clock.sleep(0.1)
        s = screen()
      until s:find(text, 1, true) or clock.monotonic() - started > seconds
      return s
    end

    local early = wait_for("1 tool call", 15)
    assert.matches("^codeassist run — preset ollama_only\n", early)
    assert.matches("\nIteration 1/2\n", early)
    -- the live line says what the agent runs on and what it has done so far
    assert.matches("\n… implementing %(%d+%.%ds%) ollama qwen3%-coder · 1 tool call", early)
    local gate = wait_for("… gate security", 15)
    assert.matches("\n… gate security %(%d+%.%ds%) ollama qwen3%-coder", gate)

    local asked = wait_for("Continue? [y]es / [n]o", 30)
    assert.matches("\n  build +0 +FAIL +measured", asked)
    assert.matches("Iteration 1 done %(score [%d.]+%)%. Continue%? %[y%]es / %[n%]o %(stop%) / %[s%]kip the delay:$",
      asked:gsub("\n+$", ""))
    assert.not_matches("\n…", asked)          -- no live line left over the question
    tmux(socket, "send-keys", "-t", "run", "n", "Enter")
    local final = wait_for("EXIT=", 10)
    assert.matches("BLOCKED: stopped at the supervisor's request", final)
    assert.matches("EXIT=1", final)
    assert.not_matches("Iteration 2/2", final)
  end)
end)

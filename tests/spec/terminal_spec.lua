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

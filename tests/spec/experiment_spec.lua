-- Trying presets for nothing: a run recorded with --record replays with --replay to the same
-- scores without any model; whatif re-prices a finished run under other presets; a preset
-- edited during a run is re-read at the next iteration.
local support = require "support"
local fs = require "codeassist.fs"
local cjson = require "cjson"
local loop = require "loop_support"
local project, scenario, run, ollama_config = loop.project, loop.scenario, loop.run, loop.ollama_config
table.unpack = table.unpack or unpack

local KEY = "sk-ant-experiment-secret-0123456789"
local CLOSED = "http://127.0.0.1:9"   -- nothing listens: a replay must not need a model

-- as `codeassist runs` orders them (two runs may start in the same second)
local function newest_run(p)
  local newest = require("codeassist.runs").list(p.dir)[1]
  if not newest then return nil end
  return newest.paths.dir, newest.id
end

-- Each gate's score per iteration, from a finished run's state.
local function scores_of(p)
  local state = cjson.decode(fs.read(newest_run(p) .. "/state.json"))
  local out = {}
  for gate, entries in pairs(state.history) do
    for _, e in ipairs(entries) do out[#out + 1] = ("%d %s %s"):format(e.iteration, gate, tostring(e.score)) end
  end
  table.sort(out)
  return table.concat(out, "\n"), state
end

local function chat_calls(sim)
  local n = 0
  for _, e in ipairs(sim:log()) do
    if e.path == "/api/chat" or e.path == "/v1/messages" then n = n + 1 end
  end
  return n
end

describe("record and replay", function()
  local sim, claude, recorded, recorded_scores, recorded_project
  setup(function()
    sim = support.simulator()
    claude = support.simulator("--flavor anthropic --api-key " .. KEY)
  end)
  teardown(function() sim:stop(); claude:stop(); support.cleanup() end)

  local function hybrid_config(url)
    return ollama_config(url):gsub("default: ollama", "default: claude")
  end

  it("records a hybrid run's every model exchange", function()
    local p = project{ config = hybrid_config(sim.url) }
    sim:control("/_sim/scenario", loop.two_iterations())
    sim:control("/_sim/models", { models = loop.HYBRID_MODELS })
    claude:control("/_sim/scenario", loop.two_iterations())
    recorded, recorded_project = p.top .. "/recording", p
    local r = run(p, { "ollama_hybrid", "--issue", "7", "--record", recorded },
      { ANTHROPIC_API_KEY = KEY, ANTHROPIC_BASE_URL = claude.url })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("recording every model exchange in " .. recorded:gsub("%p", "%%%0"), r.stdout)
    local _, state = scores_of(p)
    assert.are.equal(2, state.iteration)
    recorded_scores = scores_of(p)
    local lines = 0
    for line in fs.read(recorded .. "/exchanges.jsonl"):gmatch("[^\n]+") do
      lines = lines + 1
      local x = cjson.decode(line)
      assert.is_string(x.gate)
      assert.is_table(x.request)
    end
    assert.are.equal(chat_calls(sim) + chat_calls(claude), lines)
    assert.is_nil(fs.read(recorded .. "/exchanges.jsonl"):find(KEY, 1, true))
    assert.is_table(cjson.decode(fs.read(recorded .. "/meta.json")).model_sizes)
  end)

  it("whatif prices the run under other presets by the ledger's numbers", function()
    assert.is_table(recorded_project, "the recording test ran first")
    local p = recorded_project
    local _, id = newest_run(p)
    local r = support.codeassist({ "whatif", id, "claude", "ollama_hybrid", "ollama_only", "--json" },
      { cwd = p.dir, env = { NO_COLOR = "1" } })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    local doc = cjson.decode(r.stdout)
    local spent, paid = 0, 0
    for line in fs.read(newest_run(p) .. "/ledger.jsonl"):gmatch("[^\n]+") do
      local e = cjson.decode(line)
      spent = spent + e.usd
      if e.provider == "anthropic" then paid = paid + 1 end
    end
    assert.is_true(paid > 0 and spent > 0)
    local by_name = {}
    for _, c in ipairs(doc.presets) do by_name[c.name] = c end
    -- the run's own preset costs what the run spent; all-Claude more; all-local nothing
    assert.is_true(math.abs(by_name.ollama_hybrid.usd - spent) < 1e-9, by_name.ollama_hybrid.usd .. " vs " .. spent)
    assert.are.same({}, by_name.ollama_hybrid.moved)
    assert.is_true(by_name.claude.usd > by_name.ollama_hybrid.usd)
    assert.is_true(math.abs(by_name.claude.usd - doc.claude_usd) < 1e-9)
    assert.are.equal(0, by_name.ollama_only.usd)
    assert.is_true(#by_name.ollama_only.moved > 0)
    -- side by side for people, with the gates that would move
    r = support.codeassist({ "whatif", id, "claude", "ollama_only" }, { cwd = p.dir, env = { NO_COLOR = "1" } })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("GATE%s+CALLS%s+TOKENS IN/OUT%s+THIS RUN%s+claude%s+ollama_only", r.stdout)
    assert.matches("\n  implement%s+%d+%s+%d+/%d+%s+claude claude%-sonnet%-4%-5 %$[%d.]+%s+claude claude%-sonnet%-4%-5 %$[%d.]+%s+ollama qwen3%-coder %$0 %*", r.stdout)
    assert.matches("gates that move%s+[%w, ]+%s+implement", r.stdout)
    -- a run that is not there, a preset that is not there
    r = support.codeassist({ "whatif", "nope", "claude" }, { cwd = p.dir })
    assert.are.equal(2, r.code)
    assert.matches("no run nope", r.stderr)
    r = support.codeassist({ "whatif", id, "cluade" }, { cwd = p.dir })
    assert.are.equal(2, r.code)
    assert.matches("did you mean 'claude'", r.stderr)
  end)

  it("replays it twice to the same scores with no model at all", function()
    assert.is_string(recorded, "the recording test ran first")
    local before = chat_calls(sim) + chat_calls(claude)
    for round = 1, 2 do
      local p = project{ config = hybrid_config(CLOSED) }
      -- the recording knows its issue; naming it is allowed too
      local args = round == 1 and { "ollama_hybrid", "--replay", recorded } or { "ollama_hybrid", "--issue", "7", "--replay", recorded }
      local r = run(p, args,
        { ANTHROPIC_API_KEY = KEY, ANTHROPIC_BASE_URL = CLOSED })
      assert.are.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("replaying %d+ recorded model exchanges from", r.stdout)
      assert.are.equal(recorded_scores, (scores_of(p)))
      -- no forge was asked or told anything, nothing was pushed: the work stays on its own branch
      assert.are.same({}, loop.gh_calls(p))
      assert.matches("^[%s*]*replay/7%-add%-subtracts%-instead%-of%-adding%-%d+%-%d+\n",
        support.sh("git branch --list 'replay/*'", { cwd = p.dir }).stdout)
      assert.are.equal("", support.sh("git branch --list 'feature/*' 'replay/*'", { cwd = p.remote }).stdout)
      -- nothing was spent: the replayed calls cost nothing, and said so
      local report = cjson.decode(fs.read(newest_run(p) .. "/report.json"))
      assert.are.equal(0, report.cost.usd)
      assert.are.equal(0, report.cost.paid_calls)
      assert.is_true(report.cost.recorded_usd > 0)
      assert.matches("Cost %$0: a replay, no model was called %(the recorded run cost %$[%d.]+", r.stdout)
    end
    assert.are.equal(before, chat_calls(sim) + chat_calls(claude))
  end)

  it("stops with a clear error at a request the recording does not hold", function()
    assert.is_string(recorded, "the recording test ran first")
    local p = project{ config = hybrid_config(CLOSED) }
    local r = run(p, { "ollama_hybrid", "--issue", "7", "--replay", recorded, "--route", "security=ollama:qwq:32b" },
      { ANTHROPIC_API_KEY = KEY, ANTHROPIC_BASE_URL = CLOSED })
    assert.are.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("no recorded answer for the security gate, iteration 1, model ollama qwq:32b", r.stdout .. r.stderr)
    assert.matches("record it again with %-%-record", r.stdout .. r.stderr)
  end)

  it("refuses what cannot be replayed, naming it", function()
    local p = project{ config = hybrid_config(CLOSED) }
    local r = run(p, { "ollama_hybrid", "--issue", "7", "--replay", p.top .. "/nothing" })
    assert.are.equal(2, r.code, r.stdout .. r.stderr)
    assert.matches("%-%-replay .-nothing: no recording there", r.stderr)
    r = run(p, { "ollama_hybrid", "--resume", "--replay", p.top .. "/nothing" })
    assert.are.equal(2, r.code, r.stdout .. r.stderr)
    assert.matches("%-%-resume and %-%-replay do not go together", r.stderr)
    -- a recording inside the repository would be committed with the work
    r = run(p, { "ollama_hybrid", "--issue", "7", "--record", "rec/7" })
    assert.are.equal(2, r.code, r.stdout .. r.stderr)
    assert.matches("the folder is inside the repository, so the recording would be committed", r.stderr)
    -- so is one reached through a link from outside
    support.sh(("ln -s '%s' '%s/into-repo'"):format(p.dir, p.top))
    r = run(p, { "ollama_hybrid", "--issue", "7", "--record", p.top .. "/into-repo/rec" })
    assert.are.equal(2, r.code, r.stdout .. r.stderr)
    assert.matches("the folder is inside the repository", r.stderr)
    do
      assert.is_string(recorded, "the recording test above did not run")
      r = run(p, { "ollama_hybrid", "--issue", "7", "--record", recorded })
      assert.are.equal(2, r.code, r.stdout .. r.stderr)
      assert.matches("already holds a recording", r.stderr)
      r = run(p, { "ollama_hybrid", "--issue", "8", "--replay", recorded })
      assert.are.equal(2, r.code, r.stdout .. r.stderr)
      assert.matches("the recording is of issue #7, not #8", r.stderr)
    end
  end)
end)

describe("a recorded gate timeout", function()
  local sim
  setup(function() sim = support.simulator() end)
  teardown(function() sim:stop(); support.cleanup() end)

  it("replays as it happened: the call waits again and the gate times out again", function()
    local p = project{ config = ollama_config(sim.url) }
    local file = p.top .. "/slow_review.lua"
    support.write(file, [[
local preset = require "codeassist.preset"
return preset.define{ name = "slow_review", extends = "ollama_only",
  routes = { build = { provider = "ollama", model = "qwen3-coder" }, architect = { provider = "ollama", model = "qwen3-coder" },
             devops = { provider = "ollama", model = "qwen3-coder" }, review = { provider = "ollama", model = "qwen3:8b" } },
  gates = { review = { timeout_ms = 500 } } }
]])
    sim:control("/_sim/scenario", scenario())
    sim:fault{ match = { path = "/api/chat", model = "qwen3:8b" }, times = 1, kind = "delay", seconds = 3 }
    local rec = p.top .. "/rec"
    local r = run(p, { file, "--issue", "7", "--record", rec })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("review +0 +TIMEOUT", r.stdout)
    assert.matches('"cancelled":true', fs.read(rec .. "/exchanges.jsonl"))
    local recorded_scores = scores_of(p)

    local again = project{ config = ollama_config(CLOSED) }
    r = run(again, { file, "--replay", rec })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("review +0 +TIMEOUT", r.stdout)
    assert.are.equal(recorded_scores, (scores_of(again)))
  end)
end)

describe("a preset edited during a run", function()
  local sim, claude
  setup(function()
    sim = support.simulator()
    claude = support.simulator("--flavor anthropic --api-key " .. KEY)
  end)
  teardown(function() sim:stop(); claude:stop(); support.cleanup() end)
  before_each(function() sim:reset(); claude:reset() end)

  -- A preset that rewrites itself after iteration 1 (its on_iteration hook), as a person
  -- editing it during a long run would; `next_text` is what the file holds from then on.
  local function self_editing_preset(path, next_text)
    return ([[
local preset = require "codeassist.preset"
return preset.define{
  name = "mine", extends = "ollama_only",
  routes = { build = { provider = "ollama", model = "qwen3-coder" }, architect = { provider = "ollama", model = "qwen3-coder" },
             devops = { provider = "ollama", model = "qwen3-coder" } },
  on_iteration = function(ctx)
    if ctx.iteration == 1 then
      local f = assert(io.open(%q, "w"))
      f:write(%q)
      f:close()
    end
  end,
}
]]):format(path, next_text)
  end

  local EDITED = [[
local preset = require "codeassist.preset"
return preset.define{
  name = "mine", extends = "ollama_only",
  routes = { build = { provider = "ollama", model = "qwen3-coder" }, architect = { provider = "ollama", model = "qwen3-coder" },
             devops = { provider = "ollama", model = "qwen3-coder" }, review = "claude" },
}
]]

  local function ledger_routes(p, gate, iteration)
    local out = {}
    for line in fs.read(newest_run(p) .. "/ledger.jsonl"):gmatch("[^\n]+") do
      local e = cjson.decode(line)
      if e.gate == gate and e.iteration == iteration then out[#out + 1] = e.provider .. " " .. e.model end
    end
    return out
  end

  it("changes the next iteration's routes, and says so", function()
    local p = project{ config = ollama_config(sim.url) }
    sim:control("/_sim/scenario", loop.two_iterations())
    claude:control("/_sim/scenario", loop.two_iterations())
    local file = p.top .. "/mine.lua"
    support.write(file, self_editing_preset(file, EDITED))
    local r = run(p, { file, "--issue", "7" }, { ANTHROPIC_API_KEY = KEY, ANTHROPIC_BASE_URL = claude.url })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("mine%.lua changed: re%-read for iteration 2 — review: ollama qwen3%-coder → claude claude%-sonnet%-4%-5", r.stdout)
    assert.are.same({ "anthropic claude-sonnet-4-5" }, ledger_routes(p, "review", 2))
    assert.are.same({ "ollama qwen3-coder" }, ledger_routes(p, "mentor", 2))
    assert.matches('"event":"preset.reloaded"', fs.read(newest_run(p) .. "/trace.jsonl"))
  end)

  it("keeps the previous preset when the edited one no longer loads, and says why", function()
    local p = project{ config = ollama_config(sim.url) }
    sim:control("/_sim/scenario", loop.two_iterations())
    local file = p.top .. "/mine.lua"
    support.write(file, self_editing_preset(file, EDITED:gsub('review = "claude"', 'review = "cluade"')))
    local r = run(p, { file, "--issue", "7" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("mine%.lua changed but no longer loads, so iteration 2 keeps the previous preset: .-cluade.-claude", r.stdout)
    assert.are.same({ "ollama qwen3-coder" }, ledger_routes(p, "review", 2))
    assert.matches('"event":"preset.reload_failed"', fs.read(newest_run(p) .. "/trace.jsonl"))
  end)
end)

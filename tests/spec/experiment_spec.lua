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

local function newest_run(p)
  local ids = fs.list(p.dir .. "/.codeassist/runs") or {}
  table.sort(ids)
  return ids[#ids] and p.dir .. "/.codeassist/runs/" .. ids[#ids], ids[#ids]
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
  local sim, claude, recorded, recorded_scores
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
    recorded = p.top .. "/recording"
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

  it("replays it twice to the same scores with no model at all", function()
    assert.is_string(recorded, "the recording test ran first")
    local before = chat_calls(sim) + chat_calls(claude)
    for _ = 1, 2 do
      local p = project{ config = hybrid_config(CLOSED) }
      local r = run(p, { "ollama_hybrid", "--issue", "7", "--replay", recorded },
        { ANTHROPIC_API_KEY = KEY, ANTHROPIC_BASE_URL = CLOSED })
      assert.are.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("replaying %d+ recorded model exchanges from", r.stdout)
      assert.are.equal(recorded_scores, (scores_of(p)))
      -- nothing was spent: the replayed calls cost nothing, and said so
      local report = cjson.decode(fs.read(newest_run(p) .. "/report.json"))
      assert.are.equal(0, report.cost.usd)
      assert.are.equal(0, report.cost.paid_calls)
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
    if recorded then
      r = run(p, { "ollama_hybrid", "--issue", "7", "--record", recorded })
      assert.are.equal(2, r.code, r.stdout .. r.stderr)
      assert.matches("already holds a recording", r.stderr)
    end
  end)
end)

-- The worked examples of docs/PRESETS.md (examples/presets/*.lua): each one is accepted by
-- the real binary's doctor against the simulator (a pool of two Ollama servers, one down, with
-- the setup guide's models on a 24 GB GPU), its routes are the ones the guide shows, and its
-- hooks do what the guide says they do, through the real router and plan.
local support = require "support"
local fs = require "codeassist.fs"
local cjson = require "cjson"
local preset = require "codeassist.preset"
local config = require "codeassist.config"
local router = require "codeassist.router"

local EXAMPLES = support.root .. "/examples/presets"
local CLAUDE = { "claude", "claude-sonnet-4-5" }

-- What docs/PRESETS.md says each example routes where at iteration 0 (the doctor's view), and
-- the file the FROM column names for those routes.
local HYBRID = {
  implement = CLAUDE, test = CLAUDE, security = CLAUDE, mentor = CLAUDE,
  build = { "ollama", "qwen2.5-coder:32b" }, review = { "ollama", "qwen3-coder" },
  architect = { "ollama", "qwq:32b" }, devops = { "ollama", "qwen2.5-coder:32b" }, ux = { "ollama", "qwen3-coder" },
}
local EXPECTED = {
  ["review_escalates.lua"] = { routes = HYBRID, from = "presets/ollama_hybrid.lua" },
  ["security_weighted.lua"] = { routes = HYBRID, from = "presets/ollama_hybrid.lua" },
  ["all_local.lua"] = { from = "examples/presets/all_local.lua", routes = {
    implement = { "ollama", "qwen3-coder" }, test = { "ollama", "qwen3-coder" },
    security = { "ollama", "qwen3-coder" }, mentor = { "ollama", "qwen3-coder" },
    build = { "ollama", "qwen2.5-coder:32b" }, review = { "ollama", "codestral:22b" },
    architect = { "ollama", "qwq:32b" }, devops = { "ollama", "deepseek-coder-v2:16b" },
    ux = { "ollama", "deepseek-coder-v2:16b" } } },
}

local function examples()
  local list = {}
  for _, name in ipairs(assert(fs.list(EXAMPLES))) do
    if name:match("%.lua$") then list[#list + 1] = name end
  end
  table.sort(list)
  return list
end

local function config_text(pool)
  return ("providers:\n  default: ollama\n  ollama:\n    enabled: true\n    base_url: [%s]\n"
    .. "    model: qwen3-coder\n    vram_gb: 24\n"):format(table.concat(pool, ", "))
end

-- A result of iteration i for ctx.history.
local function was(i, score, provider)
  return { iteration = i, score = score, passed = score >= 80, status = score >= 80 and "PASS" or "WARN",
           provider = provider or "ollama", model = provider == "claude" and "claude-sonnet-4-5" or "qwen3-coder" }
end

describe("the preset guide's examples", function()
  local sim, dir, cfg
  setup(function()
    sim = support.simulator()
    sim:control("/_sim/models", cjson.decode(fs.read(support.root .. "/examples/demo-models.json")))
    dir = support.tmpdir()
    support.write(dir .. "/.claude/autonomous.yml", config_text{ sim.url, support.closed_port_url() })
    cfg = config.load{ path = dir .. "/.claude/autonomous.yml", env = function() return nil end }
  end)
  teardown(function() sim:stop(); support.cleanup() end)

  it("are all accepted by the doctor, with the routes the guide gives", function()
    local found = examples()
    assert.is_true(#found >= 3, "examples/presets/ holds the guide's three examples")
    local no_claude = support.closed_port_url()   -- never api.anthropic.com, even by mistake
    for _, name in ipairs(found) do
      local expected = EXPECTED[name]
      assert.is_truthy(expected, name .. " is in examples/presets/ but this spec does not say what it routes: add it to EXPECTED")
      local r = support.codeassist({ "doctor", EXAMPLES .. "/" .. name, "--json" }, { cwd = dir, timeout = 60,
        env = { NO_COLOR = "1", OLLAMA_HOST = false, ANTHROPIC_API_KEY = "sk-ant-spec", ANTHROPIC_AUTH_TOKEN = false,
                ANTHROPIC_BASE_URL = no_claude } })
      assert.are.equal(0, r.code, name .. ":\n" .. r.stdout .. r.stderr)
      local report = cjson.decode(r.stdout)
      assert.is_true(report.ok, name)
      assert.are.equal(name:gsub("%.lua$", ""), report.preset)
      local seen = {}
      for _, g in ipairs(report.gates) do
        seen[g.gate] = true
        assert.are.same(expected.routes[g.gate], { g.provider, g.model }, name .. ": the " .. g.gate .. " route")
        assert.is_truthy(g.origin:find(expected.from, 1, true), name .. ": " .. g.gate .. " comes from " .. g.origin)
        assert.is_true(g.usable, name .. ": " .. g.gate)
      end
      for gate in pairs(expected.routes) do assert.is_true(seen[gate], name .. ": no " .. gate .. " in the report") end
    end
  end)

  it("1: review moves to Claude after two failed iterations on its local model, and stays there", function()
    local plan = preset.plan(preset.load(EXAMPLES .. "/review_escalates.lua", cfg), cfg)
    local r = router.new{ cfg = cfg, plan = plan }
    local function review_at(history, gate)
      local ctx = preset.context(plan, { phase = "gates", iteration = #(history.review or history[gate] or {}) + 1,
                                         history = history })
      return r:route_for(gate or "review", ctx)
    end
    assert.are.equal("ollama", review_at({}).provider)
    assert.are.equal("ollama", review_at{ review = { was(1, 60) } }.provider)
    assert.are.equal("ollama", review_at{ review = { was(1, 60), was(2, 90), was(3, 60) } }.provider)   -- not in a row
    local moved = review_at{ review = { was(1, 60), was(2, 70) } }
    assert.are.equal("anthropic", moved.provider)
    assert.are.equal("degradable", moved.floor)   -- review is optional
    assert.matches("^hook route%(%) in .*review_escalates%.lua", moved.origin)
    -- passing on Claude does not send it back
    assert.are.equal("anthropic", review_at{ review = { was(1, 60), was(2, 70), was(3, 95, "claude") } }.provider)
    -- only review: another local gate failing twice keeps its route
    assert.are.equal("ollama", review_at({ architect = { was(1, 10), was(2, 10) } }, "architect").provider)
  end)

  it("2: security counts double in the total, and a stuck security gate stops the run", function()
    local plan = preset.plan(preset.load(EXAMPLES .. "/security_weighted.lua", cfg), cfg)
    assert.are.equal(90, plan.target_score)
    local ctx = preset.context(plan, { phase = "gates", iteration = 1 })
    local results = {}
    for _, gate in ipairs(config.GATES) do
      results[#results + 1] = { gate = gate, score = gate == "security" and 50 or 100, status = "PASS" }
    end
    -- weights 20 test, 20×2 security, 10, 15, 15, 10, 5, 5: (120 × 100 − 40 × 50) / 120
    assert.are.equal(83.3, plan.score(results, ctx))
    results[#results + 1] = { gate = "review", score = 0, status = "SKIPPED" }   -- no weight field
    assert.is_number(plan.score(results, ctx))

    local function decide(scores)
      local h = {}
      for i, s in ipairs(scores) do h[i] = was(i, s) end
      return plan.on_iteration(preset.context(plan, { phase = "gates", iteration = #h, history = { security = h } }))
    end
    assert.is_nil(decide{ 40 })
    assert.is_nil(decide{ 40, 60 })            -- failing, but rising
    assert.is_nil(decide{ 40, 90 })            -- passed
    local go_on, why = decide{ 60, 40, 40 }
    assert.is_false(go_on)
    assert.are.equal("the security gate is stuck: it failed the last 2 iterations at 40/100", why)
  end)

  it("3: every route is local, with local fallbacks, smaller contexts, and the config's model", function()
    local plan = preset.plan(preset.load(EXAMPLES .. "/all_local.lua", cfg), cfg)
    local function chain(gate)
      local list = {}
      for route in preset.route_chain(plan.routes[gate]) do
        list[#list + 1] = route.provider .. " " .. route.model .. " " .. route.floor
      end
      return list
    end
    for gate, route in pairs(plan.routes) do
      for step in preset.route_chain(route) do assert.are.equal("ollama", step.provider, gate) end
    end
    assert.are.same({ "ollama qwen3-coder critical" }, chain("implement"))
    assert.are.same({ "ollama qwen3-coder critical" }, chain("security"))
    assert.are.same({ "ollama qwq:32b degradable", "ollama deepseek-coder-v2:16b degradable" }, chain("architect"))
    assert.are.same({ "ollama codestral:22b degradable", "ollama qwen3-coder degradable" }, chain("review"))
    assert.are.equal(16384, plan.gates.architect.context)
    assert.are.equal(8192, plan.gates.ux.context)
    assert.are.equal(32768, plan.gates.test.context)   -- untouched: the built-in default

    -- a function of the config: another providers.ollama.model moves the agent and the required gates
    local other = config.load{ path = support.write(support.tmpdir() .. "/autonomous.yml",
      config_text{ sim.url }:gsub("model: qwen3%-coder", "model: qwen3:8b")), env = function() return nil end }
    local p2 = preset.plan(preset.load(EXAMPLES .. "/all_local.lua", other), other)
    assert.are.equal("qwen3:8b", p2.routes.implement.model)
    assert.are.equal("qwen3:8b", p2.routes.build.fallback.model)
  end)
end)

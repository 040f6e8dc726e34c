-- Presets as users edit them: every mistake named with its file, key path and nearest valid
-- word (exit 2, all at once); inspectable values; extends; hooks; one precedence with origins.
local support = require "support"
local preset = require "codeassist.preset"
local config = require "codeassist.config"
local cjson = require "cjson"

-- Loads a config from YAML text (or none) with an environment table.
local function load_config(yaml_text, env)
  local dir = support.tmpdir()
  local path = dir .. "/autonomous.yml"
  if yaml_text then support.write(path, yaml_text) end
  return config.load{ path = yaml_text and path or nil, env = function(k) return (env or {})[k] end }
end

local function preset_file(text)
  return support.write(support.tmpdir() .. "/mine.lua", text)
end

-- Runs the real binary's doctor on a preset file, with nothing reachable.
local function doctor(file, args)
  local argv = { "doctor", file }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  return support.codeassist(argv, { cwd = support.tmpdir(), env = { NO_COLOR = "1", OLLAMA_HOST = "127.0.0.1:1",
    ANTHROPIC_API_KEY = false } })
end

describe("preset validation", function()
  teardown(support.cleanup)

  it("lists every mistake at once with its key path and a did-you-mean, exit 2", function()
    local file = preset_file([[
local preset = require "codeassist.preset"
return preset.define{
  name = "mine",
  route = { review = "claude" },
  routes = {
    architcet = { provider = "ollama", model = "qwq:32b" },
    build = { provider = "olama", model = "qwen3-coder" },
    review = { provider = "ollama", model = "qwen3-coder", floor = "degradeable", fallback = "cluade" },
  },
  target_score = 150,
  max_iterations = "x",
}
]])
    local r = doctor(file)
    assert.are.equal(2, r.code, r.stdout .. r.stderr)
    local err = r.stderr
    assert.matches(file:gsub("%p", "%%%0") .. ": the preset has 7 problems:", err)
    for _, expected in ipairs{
      "route: expected a function %(the route%(gate, ctx%) hook%), found a table — did you mean 'routes'%?",
      "routes%.architcet: unknown gate 'architcet' — did you mean 'architect'%?",
      "routes%.build%.provider: 'olama' is not one of claude, anthropic, ollama — did you mean 'ollama'%?",
      "routes%.review%.floor: 'degradeable' is not one of critical, degradable — did you mean 'degradable'%?",
      "routes%.review%.fallback: 'cluade' is not one of claude, anthropic, ollama, none — did you mean 'claude'%?",
      "target_score: must be between 0 and 100, found 150",
      "max_iterations: expected a whole number, found a string %(\"x\"%)",
    } do
      assert.matches(expected, err)
    end
    assert.not_matches("internal error", err)
    assert.are.equal("", r.stdout)   -- nothing was checked with a broken preset
  end)

  it("names the line of define when it is not a tail call", function()
    local file = preset_file([[
local preset = require "codeassist.preset"
local p = preset.define{ gates = { review = { weight = "heavy" } } }
return p
]])
    local r = doctor(file)
    assert.are.equal(2, r.code)
    assert.matches(file:gsub("%p", "%%%0") .. ":2: the preset has 1 problem:", r.stderr)
    assert.matches("gates%.review%.weight: expected a number, found a string %(\"heavy\"%)", r.stderr)
  end)

  it("checks hooks for type, with a hint when a value was meant for another key", function()
    local ok, err = pcall(preset.define, { score = 90, on_gate = {}, on_iteration = function() end })
    assert.is_false(ok)
    assert.matches("score: expected a function %(the score%(results, ctx%) hook%), found a number %(90%) — did you mean 'target_score'%?", err.message)
    assert.matches("on_gate: expected a function %(the on_gate%(result, ctx%) hook%), found a table — did you mean 'gates'%?", err.message)
    assert.not_matches("on_iteration", err.message)
    assert.are.equal(2, err.code)
  end)

  it("says which built-in preset was meant in extends", function()
    local ok, err = pcall(preset.define, { extends = "olama_hybrid" })
    assert.is_false(ok)
    assert.matches("extends: no built%-in preset named 'olama_hybrid' — did you mean 'ollama_hybrid'%?", err.message)
  end)

  it("gives a script mistake in a preset file its own line", function()
    local file = preset_file("local preset = require 'codeassist.preset'\nlocal x = nil\nreturn preset.define{ name = x.y }\n")
    local r = doctor(file)
    assert.are.equal(2, r.code)
    assert.matches(file:gsub("%p", "%%%0") .. ":3: attempt to index local 'x'", r.stderr)
    -- a mistake inside a hook: its line, and which hook was running
    file = preset_file("local preset = require 'codeassist.preset'\nreturn preset.define{ name = 'h', extends = 'claude',\n"
      .. "  route = function(gate, ctx) return ctx.issue.title end }\n")
    r = doctor(file)
    assert.are.equal(2, r.code)
    assert.matches(":3: attempt to index field 'issue' %(a nil value%) %(in the route%(gate, ctx%) hook of ", r.stderr)
  end)

  it("turns the run-time mistakes of built-in presets' users into exit 2, never exit 3", function()
    local file = preset_file((require("codeassist.fs").read(support.root .. "/presets/ollama_hybrid.lua")
      :gsub('provider = "ollama"', 'provider = "olama"')))
    local r = doctor(file)
    assert.are.equal(2, r.code)
    assert.matches("routes%.build%.provider: 'olama'", r.stderr)
  end)
end)

describe("preset values", function()
  teardown(support.cleanup)

  it("are plain tables you can read", function()
    local p = require "presets.ollama_hybrid"
    assert.is_true(preset.is_preset(p))
    assert.are.equal("ollama_hybrid", p.name)
    assert.are.equal("qwen3-coder", p.routes.review.model)
    assert.are.equal("claude", p.routes.review.fallback)
    assert.are.equal("critical", p.routes.security.floor)
    assert.matches("^preset ollama_hybrid %(presets/ollama_hybrid%.lua%)$", tostring(p))
  end)

  it("extend a built-in by name: routes per gate, gates per field, hooks inherited", function()
    local hook = function() end
    local base = preset.define{ name = "base", target_score = 85, route = hook,
      gates = { review = { weight = 30, required = true } },
      routes = { review = { provider = "ollama", model = "qwen3-coder" }, ux = "claude" } }
    local p = preset.define{ name = "child", extends = base, routes = { review = "claude" },
      gates = { review = { required = false } } }
    assert.are.equal("child", p.name)
    assert.are.equal("base", p.extends)
    assert.are.equal(85, p.target_score)
    assert.are.equal(hook, p.route)
    assert.are.equal("claude", p.routes.review)
    assert.are.equal("claude", p.routes.ux)
    assert.are.same({ weight = 30, required = false }, p.gates.review)
    -- the base is untouched
    assert.are.equal("qwen3-coder", base.routes.review.model)

    local h = preset.define{ extends = "ollama_hybrid", routes = { architect = "claude" } }
    assert.are.equal("ollama_hybrid", h.extends)
    assert.are.equal("claude", h.routes.architect)
    assert.are.equal("qwen3-coder", h.routes.review.model)
  end)

  it("extend with a function that receives a copy of the base", function()
    local p = preset.extend("ollama_hybrid", function(base)
      base.name = "cheaper"
      base.routes.security = { provider = "ollama", model = "qwen3-coder", floor = "critical", fallback = "claude" }
      base.target_score = 90
    end)
    assert.are.equal("cheaper", p.name)
    assert.are.equal("ollama_hybrid", p.extends)
    assert.are.equal("ollama", p.routes.security.provider)
    assert.are.equal(90, p.target_score)
    assert.are.equal("claude", require("presets.ollama_hybrid").routes.security.provider)   -- the base is untouched
    -- what the function returns is checked like any preset
    local ok, err = pcall(preset.extend, "claude", function(base) base.routes.bulid = "ollama" end)
    assert.is_false(ok)
    assert.matches("routes%.bulid: unknown gate 'bulid' — did you mean 'build'%?", err.message)
  end)

  it("extend a file next to the extending preset", function()
    local dir = support.tmpdir()
    support.write(dir .. "/base.lua", [[return require("codeassist.preset").define{ name = "base", max_iterations = 7 }]])
    support.write(dir .. "/child.lua", [[return require("codeassist.preset").define{ extends = "base.lua", target_score = 70 }]])
    local p = preset.load(dir .. "/child.lua", load_config())
    assert.are.equal(7, p.max_iterations)
    assert.are.equal(70, p.target_score)
    assert.are.equal("base", p.extends)
  end)
end)

describe("preset files, however they are run", function()
  teardown(support.cleanup)

  it("behave the same through doctor and through run --test-provider", function()
    local dir = support.tmpdir()
    support.write(dir .. "/helper.lua", 'return { model = "gpt-oss:20b" }')
    support.write(dir .. "/base.lua", 'return function(cfg) return { max_iterations = cfg.max_iterations + 1 } end')
    support.write(dir .. "/mine.lua", [[
local preset = require "codeassist.preset"
local helper = require "helper"                 -- a module next to the preset
return preset.define{ extends = "base.lua", routes = { ux = { provider = "ollama", model = helper.model } } }
]])
    local env = { OLLAMA_HOST = "127.0.0.1:1", ANTHROPIC_API_KEY = false }
    for _, args in ipairs{ { "doctor", dir .. "/mine.lua", "--json" }, { "run", dir .. "/mine.lua", "--test-provider", "--json" } } do
      local r = support.codeassist(args, { cwd = support.tmpdir(), env = env })
      assert.are.equal(1, r.code, args[1] .. ": " .. r.stderr)
      local doc = cjson.decode(r.stdout)
      assert.are.equal("mine", doc.preset, args[1])
      assert.are.equal(16, doc.targets.max_iterations.value, args[1])   -- the base saw the config
      local ux
      for _, g in ipairs(doc.gates) do if g.gate == "ux" then ux = g end end
      assert.are.equal("gpt-oss:20b", ux.model, args[1])
    end
  end)

  it("are checked again when code changed a preset value after define", function()
    local file = preset_file([[
local p = require("codeassist.preset").define{ extends = "claude" }
p.routes.review = "olama"
return p
]])
    local r = doctor(file)
    assert.are.equal(2, r.code)
    assert.matches("routes%.review: 'olama' is not one of", r.stderr)
  end)

  it("that are functions of the config see a copy, with keys only said to be set", function()
    local file = preset_file([[
return function(cfg)
  assert(cfg.providers.anthropic.api_key == true, "the key itself must not be visible")
  cfg.providers.ollama.base_url = "http://127.0.0.2:9"     -- changes nothing outside
  return { default_route = { provider = "ollama", model = "m" } }
end
]])
    local r = support.codeassist({ "doctor", file }, { cwd = support.tmpdir(),
      env = { NO_COLOR = "1", OLLAMA_HOST = "127.0.0.1:1", ANTHROPIC_API_KEY = "sk-ant-xyz" } })
    assert.are.equal(1, r.code, r.stderr)
    assert.matches("Ollama %(http://127%.0%.0%.1:1%)", r.stdout)
  end)
end)

describe("precedence: defaults < environment < file < preset < flags", function()
  teardown(support.cleanup)

  it("targets", function()
    local none = preset.load(nil, load_config())
    local plan = preset.plan(none, load_config())
    assert.are.equal(95, plan.target_score)
    assert.are.equal("built-in default", plan.origins.target_score)

    local cfg = load_config("target_score: 90\nmax_iterations: 4\n")
    plan = preset.plan(none, cfg)
    assert.are.equal(90, plan.target_score)
    assert.matches("autonomous%.yml:1$", plan.origins.target_score)

    local p = preset.define{ target_score = 80 }
    plan = preset.plan(p, cfg)
    assert.are.equal(80, plan.target_score)
    assert.matches("^preset .*preset_spec%.lua", plan.origins.target_score)
    assert.are.equal(4, plan.max_iterations)             -- the preset is silent: the file's

    plan = preset.plan(p, cfg, { target_score = 70 })
    assert.are.equal(70, plan.target_score)
    assert.are.equal("flag --target-score", plan.origins.target_score)
  end)

  it("routes, with a note when the file's route loses", function()
    local cfg = load_config("providers:\n  ollama:\n    enabled: true\n    model: qwen3:8b\n  gate_providers:\n    review: ollama\n")
    local plan = preset.plan(preset.load(nil, cfg), cfg)
    assert.are.equal("ollama", plan.routes.review.provider)
    assert.are.equal("qwen3:8b", plan.routes.review.model)
    assert.matches("autonomous%.yml:6$", plan.routes.review.origin)
    assert.are.equal("anthropic", plan.routes.build.provider)
    assert.are.equal("built-in default (providers.default)", plan.routes.build.origin)

    plan = preset.plan(preset.load("claude", cfg), cfg)
    assert.are.equal("anthropic", plan.routes.review.provider)
    assert.matches("^preset presets/claude%.lua %(default_route%)$", plan.routes.review.origin)
    assert.are.equal(1, #plan.notes)
    assert.matches("gate_providers%.review %(.*autonomous%.yml:6%) is not used: the preset's route wins", plan.notes[1].message)

    plan = preset.plan(preset.load("claude", cfg), cfg, { routes = { review = { provider = "ollama", model = "gpt-oss:20b" } } })
    assert.are.equal("ollama", plan.routes.review.provider)
    assert.are.equal("gpt-oss:20b", plan.routes.review.model)
    assert.are.equal("flag --route", plan.routes.review.origin)
  end)

  it("connection facts: the file beats the environment, the environment the defaults", function()
    local cfg = load_config(nil, {})
    assert.are.equal("http://localhost:11434", cfg.providers.ollama.base_url)
    cfg = load_config(nil, { OLLAMA_HOST = "gpu:11434" })
    assert.are.equal("http://gpu:11434", cfg.providers.ollama.base_url)
    assert.are.equal("OLLAMA_HOST", config.origin(cfg, "providers.ollama.base_url"))
    cfg = load_config("providers:\n  ollama:\n    base_url: http://box:11434\n", { OLLAMA_HOST = "gpu:11434" })
    assert.are.equal("http://box:11434", cfg.providers.ollama.base_url)
    assert.matches("^providers%.ollama%.base_url %(.*autonomous%.yml:3%)$", config.origin(cfg, "providers.ollama.base_url"))
  end)

  it("a preset model beats the config's; a route without one takes the config's, then its default_model", function()
    local p = require "presets.ollama_only"
    local plan = preset.plan(p, load_config(nil, {}))
    assert.are.equal("qwen3-coder", plan.routes.test.model)           -- default_model
    assert.are.equal("qwq:32b", plan.routes.architect.model)
    local cfg = load_config("providers:\n  ollama:\n    model: gpt-oss:20b\n")
    plan = preset.plan(p, cfg)
    assert.are.equal("gpt-oss:20b", plan.routes.test.model)           -- the config's model
    assert.are.equal("qwq:32b", plan.routes.architect.model)          -- the preset named one
  end)

  it("shows in the doctor where each route came from", function()
    local dir = support.tmpdir()
    support.write(dir .. "/.claude/autonomous.yml", "providers:\n  gate_providers:\n    review: claude\n")
    local r = support.codeassist({ "doctor", "ollama_hybrid", "--route", "ux=claude", "--json" },
      { cwd = dir, env = { OLLAMA_HOST = "127.0.0.1:1", ANTHROPIC_API_KEY = false } })
    local doc = cjson.decode(r.stdout)
    local by = {}
    for _, g in ipairs(doc.gates) do by[g.gate] = g end
    assert.are.equal("flag --route", by.ux.origin)
    assert.are.equal("preset presets/ollama_hybrid.lua", by.review.origin)
    assert.matches("gate_providers%.review %(%.claude/autonomous%.yml:3%) is not used", doc.notes[1].message)
    r = support.codeassist({ "doctor", "ollama_hybrid", "--route", "ux=claude" },
      { cwd = dir, env = { OLLAMA_HOST = "127.0.0.1:1", ANTHROPIC_API_KEY = false, NO_COLOR = "1" } })
    assert.matches("\n  ux +no +claude claude%-sonnet%-4%-5 +%-%-route ", r.stdout)
    assert.matches("\n  review +no +ollama qwen3%-coder +ollama_hybrid%.lua ", r.stdout)
    assert.matches("Notes:\n  %- gate_providers%.review", r.stdout)
  end)
end)

describe("the route hook in the doctor", function()
  teardown(support.cleanup)

  it("is asked once per gate with phase doctor, and its routes are the ones checked", function()
    local file = preset_file([[
local preset = require "codeassist.preset"
return preset.define{
  extends = "claude",
  route = function(gate, ctx)
    assert(ctx.phase == "doctor" and ctx.iteration == 0 and ctx.failures(gate) == 0)
    if gate == "ux" then return { provider = "ollama", model = "gemma3:4b" } end
  end,
}
]])
    local r = support.codeassist({ "doctor", file, "--json" }, { cwd = support.tmpdir(),
      env = { OLLAMA_HOST = "127.0.0.1:1", ANTHROPIC_API_KEY = "sk-test" } })
    local doc = cjson.decode(r.stdout)
    local by = {}
    for _, g in ipairs(doc.gates) do by[g.gate] = g end
    assert.are.equal("ollama", by.ux.provider)
    assert.are.equal("gemma3:4b", by.ux.model)
    assert.matches("^hook route%(%) in .*mine%.lua$", by.ux.origin)
    assert.are.equal("claude", by.review.provider)
  end)
end)

describe("preset.route_chain", function()
  it("walks a route and its fallbacks once each", function()
    local r = { provider = "ollama", model = "a", fallback = { provider = "ollama", model = "b",
                fallback = { provider = "anthropic", model = "c" } } }
    local seen = {}
    for route, depth in preset.route_chain(r) do seen[#seen + 1] = route.model .. depth end
    assert.are.same({ "a0", "b1", "c2" }, seen)
    seen = {}
    for route in preset.route_chain({ provider = "anthropic", model = "x" }) do seen[#seen + 1] = route.model end
    assert.are.same({ "x" }, seen)
  end)
end)

-- `codeassist init` against the simulator: the files it writes load (config.load, the preset
-- checks) and `codeassist doctor presets/mine.lua` accepts them; existing files are never
-- overwritten without --force; a server that cannot be reached, or that has few models, still
-- gets usable files and says what to run.
local support = require "support"
local fs = require "codeassist.fs"
local cjson = require "cjson"
local config = require "codeassist.config"
local preset = require "codeassist.preset"

local DEMO_MODELS = cjson.decode(fs.read(support.root .. "/examples/demo-models.json")).models
local KEY = "sk-ant-init-secret"

local function env_with(extra)
  local env = { ANTHROPIC_API_KEY = false, ANTHROPIC_AUTH_TOKEN = false, ANTHROPIC_BASE_URL = false,
                OLLAMA_HOST = false, NO_COLOR = "1" }
  for k, v in pairs(extra or {}) do env[k] = v end
  return env
end

local function codeassist(dir, argv, env)
  return support.codeassist(argv, { cwd = dir, env = env_with(env), timeout = 30 })
end

local function init(dir, args, env)
  local argv = { "init" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  return codeassist(dir, argv, env)
end

local function git_repo()
  local dir = support.tmpdir()
  assert(support.sh("git init -q", { cwd = dir }).code == 0)
  return dir
end

-- The files as the runtime reads them: the config, and the preset checked and planned.
local function load_files(dir)
  local cfg = config.load{ path = dir .. "/.claude/autonomous.yml" }
  local p = preset.load(dir .. "/presets/mine.lua", cfg)
  return cfg, p, preset.plan(p, cfg)
end

local function find(text, s) return text:find(s, 1, true) ~= nil end

describe("codeassist init", function()
  local sim, claude
  setup(function()
    sim = support.simulator()
    claude = support.simulator("--flavor anthropic --api-key " .. KEY)
  end)
  teardown(function() sim:stop(); claude:stop(); support.cleanup() end)
  before_each(function() sim:reset() end)

  it("with Ollama only, in a git repository: the setup guide's models, and the doctor accepts the files", function()
    sim:control("/_sim/models", { models = DEMO_MODELS })
    local dir = git_repo()
    local r = init(dir, {}, { OLLAMA_HOST = sim.url })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.is_true(find(r.stdout, "✓ Ollama 0.32.15 at " .. sim.url .. " (OLLAMA_HOST): 5 models"), r.stdout)
    assert.is_true(find(r.stdout, "Preset: mine extends ollama_only"), r.stdout)
    assert.is_true(find(r.stdout, "codeassist doctor presets/mine.lua"))
    assert.is_false(find(r.stdout, "not a git repository"))
    local cfg, p, plan = load_files(dir)
    assert.are.same({}, cfg.source.warnings)
    -- found through OLLAMA_HOST: the file leaves the address to it, so a later OLLAMA_HOST counts
    assert.is_true(find(fs.read(dir .. "/.claude/autonomous.yml"), "\n    # base_url: " .. sim.url .. "\n"))
    assert.are_not.equal(sim.url, cfg.providers.ollama.base_url)
    assert.is_true(cfg.providers.ollama.enabled)
    assert.are.equal("ollama", cfg.providers.default)
    assert.are.equal("qwen3-coder:latest", cfg.providers.ollama.model)
    assert.is_nil(cfg.providers.ollama.vram_gb)        -- not given: not written
    assert.are.equal("ollama_only", p.extends)
    -- the guide's gate->model mapping, as installed
    assert.are.equal("qwen2.5-coder:32b", plan.routes.build.model)
    assert.are.equal("qwq:32b", plan.routes.architect.model)
    assert.are.equal("qwen3-coder:latest", plan.routes.implement.model)
    assert.are.equal("critical", plan.routes.test.floor)
    for _, route in pairs(plan.routes) do assert.are.equal("ollama", route.provider) end

    local d = codeassist(dir, { "doctor", "presets/mine.lua" }, { OLLAMA_HOST = sim.url })
    assert.are.equal(0, d.code, d.stdout .. d.stderr)
    assert.is_true(find(d.stdout, "✓ All providers healthy"), d.stdout)
  end)

  it("hybrid with a key, in a folder that is not a git repository: writes the files and says run needs git", function()
    sim:control("/_sim/models", { models = DEMO_MODELS })
    local dir = support.tmpdir()
    local env = { ANTHROPIC_API_KEY = KEY, ANTHROPIC_BASE_URL = claude.url }
    local r = init(dir, { "--ollama", sim.url, "--vram", "24" }, env)
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.is_true(find(r.stdout, "Preset: mine extends ollama_hybrid"), r.stdout)
    assert.is_true(find(r.stdout, "is not a git repository: the doctor works, but `codeassist run` needs one (git init)"))
    assert.is_true(find(r.stdout, "\n  git init\n"))
    local text = fs.read(dir .. "/.claude/autonomous.yml") .. fs.read(dir .. "/presets/mine.lua")
    assert.is_false(find(text, KEY))                     -- a key never goes in a file
    assert.is_true(find(text, "ANTHROPIC_API_KEY"))      -- the file says where it comes from
    local cfg, p, plan = load_files(dir)
    assert.are.same({}, cfg.source.warnings)
    assert.are.equal(24, cfg.providers.ollama.vram_gb)
    assert.are.equal("claude", cfg.providers.default)
    assert.are.equal("ollama_hybrid", p.extends)
    for _, gate in ipairs{ "implement", "test", "security", "mentor" } do
      assert.are.equal("anthropic", plan.routes[gate].provider, gate)
    end
    assert.are.equal("qwen2.5-coder:32b", plan.routes.build.model)
    assert.are.equal("anthropic", plan.routes.build.fallback.provider)   -- the base's fallback kept
    assert.is_true(find(p.origins["routes.build"], "mine.lua"))
    assert.is_false(find(fs.read(dir .. "/presets/mine.lua"), "implement ="))   -- Claude gates stay the base's

    local d = codeassist(dir, { "doctor", "presets/mine.lua" }, env)
    assert.are.equal(0, d.code, d.stdout .. d.stderr)
    assert.is_true(find(d.stdout, "✓ Every required route is usable."), d.stdout)
  end)

  it("never overwrites a file without --force: exit 2, naming the files, nothing written", function()
    local dir = git_repo()
    support.write(dir .. "/.claude/autonomous.yml", "target_score: 90\n")
    local r = init(dir, { "--ollama", sim.url })
    assert.are.equal(2, r.code)
    assert.is_true(find(r.stderr, ".claude/autonomous.yml already exists in " .. dir), r.stderr)
    assert.is_true(find(r.stderr, "--force"))
    assert.are.equal("target_score: 90\n", fs.read(dir .. "/.claude/autonomous.yml"))
    assert.is_nil(fs.stat(dir .. "/presets/mine.lua"))
    assert.are.same({}, sim:log())                       -- refused before asking the server

    support.write(dir .. "/presets/mine.lua", "return {}\n")
    r = init(dir, { "--ollama", sim.url })
    assert.are.equal(2, r.code)
    assert.is_true(find(r.stderr, ".claude/autonomous.yml and presets/mine.lua already exist"), r.stderr)

    r = init(dir, { "--ollama", sim.url, "--force" })
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(find(r.stdout, ".claude/autonomous.yml (replaced: --force)"))
    assert.is_true(find(fs.read(dir .. "/presets/mine.lua"), 'extends = "ollama_only"'))
  end)

  it("writes usable files with the guide's models when the server cannot be reached, and says what to run", function()
    local closed = support.closed_port_url()
    local dir = git_repo()
    local r = init(dir, { "--ollama", closed })
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(r.duration < 5)
    assert.is_true(find(r.stdout, "✗ Ollama was not reached at " .. closed .. " (--ollama): Connection refused"), r.stdout)
    assert.is_true(find(r.stdout, "ollama serve"))
    assert.is_true(find(r.stdout, "ollama pull qwen3-coder\n"))
    assert.is_true(find(r.stdout, "ollama pull qwq:32b\n"))
    assert.is_true(find(fs.read(dir .. "/.claude/autonomous.yml"), "Not reached when this was written"))
    local cfg, _, plan = load_files(dir)
    assert.are.equal(closed, cfg.providers.ollama.base_url)
    assert.are.equal("qwen3-coder", plan.routes.implement.model)
    assert.are.equal("qwen2.5-coder:32b", plan.routes.build.model)
    assert.are.equal("qwq:32b", plan.routes.architect.model)

    -- a smaller GPU: that table's models, a tools gate never on one that cannot call tools
    local small = support.tmpdir()
    r = init(small, { "--ollama", closed, "--vram", "12", "--dry-run" })
    assert.are.equal(0, r.code, r.stderr)
    assert.is_nil(fs.stat(small .. "/presets"))          -- --dry-run writes nothing
    assert.is_true(find(r.stdout, "----- presets/mine.lua -----"))
    assert.is_true(find(r.stdout, 'build = { provider = "ollama", model = "qwen2.5-coder:14b"'), r.stdout)
    assert.is_false(find(r.stdout, 'build = { provider = "ollama", model = "codestral'))
  end)

  it("routes every gate to what a server with few models has, with the pull lines for the rest", function()
    sim:control("/_sim/models", { models = {
      { name = "llama3.2:latest", size_gb = 2.0, parameter_size = "3.2B", family = "llama",
        capabilities = { "completion", "tools" }, context_length = 131072 } } })
    local dir = git_repo()
    local r = init(dir, { "--ollama", sim.url })
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(find(r.stdout, "implement  ollama llama3.2:latest — qwen3-coder is not installed"), r.stdout)
    for _, name in ipairs{ "qwen3-coder", "qwen2.5-coder:32b", "qwq:32b", "deepseek-coder-v2:16b", "codestral:22b" } do
      assert.is_true(find(r.stdout, "  ollama pull " .. name .. "\n"), name)
    end
    local _, _, plan = load_files(dir)
    for gate, route in pairs(plan.routes) do assert.are.equal("llama3.2:latest", route.model, gate) end
    local d = codeassist(dir, { "doctor", "presets/mine.lua" })
    assert.are.equal(0, d.code, d.stdout)

    -- a model nothing can use for a tools gate: named, with the pull that fixes it
    sim:control("/_sim/models", { models = {
      { name = "gemma3:4b", size_gb = 3.3, parameter_size = "4.3B", family = "gemma3",
        capabilities = { "completion", "vision" }, context_length = 131072 } } })
    r = init(dir, { "--ollama", sim.url, "--force" })
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(find(r.stdout, "The files name models that are not installed; to complete the setup:\n"
      .. "  ollama pull qwen3-coder\n"), r.stdout)
    assert.is_true(find(fs.read(dir .. "/presets/mine.lua"), "NOT INSTALLED: nothing installed can serve it"))
  end)

  it("says what is wrong with --preset, --ollama and OLLAMA_HOST, exit 2", function()
    local dir = support.tmpdir()
    local r = init(dir, { "--preset", "ollama_hybird" })
    assert.are.equal(2, r.code)
    assert.is_true(find(r.stderr, "no built-in preset named 'ollama_hybird' — did you mean 'ollama_hybrid'?"), r.stderr)
    r = init(dir, { "--ollama", sim.url .. "/v1" })
    assert.are.equal(2, r.code)
    assert.is_true(find(r.stderr, "ends in /v1; give the server root, e.g. " .. sim.url), r.stderr)
    r = init(dir, {}, { OLLAMA_HOST = "ftp://gpu-box" })
    assert.are.equal(2, r.code)
    assert.is_true(find(r.stderr, "OLLAMA_HOST="), r.stderr)
    assert.is_nil(fs.stat(dir .. "/.claude"))
    -- --preset claude keeps Ollama off and routes nothing there
    r = init(dir, { "--preset", "claude", "--ollama", sim.url }, { ANTHROPIC_API_KEY = KEY })
    assert.are.equal(0, r.code, r.stderr)
    local cfg, p, plan = load_files(dir)
    assert.is_false(cfg.providers.ollama.enabled)
    assert.are.equal("claude", p.extends)
    for _, route in pairs(plan.routes) do assert.are.equal("anthropic", route.provider) end
  end)
end)

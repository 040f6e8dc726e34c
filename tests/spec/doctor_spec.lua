-- `codeassist doctor` against the simulator, one test per outcome. The binary runs as a child
-- process with its own config file; names like *.ts.net are pinned to 127.0.0.1 with
-- CODEASSIST_RESOLVE, so nothing leaves loopback.
local support = require "support"
local cjson = require "cjson"

local function project(yaml_text)
  local dir = support.tmpdir()
  support.write(dir .. "/.claude/autonomous.yml", yaml_text)
  return dir
end

local function ollama_config(url, extra)
  return ("providers:\n  default: ollama\n  ollama:\n    enabled: true\n    base_url: %s\n    model: qwen3-coder\n%s")
    :format(url, extra or "")
end

local function doctor(dir, args, env)
  local argv = { "doctor" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  env = env or {}
  if env.ANTHROPIC_API_KEY == nil then env.ANTHROPIC_API_KEY = false end
  env.ANTHROPIC_AUTH_TOKEN = env.ANTHROPIC_AUTH_TOKEN or false
  env.OLLAMA_HOST = env.OLLAMA_HOST or false
  env.NO_COLOR = "1"
  return support.codeassist(argv, { cwd = dir, env = env, timeout = 60 })
end

-- Routes that are all usable on the simulator, review's with a VRAM warning at 24 GB.
local WARNED_PRESET = [[
return require("codeassist.preset").define{ default_route = { provider = "ollama", model = "qwen3:8b" },
  gates = { review = { context = 131072 } },
  routes = { implement = { provider = "ollama", model = "qwen3-coder" },
             review = { provider = "ollama", model = "gpt-oss:20b" } } }
]]

local function gate_line(out, gate)
  return out:match("\n  " .. gate .. " +[^\n]*")
end

describe("codeassist doctor", function()
  local sim
  setup(function() sim = support.simulator() end)
  teardown(function() sim:stop(); support.cleanup() end)
  before_each(function() sim:reset() end)

  it("says all is healthy, in the seed's words, and exits 0", function()
    -- ollama_only maps some gates to models the simulator lacks: a preset that extends it
    -- routes them to installed ones (the preset's routes win over the config's)
    local dir = project(ollama_config(sim.url))
    support.write(dir .. "/local.lua", [[
local preset = require "codeassist.preset"
return preset.define{
  name = "local", extends = "ollama_only",
  routes = {
    build = { provider = "ollama", model = "qwen3-coder" },
    devops = { provider = "ollama", model = "qwen3-coder" },
    architect = { provider = "ollama", model = "gpt-oss:20b" },
  },
}
]])
    local r = doctor(dir, { dir .. "/local.lua" })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    for _, line in ipairs{ "✓ Server reachable", "✓ Available models: 5", "✓ Configured model: qwen3-coder",
                           "Matched: qwen3-coder:latest (30.5B)", "Capability: coding | Tier: large",
                           "✓ All providers healthy" } do
      assert.is_truthy(r.stdout:find(line, 1, true), "missing: " .. line .. "\n" .. r.stdout)
    end
    assert.matches("✓ ok", gate_line(r.stdout, "implement"))
    assert.not_matches("Claude API", r.stdout)   -- ollama_only needs no Anthropic key anywhere
  end)

  it("reports a refused connection with the systemctl hint, exit 1", function()
    local dir = project(ollama_config(sim.url))
    sim:control("/_sim/refuse", { seconds = 1 })
    local r = doctor(dir, { "ollama_only" })
    assert.are.equal(1, r.code)
    assert.matches("✗ Connection refused at " .. sim.url:gsub("%p", "%%%0"), r.stdout)
    assert.matches("systemctl status ollama", r.stdout)
    assert.matches("✗ unreachable", gate_line(r.stdout, "implement"))
    require("codeassist.task").sleep(1.2)   -- the simulator is back for the next test
  end)

  it("reports a timeout to a tailnet host with the tailscale ping hint", function()
    local port = sim:control("/_sim/silent", {}).port
    local dir = project(ollama_config(("http://gpu.tailnet.ts.net:%d"):format(port)))
    local r = doctor(dir, { "ollama_only", "--timeout", "0.3" },
      { CODEASSIST_RESOLVE = ("gpu.tailnet.ts.net:%d:127.0.0.1"):format(port) })
    assert.are.equal(1, r.code)
    assert.matches("Connection timeout to http://gpu%.tailnet%.ts%.net:%d+ %(timeout_first_byte%)", r.stdout)
    assert.matches("tailscale ping gpu%.tailnet%.ts%.net", r.stdout)
    assert.is_true(r.duration < 5)
  end)

  it("explains a base URL that ends in /v1", function()
    local dir = project(ollama_config(sim.url .. "/v1"))
    local r = doctor(dir, { "ollama_only" })
    assert.are.equal(1, r.code)
    assert.matches("ends in /v1", r.stdout)
    assert.matches("Use the server root: " .. sim.url:gsub("%p", "%%%0"), r.stdout)
    assert.are.same({}, sim:log())   -- nothing was sent to the wrong path
  end)

  it("refuses protocol: anthropic on a server older than 0.14.0", function()
    local old = support.simulator("--version 0.13.5")
    local dir = project(ollama_config(old.url, "    protocol: anthropic\n"))
    local r = doctor(dir, { "ollama_only" })
    assert.are.equal(1, r.code)
    assert.matches("Ollama 0%.13%.5 has no Anthropic%-compatible /v1/messages", r.stdout)
    assert.matches("protocol: native", r.stdout)
    old:stop()
  end)

  it("names the ollama pull line and the nearest installed names for a missing model", function()
    local dir = project(ollama_config(sim.url, "  gate_providers:\n    security: { provider: ollama, model: qwen3-codr }\n"))
    local r = doctor(dir, {})
    assert.are.equal(1, r.code)
    assert.matches("qwen3%-codr is not installed", r.stdout)
    assert.matches("→ ollama pull qwen3%-codr:latest   %(installed and close: qwen3%-coder:latest%)", r.stdout)
    assert.matches("✗ not installed", gate_line(r.stdout, "security"))
    assert.matches("✗ Some providers are unhealthy: 1 required route is not usable%.", r.stdout)
  end)

  it("refuses a model without tool calling on a gate that needs tools", function()
    local dir = project(ollama_config(sim.url, "  gate_providers:\n    implement: { provider: ollama, model: gemma3:4b }\n"))
    local r = doctor(dir, {})
    assert.are.equal(1, r.code)
    assert.matches("gemma3:4b cannot call tools, and the implement gate needs them", r.stdout)
    assert.matches("✗ no tool calling", gate_line(r.stdout, "implement"))
  end)

  it("does not fail on a measured gate's model, nor on an optional gate's while the target stays in reach", function()
    -- build and test run their commands whatever their model (it only explains a failure), as the loop does
    local dir = project(ollama_config(sim.url, "  gate_providers:\n    test: { provider: ollama, model: qwen3-codr }\n"
      .. "    ux: { provider: ollama, model: qwen3-codr }\n"))
    local r = doctor(dir, {})
    assert.are.equal(0, r.code, r.stdout)
    assert.matches("⚠ not installed %(measured anyway%)", gate_line(r.stdout, "test"))
    assert.matches("⚠ not installed %(scores 0%)", gate_line(r.stdout, "ux"))
    assert.matches("⚠ test, ux: qwen3%-codr is not installed on [^\n]* %(test — measured: it runs, but a failure will "
      .. "not be explained; ux — optional: it will score 0%)", r.stdout)
    assert.matches("✓ A run can start: every required gate is served, or measured", r.stdout)
    -- --target-score beats the preset's, as run's does
    r = doctor(dir, { "--target-score", "99" })
    assert.are.equal(1, r.code, r.stdout)
    assert.matches("Target: score 99 %(%-%-target%-score%)", r.stdout)
    assert.matches("✗ the target 99 cannot be reached: ux cannot be served and will score 0, so the best total is 95", r.stdout)
    -- with every optional gate lost the target is out of reach: the run would stop, so the doctor fails
    local all = "  gate_providers:\n"
    for _, g in ipairs{ "review", "architect", "devops", "ux" } do all = all .. "    " .. g .. ": { provider: ollama, model: nope }\n" end
    r = doctor(project(ollama_config(sim.url, all)), {})
    assert.are.equal(1, r.code, r.stdout)
    assert.matches("✗ the target 95 cannot be reached: [a-z, ]+ cannot be served and will score 0, so the best total is [%d.]+", r.stdout)
    assert.matches("✗ A run with this preset would stop before it starts", r.stdout)
  end)

  it("checks a project's own gates, and decides about them as `run` does", function()
    -- the project replaces the measured build gate with a judged one: its model now matters
    local dir = project(ollama_config(sim.url, "  gate_providers:\n    build: { provider: ollama, model: nope }\n"))
    support.write(dir .. "/.codeassist/gates/build.lua", [[
return require("codeassist.gates.common").reviewer{ penalty = { critical = 100, high = 50, medium = 10, low = 2 },
  prompt = "Judge the build files." }
]])
    support.write(dir .. "/.codeassist/gates/perf.lua", [[
return require("codeassist.gates.common").reviewer{ name = "perf", weight = 5, parallel_group = 3,
  penalty = { critical = 50, high = 20, medium = 5, low = 1 }, prompt = "You review performance." }
]])
    support.write(dir .. "/issue.md", "# Add a flag\n")
    support.sh("git init -q && git -c user.email=t@t -c user.name=t commit -q --allow-empty -m init", { cwd = dir })
    local r = doctor(dir, {})
    assert.are.equal(1, r.code, r.stdout)
    assert.matches("✗ not installed", gate_line(r.stdout, "build"))
    assert.matches("project gate perf%.lua +✓ ok", gate_line(r.stdout, "perf"))
    local run = support.codeassist({ "run", "ollama_only", "--issue-file", "issue.md", "--dry-run", "--route", "build=ollama:nope" },
      { cwd = dir, env = { NO_COLOR = "1", OLLAMA_HOST = sim.url, ANTHROPIC_API_KEY = false }, timeout = 60 })
    assert.are.equal(1, run.code, run.stdout .. run.stderr)
    assert.matches("a required route cannot be served", run.stderr)
    -- each problem is said once: the doctor's report has listed it, the preflight does not repeat it
    local _, times = (run.stdout .. run.stderr):gsub("nope is not installed", "")
    assert.are.equal(1, times, run.stdout .. run.stderr)
  end)

  it("refuses a context window too small for the gate", function()
    sim:control("/_sim/models", { models = {
      { name = "qwen3-coder:latest", size_gb = 18.6, parameter_size = "30.5B", family = "qwen3moe",
        capabilities = { "completion", "tools" }, context_length = 262144 },
      { name = "tiny-ctx:latest", size_gb = 1.0, parameter_size = "1.1B", family = "llama",
        capabilities = { "completion", "tools" }, context_length = 2048 } } })
    local dir = project(ollama_config(sim.url, "  gate_providers:\n    review: { provider: ollama, model: tiny-ctx }\n"))
    local r = doctor(dir, {})
    assert.matches("tiny%-ctx:latest's context window is 2048 tokens; the review gate needs about 32768", r.stdout)
    assert.matches("⚠ context too small %(scores 0%)", gate_line(r.stdout, "review"))
    -- review is optional, but scoring 0 it leaves 85 of 100: the run could not reach 95
    assert.are.equal(1, r.code)
    assert.matches("✗ the target 95 cannot be reached: review cannot be served and will score 0, so the best total is 85", r.stdout)
  end)

  it("warns that Ollama's /v1/messages is stuck with the window the model was loaded with", function()
    -- load qwen3:8b with a 4096-token window, as a server with OLLAMA_CONTEXT_LENGTH=4096 would
    local http = require "codeassist.http"
    assert(http.request{ url = sim.url .. "/api/chat", body = cjson.encode{ model = "qwen3:8b", stream = false,
      messages = { { role = "user", content = "x" } }, options = { num_ctx = 4096 } } }):body()
    local dir = project(ollama_config(sim.url, "    protocol: anthropic\n  gate_providers:\n    review: { provider: ollama, model: qwen3:8b }\n"))
    local r = doctor(dir, {})
    assert.matches("qwen3:8b is loaded with a 4096%-token window; the review gate needs about 32768", r.stdout)
    assert.matches("OLLAMA_CONTEXT_LENGTH=32768", r.stdout)
    assert.matches("⚠ window too small %(scores 0%)", gate_line(r.stdout, "review"))
  end)

  it("checks that models fit in VRAM, alone and per parallel group", function()
    local dir = project(ollama_config(sim.url, [[
    vram_gb: 16
  gate_providers:
    test: { provider: ollama, model: qwen3:8b }
    security: { provider: ollama, model: llama3.2 }
    build: { provider: ollama, model: qwen3:8b }
    review: { provider: ollama, model: gpt-oss:20b }
]]))
    local r = doctor(dir, {})
    assert.are.equal(1, r.code)   -- implement (qwen3-coder, 18.6 GB) cannot fit in 16 GB
    assert.matches("qwen3%-coder:latest needs about %d+%.%d GB for its weights alone; the GPU has 16 GB", r.stdout)
    assert.matches("✗ does not fit in VRAM", gate_line(r.stdout, "implement"))
    -- gpt-oss:20b's weights fit; with review's 32K context part of it runs on the CPU
    assert.matches("gpt%-oss:20b needs about %d+%.%d GB with a 32768%-token context; the GPU has 16 GB, so part of it will run on the CPU", r.stdout)
    assert.matches("⚠ partly on the CPU", gate_line(r.stdout, "review"))
    assert.matches("⚠ parallel group 1 loads llama3%.2:latest %+ qwen3:8b together", r.stdout)
  end)

  it("catches a bad Anthropic key with --probe, and only with it", function()
    local claude = support.simulator("--flavor anthropic --api-key sk-good")
    local dir = project("providers:\n  default: claude\n")
    local env = { ANTHROPIC_API_KEY = "sk-bad", ANTHROPIC_BASE_URL = claude.url }
    local r = doctor(dir, { "claude" }, env)
    assert.are.equal(0, r.code)
    r = doctor(dir, { "claude", "--probe" }, env)
    assert.are.equal(1, r.code)
    assert.matches("Probe failed: POST " .. claude.url:gsub("%p", "%%%0") .. "/v1/messages: HTTP 401: authentication_error", r.stdout)
    assert.matches("The key was refused", r.stdout)
    env.ANTHROPIC_API_KEY = "sk-good"
    r = doctor(dir, { "claude", "--probe" }, env)
    assert.are.equal(0, r.code, r.stdout)
    claude:stop()
  end)

  it("reports a missing Anthropic key for Claude routes", function()
    local dir = project("providers:\n  default: claude\n")
    local r = doctor(dir, {})
    assert.are.equal(1, r.code)
    assert.matches("✗ ANTHROPIC_API_KEY not set", r.stdout)
    assert.matches("export ANTHROPIC_API_KEY", r.stdout)
  end)

  it("checks that a tools gate really calls a tool with --probe", function()
    sim:control("/_sim/scenario", { conversations = {
      { model = "qwen3:8b", replies = { { text = "I would call the tool now." } } },
      { replies = { { tool_calls = { { name = "report_status", input = { ready = true } } } } } } } })
    local dir = project(ollama_config(sim.url, [[
  gate_providers:
    build: { provider: ollama, model: qwen3:8b }
    devops: { provider: ollama, model: qwen3-coder }
    architect: { provider: ollama, model: qwen3-coder }
]]))
    local r = doctor(dir, { "--probe" })
    assert.matches("qwen3:8b answered but did not call the tool", r.stdout)
    -- build is measured: its command runs anyway, only its failures go unexplained
    assert.matches("⚠ probe failed %(measured anyway%)", gate_line(r.stdout, "build"))
    assert.matches("✓ ok", gate_line(r.stdout, "test"))
    assert.are.equal(0, r.code, r.stdout)
  end)

  it("counts a pool as usable when one of its servers is, and warns about the dead one", function()
    local dead = support.closed_port_url()
    local dir = project(("providers:\n  default: ollama\n  ollama:\n    enabled: true\n    base_url: [%s, %s]\n"
      .. "    model: qwen3-coder\n"):format(dead, sim.url))
    local r = doctor(dir, {})
    assert.are.equal(0, r.code, r.stdout)
    assert.matches("⚠ unreachable", gate_line(r.stdout, "implement"))
    assert.matches("⚠ implement, .*: Connection refused at " .. dead:gsub("%p", "%%%0") .. " %(another server of the pool serves it%)", r.stdout)
    assert.matches("✓ Every required route is usable%.", r.stdout)
  end)

  it("probes every route with --probe, warned ones too, and shows each result", function()
    sim:control("/_sim/scenario", { conversations = {
      { replies = { { tool_calls = { { name = "report_status", input = { ready = true } } } } } } } })
    -- review's gpt-oss:20b spills to the CPU with a 128K context: a warning, still probed
    local dir = project(ollama_config(sim.url, "    vram_gb: 24\n"))
    support.write(dir .. "/p.lua", WARNED_PRESET)
    local r = doctor(dir, { dir .. "/p.lua", "--probe" })
    assert.are.equal(0, r.code, r.stdout)
    assert.matches("⚠ partly on the CPU", gate_line(r.stdout, "review"))
    assert.matches("Probes %(4 requests, one per route%):", r.stdout)
    assert.matches("✓ ollama qwen3%-coder %(tools%): called the tool", r.stdout)
    assert.matches("✓ ollama gpt%-oss:20b: answered in %d+%.%ds", r.stdout)
    assert.matches("✓ ollama qwen3:8b %(tools%): called the tool in %d+%.%ds", r.stdout)
    assert.matches("✓ ollama qwen3:8b: answered in", r.stdout)
    local chats = 0
    for _, e in ipairs(sim:log()) do if e.path == "/api/chat" then chats = chats + 1 end end
    assert.are.equal(4, chats)
  end)

  it("says 'No model configured' only when an Ollama route lacks a model", function()
    local dir = project(("providers:\n  ollama:\n    enabled: true\n    base_url: %s\n"):format(sim.url))
    local r = doctor(dir, { "ollama_hybrid" }, { ANTHROPIC_API_KEY = "sk-test" })
    assert.not_matches("No model configured", r.stdout)
    support.write(dir .. "/p.lua", [[return require("codeassist.preset").define{ routes = { review = "ollama" } }]])
    r = doctor(dir, { dir .. "/p.lua" }, { ANTHROPIC_API_KEY = "sk-test" })
    assert.matches("⚠ No model configured%. Add 'model: <name>' under providers%.ollama%.", r.stdout)
    assert.matches("⚠ no model set %(scores 0%)", gate_line(r.stdout, "review"))
  end)

  it("agrees between text and JSON on every problem's severity", function()
    local dir = project(ollama_config(sim.url, "    vram_gb: 24\n"))
    -- security cannot run (✗); build is measured, so its missing model does not stop a run (⚠)
    support.write(dir .. "/p.lua", WARNED_PRESET:gsub("routes = {", "routes = { security = { provider = 'ollama', model = 'qwq:32b' }, "
      .. "build = { provider = 'ollama', model = 'deepseek-r1:70b' },"))
    local r = doctor(dir, { dir .. "/p.lua", "--json" })
    local doc = cjson.decode(r.stdout)
    local text = doctor(dir, { dir .. "/p.lua" }).stdout
    local n = 0
    for _, g in ipairs(doc.gates) do
      for _, pr in ipairs(g.problems) do
        n = n + 1
        local stops = g.status == "fail" and g.required and not g.measured
        local mark = (pr.severity == "error" and stops) and "✗" or "⚠"
        local line = text:match("\n  ([✗⚠][^\n]*" .. pr.message:gsub("%p", "%%%0") .. ")")
        assert.is_truthy(line, pr.message)
        assert.are.equal(mark, line:sub(1, #mark), pr.message)
      end
    end
    assert.is_true(n >= 2)
    assert.are.equal(1, #doc.warnings)   -- the parallel group that cannot be loaded at once
    local warned = 0
    for _, g in ipairs(doc.gates) do
      for _, pr in ipairs(g.problems) do if pr.severity == "warning" then warned = warned + 1 end end
    end
    assert.is_true(warned >= 1, "the JSON keeps warnings")
  end)

  it("names the proxy, not Ollama, when the proxy is what fails", function()
    local proxy = support.closed_port_url()
    local dir = project(ollama_config(sim.url))
    local r = doctor(dir, { "ollama_only" }, { http_proxy = proxy, HTTP_PROXY = false, no_proxy = false, NO_PROXY = false })
    assert.are.equal(1, r.code)
    assert.matches("✗ unreachable", gate_line(r.stdout, "implement"))
    assert.matches("proxy " .. proxy:gsub("%p", "%%%0"), r.stdout)
    assert.matches("→ Check the proxy variables %(http_proxy, https_proxy%), or add this host to no_proxy", r.stdout)
    assert.not_matches("systemctl", r.stdout)
  end)

  it("says whether the agent's commands can be sandboxed, and refuses when it is required and cannot", function()
    local dir = project(ollama_config(sim.url))
    local r = doctor(dir, { "ollama_only" })
    assert.matches("Agent sandbox %(agent%.sandbox: auto%):\n  ✓ bubblewrap [%d.]+: commands run with the root read%-only", r.stdout)
    -- no bwrap on PATH: a loud warning by default, an error when required
    local empty = support.tmpdir()
    r = doctor(dir, { "ollama_only" }, { PATH = empty })
    assert.matches("⚠ bubblewrap %(bwrap%) is not installed", r.stdout)
    assert.matches("UNSANDBOXED", r.stdout)
    support.write(dir .. "/.claude/autonomous.yml", ollama_config(sim.url) .. "agent:\n  sandbox: required\n")
    r = doctor(dir, { "ollama_only", "--json" }, { PATH = empty })
    assert.are.equal(1, r.code)
    local doc = cjson.decode(r.stdout)
    assert.is_false(doc.sandbox.available)
    assert.are.equal("error", doc.sandbox.problems[1].severity)
    assert.matches("agent%.sandbox is required, so the agent will not run", doc.sandbox.problems[1].message)
  end)

  it("gives the same report as JSON", function()
    local dir = project(ollama_config(sim.url))
    local r = doctor(dir, { "ollama_only", "--json" })
    assert.are.equal(1, r.code)
    local doc = cjson.decode(r.stdout)
    assert.is_false(doc.ok)
    assert.are.equal("ollama_only", doc.preset)
    local build
    for _, g in ipairs(doc.gates) do if g.gate == "build" then build = g end end
    assert.are.equal("installed", build.problems[1].check)
    assert.are.equal(5, #doc.servers[1].models)
    assert.is_true(r.stdout:find('"problems":[]', 1, true) ~= nil)   -- empty lists stay lists
  end)

  it("is reachable as test-provider and as run PRESET --test-provider", function()
    local dir = project(ollama_config(sim.url))
    local r = support.codeassist({ "test-provider", "ollama_only" }, { cwd = dir, env = { NO_COLOR = "1" } })
    assert.are.equal(1, r.code)
    assert.matches("Gates:", r.stdout)
    r = support.codeassist({ "run", support.root .. "/presets/ollama_only.lua", "--test-provider" },
      { cwd = dir, env = { NO_COLOR = "1" } })
    assert.are.equal(1, r.code)
    assert.matches("preset .*ollama_only", r.stdout)
    assert.matches("qwen2%.5%-coder:32b is not installed", r.stdout)
  end)
end)

describe("codeassist doctor and config errors", function()
  it("reports config errors with line and column, exit 2", function()
    local dir = project([[
target_score: 150
providers:
  default: claud
  ollama:
    enabled: true
    base_url: localhost:11434
gates:
  review:
    wieght: 10
]])
    local r = support.codeassist({ "doctor" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("%.claude/autonomous%.yml:1:1: target_score: must be between 0 and 100, found 150", r.stderr)
    assert.matches("autonomous%.yml:3:3: providers%.default: 'claud' is not one of claude, anthropic, ollama — did you mean 'claude'%?", r.stderr)
    assert.matches("autonomous%.yml:6:5: providers%.ollama%.base_url: expected an http:// or https:// address", r.stderr)
    assert.matches("warning: [^\n]*autonomous%.yml:9:5: gates%.review%.wieght: unknown key — did you mean 'weight'%?", r.stderr)
    support.cleanup()
  end)

  it("reports a YAML syntax error with its position", function()
    local dir = project("providers:\n  default: claude\n\tollama: {}\n")
    local r = support.codeassist({ "doctor" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("autonomous%.yml:3:1: tab character used for indentation", r.stderr)
    support.cleanup()
  end)

  it("says which built-in preset was meant", function()
    local dir = project("{}\n")
    local r = support.codeassist({ "doctor", "olama_only" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("no built%-in preset named 'olama_only' — did you mean 'ollama_only'%?", r.stderr)
    support.cleanup()
  end)
end)

describe("codeassist models", function()
  local sim
  setup(function() sim = support.simulator() end)
  teardown(function() sim:stop(); support.cleanup() end)

  local function models(dir, args)
    local argv = { "models" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return support.codeassist(argv, { cwd = dir, env = { NO_COLOR = "1", OLLAMA_HOST = false } })
  end

  it("lists the server's models and the recommendations for the GPU, with pull lines", function()
    local dir = project(ollama_config(sim.url))
    local r = models(dir, { "--vram", "24" })
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("Ollama at " .. sim.url:gsub("%p", "%%%0") .. ": 5 models", r.stdout)
    assert.matches("qwen3%-coder:latest +30%.5B +18%.6GB +coding +large", r.stdout)
    assert.matches("Recommended for 24GB of VRAM %(%-%-vram%) — RTX 3090 / RTX 4090 %(24GB%)", r.stdout)
    assert.matches("✓ qwen3%-coder +18GB VRAM +Agentic coding, 256K context +%(installed as qwen3%-coder:latest, 18%.6GB on disk%)", r.stdout)
    assert.matches("ollama pull qwq:32b", r.stdout)
    r = models(dir, { "--vram", "8" })
    assert.matches("RTX 3070 / Consumer %(8GB%)", r.stdout)
    assert.matches("ollama pull qwen2%.5%-coder:7b", r.stdout)
  end)

  it("reads vram_gb from the config when --vram is not given", function()
    local dir = project(ollama_config(sim.url, "    vram_gb: 12\n"))
    local r = models(dir, {})
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("Recommended for 12GB of VRAM %(providers%.ollama%.vram_gb%) — RTX 3080 / RTX 4080", r.stdout)
  end)

  it("says nothing about pulls when the server is down, and exits 1", function()
    local dir = project(ollama_config(support.closed_port_url()))
    local r = models(dir, { "--vram", "24" })
    assert.are.equal(1, r.code)
    assert.matches("Could not list models at http://127%.0%.0%.1:%d+: GET .*connect", r.stdout)
    assert.matches("→ Is Ollama running there%? Check with `systemctl status ollama`", r.stdout)
    assert.not_matches("ollama pull", r.stdout)
    assert.not_matches("✓", r.stdout)
    assert.matches("could not be asked what is installed", r.stdout)
  end)

  it("gives the same as JSON", function()
    local dir = project(ollama_config(sim.url))
    local r = models(dir, { "--vram", "24", "--json" })
    assert.are.equal(0, r.code, r.stderr)
    local doc = cjson.decode(r.stdout)
    assert.is_true(doc.reachable)
    assert.are.equal(5, #doc.models)
    assert.are.equal(24, doc.vram_gb)
    assert.are.equal("qwen3-coder:latest", doc.recommended[1].installed)
    local pulls = {}
    for _, n in ipairs(doc.pulls) do pulls[n] = true end
    assert.is_true(pulls["qwq:32b"])
    assert.is_nil(pulls["qwen3-coder"])
  end)
end)

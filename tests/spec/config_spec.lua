-- .claude/autonomous.yml and the environment: every value checked, errors with positions,
-- unknown names warned with a did-you-mean, nothing from the environment crashes later.
local support = require "support"
local config = require "codeassist.config"

local function load_text(text, env)
  local path = support.write(support.tmpdir() .. "/autonomous.yml", text)
  return config.load{ path = path, env = function(k) return (env or {})[k] end }
end

local function load_error(text, env)
  local ok, err = pcall(load_text, text, env)
  assert.is_false(ok, "expected a config error")
  assert.are.equal("config", err.kind)
  assert.are.equal(2, err.code)
  return err.message
end

describe("config validation", function()
  teardown(support.cleanup)

  it("warns about unknown gate names in gates and gate_providers, with a did-you-mean", function()
    local cfg = load_text("gates:\n  architcet:\n    weight: 5\nproviders:\n  gate_providers:\n    reveiw: claude\n    implement: claude\n")
    local w = table.concat(cfg.source.warnings, "\n")
    assert.matches("autonomous%.yml:2:3: gates%.architcet: unknown gate 'architcet' — did you mean 'architect'%?", w)
    assert.matches("autonomous%.yml:6:5: providers%.gate_providers%.reveiw: unknown gate 'reveiw' — did you mean 'review'%?", w)
    assert.not_matches("'implement'", w)   -- the agent is routed like a gate
  end)

  it("names a NaN in a list that must not repeat, rather than failing on it (a fuzzer's find)", function()
    local message = load_error("providers:\n  ollama:\n    base_url: [.nan, .nan]\n")
    assert.matches("providers%.ollama%.base_url%[1%]", message)
  end)

  it("names the bad value of a route's field, not the route's shape", function()
    local msg = load_error("providers:\n  gate_providers:\n    review:\n      provider: ollama\n      floor: best\n")
    assert.matches("autonomous%.yml:5:7: providers%.gate_providers%.review%.floor: 'best' is not one of critical, degradable", msg)
    assert.not_matches("found a mapping", msg)
    msg = load_error("providers:\n  gate_providers:\n    review: olama\n")
    assert.matches("providers%.gate_providers%.review: 'olama' is not one of claude, anthropic, ollama — did you mean 'ollama'%?", msg)
    msg = load_error("providers:\n  gate_providers:\n    review: 5\n")
    assert.matches("providers%.gate_providers%.review: expected one of claude, anthropic, ollama or a mapping, found a number %(5%)", msg)
  end)

  it("takes model call deadlines and the answer cap, and refuses ones that would mean no limit", function()
    local cfg = load_text("timeouts:\n  total: 60\nlimits:\n  max_answer_bytes: 1048576\ngates:\n  review:\n    call_timeout: 30\n")
    assert.are.same({ connect = 10, first_byte = 900, idle = 180, total = 60 }, cfg.timeouts)
    assert.are.equal(1048576, cfg.limits.max_answer_bytes)
    assert.are.equal(30, cfg.gates.review.call_timeout)
    assert.matches("timeouts%.total: must be between 0%.1 and 604800, found 0",
      load_error("timeouts:\n  total: 0\n"))
    assert.matches("timeouts%.idle: expected a number", load_error("timeouts:\n  idle: .nan\n"))
    assert.matches("limits%.max_answer_bytes: ", load_error("limits:\n  max_answer_bytes: -1\n"))
    assert.matches("gates%.review%.call_timeout: ", load_error("gates:\n  review:\n    call_timeout: .inf\n"))
  end)

  it("lists every error at once, in file order, with warnings after them", function()
    local msg = load_error("target_score: 150\nmax_iterations: x\ntypo_key: 1\n")
    assert.matches("has 2 problems:\n  .-:1:1: target_score: must be between 0 and 100, found 150\n  .-:2:1: max_iterations: expected a whole number, found a string %(\"x\"%)\n  warning: .-:3:1: typo_key: unknown key", msg)
  end)
end)

describe("the environment", function()
  teardown(support.cleanup)

  it("reads OLLAMA_HOST as Ollama's own client does", function()
    local cases = {
      { "gpu", "http://gpu:11434" },
      { "gpu:8080", "http://gpu:8080" },
      { "http://gpu", "http://gpu:80" },
      { "https://gpu", "https://gpu:443" },
      { "http://gpu:11434/", "http://gpu:11434" },
      { "0.0.0.0", "http://127.0.0.1:11434" },
      { ":11434", "http://127.0.0.1:11434" },
      { "[::1]:11434", "http://[::1]:11434" },
      { " gpu.tailnet.ts.net:11434 ", "http://gpu.tailnet.ts.net:11434" },
      { "http://localhost:11434/v1", "http://localhost:11434/v1" },   -- kept, for the doctor to explain
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], (config.ollama_host_url(c[1])), c[1])
    end
    local url, why = config.ollama_host_url("ftp://gpu")
    assert.is_nil(url)
    assert.matches("scheme ftp://", why)
    url, why = config.ollama_host_url("gpu:99999")
    assert.is_nil(url)
    assert.matches("port 99999 is out of range", why)
  end)

  it("refuses values that cannot work, naming the variable", function()
    local msg = load_error("{}\n", { ANTHROPIC_BASE_URL = "api.anthropic.com", OLLAMA_HOST = "ftp://x" })
    assert.matches("the environment has 2 problems:", msg)
    assert.matches("OLLAMA_HOST='ftp://x' has the scheme ftp://", msg)
    assert.matches("ANTHROPIC_BASE_URL='api%.anthropic%.com' is not an http:// or https:// address %(e%.g%. ANTHROPIC_BASE_URL=https://api%.anthropic%.com%)", msg)
  end)

  it("is a clear error from the binary, never an internal one", function()
    local dir = support.tmpdir()
    local r = support.codeassist({ "doctor", "claude", "--probe" }, { cwd = dir,
      env = { ANTHROPIC_BASE_URL = "api.anthropic.com", ANTHROPIC_API_KEY = "sk-test", NO_COLOR = "1" } })
    assert.are.equal(2, r.code, r.stderr)
    assert.matches("ANTHROPIC_BASE_URL='api%.anthropic%.com' is not an http", r.stderr)
  end)

  it("an OLLAMA_HOST ending in /v1 is explained by the doctor, and nothing is sent to it", function()
    local sim = support.simulator()
    local dir = support.tmpdir()
    local r = support.codeassist({ "doctor", "ollama_only" }, { cwd = dir,
      env = { OLLAMA_HOST = sim.url .. "/v1", NO_COLOR = "1" } })
    assert.are.equal(1, r.code)
    assert.matches("OLLAMA_HOST ends in /v1; requests would go to " .. (sim.url .. "/v1"):gsub("%p", "%%%0"), r.stdout)
    assert.matches("Use the server root: " .. sim.url:gsub("%p", "%%%0"), r.stdout)
    assert.are.equal(0, #sim:log())
    sim:stop()
  end)
end)

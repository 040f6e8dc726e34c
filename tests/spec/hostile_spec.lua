-- Hostile servers (issue 13), played by the simulator's hostile faults: every one ends with
-- the right kind and a clear message, within its deadline (the wall time is asserted), in
-- bounded memory, never with exit 3, and nothing it sends reaches the terminal raw. Model
-- calls run in a child `codeassist run` (so a crash would show as exit 3), with the deadlines
-- and caps of a real config file; the doctor and `models` run as commands.
local support = require "support"
local clock = require "codeassist.clock"
local cjson = require "cjson"

-- One model call: `codeassist run call.lua PROVIDER CONFIG [GATE]` prints its outcome as JSON.
-- With GATE the call goes through the router as that gate's (its call_timeout applies).
local CALL = [[
local config = require "codeassist.config"
local providers = require "codeassist.providers"
local router = require "codeassist.router"
local clock = require "codeassist.clock"
local cjson = require "cjson"
local provider, path, gate = ...
local cfg = config.load{ path = path }
local route = { provider = provider, model = provider == "ollama" and "qwen3:8b" or "claude-sonnet-4-5" }
local req = { max_tokens = 50, messages = { { role = "user", content = "hi" } } }
local t0 = clock.monotonic()
local msg, err
if gate then
  local r = router.new{ cfg = cfg, plan = { routes = {}, gates = cfg.gates }, retry = { attempts = 1 } }
  msg, err = r:call_route(route, req, { gate = gate })
else
  msg, err = providers.complete(cfg, route, req)
end
local text = {}
for _, b in ipairs(msg and msg.content or {}) do if b.type == "text" then text[#text + 1] = b.text end end
local status = io.open("/proc/self/status"):read("*a")
print(cjson.encode{ ok = msg ~= nil, kind = err and err.kind, message = err and err.message,
  status = err and err.status, text = table.concat(text), seconds = clock.monotonic() - t0,
  peak_mb = tonumber(status:match("VmHWM:%s*(%d+)")) / 1024 })
]]

local ESC = "\27]2;PWNED\7\27[2J\27[31mRED"
local SIM_TEXT = "Hello! This is the codeassist model simulator, streaming a reply token by token."

local function sse(name, data) return ("event: %s\ndata: %s\n\n"):format(name, data) end
local START = sse("message_start", '{"type":"message_start","message":{"id":"m1","model":"m","usage":{"input_tokens":1}}}')
local BLOCK = sse("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}')
local DELTA = sse("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}')

local function raw(text) return not text:find("[\27\7]") end   -- no escape sequence, no bell

describe("hostile servers", function()
  local sim, claude, dir
  setup(function()
    sim = support.simulator()
    claude = support.simulator("--flavor anthropic")
    dir = support.tmpdir()
    support.write(dir .. "/call.lua", CALL)
  end)
  teardown(function() sim:stop(); claude:stop(); support.cleanup() end)
  before_each(function() sim:reset(); claude:reset() end)

  -- A config file for the call: both providers on the simulators, plus extra YAML.
  local function config_file(extra)
    local path = dir .. "/config-" .. tostring(math.random(1e9)) .. ".yml"
    support.write(path, ("providers:\n  ollama:\n    enabled: true\n    base_url: %s\n  anthropic:\n    base_url: %s\n%s")
      :format(sim.url, claude.url, extra or ""))
    return path
  end

  local ENV = { ANTHROPIC_API_KEY = "sk-ant-hostile-test-key", ANTHROPIC_AUTH_TOKEN = false, OLLAMA_HOST = false,
                ANTHROPIC_BASE_URL = false, NO_COLOR = "1" }

  -- The call's outcome, the child's exit code and its wall time.
  local function call(provider, extra, gate, env)
    local started = clock.monotonic()
    local r = support.codeassist({ "run", dir .. "/call.lua", provider, config_file(extra), gate },
      { env = env or ENV, timeout = 60 })
    local wall = clock.monotonic() - started
    assert.are_not.equal(3, r.code, r.stderr)
    assert.are.equal(0, r.code, r.stderr)
    return cjson.decode(r.stdout), wall
  end

  local function command(args, extra, env)
    local project = support.tmpdir()
    support.write(project .. "/.claude/autonomous.yml", ("providers:\n  default: ollama\n  ollama:\n    enabled: true\n"
      .. "    base_url: %s\n    model: qwen3-coder\n%s"):format(sim.url, extra or ""))
    local started = clock.monotonic()
    local r = support.codeassist(args, { cwd = project, env = env or ENV, timeout = 60 })
    assert.are_not.equal(3, r.code, r.stderr)
    return r, clock.monotonic() - started
  end

  describe("deadlines", function()
    it("a stream of nothing but keep-alives ends at timeouts.total (+1 s)", function()
      claude:fault{ kind = "comments", interval = 0.05 }
      local out, wall = call("anthropic", "timeouts:\n  total: 2\n")
      assert.are.equal("timeout_total", out.kind)
      assert.matches("/v1/messages: no complete response within 2 s %(timeout%.total%)$", out.message)
      assert.is_true(out.seconds >= 1.9 and out.seconds < 3, out.seconds)
      assert.is_true(wall < 5, wall)
      -- NDJSON's keep-alive: blank lines
      sim:fault{ match = { path = "/api/chat" }, kind = "comments", interval = 0.05 }
      out = call("ollama", "timeouts:\n  total: 2\n")
      assert.are.equal("timeout_total", out.kind)
      assert.is_true(out.seconds < 3, out.seconds)
    end)

    it("one byte a second ends at timeouts.total (+1 s), on both protocols", function()
      sim:fault{ match = { path = "/api/chat" }, kind = "trickle", seconds = 1 }
      local out = call("ollama", "timeouts:\n  total: 2\n")
      assert.are.equal("timeout_total", out.kind)
      assert.matches("/api/chat: no complete response within 2 s %(timeout%.total%)$", out.message)
      assert.is_true(out.seconds < 3, out.seconds)
      claude:fault{ kind = "trickle", seconds = 1 }
      out = call("anthropic", "timeouts:\n  total: 2\n")
      assert.are.equal("timeout_total", out.kind)
      assert.is_true(out.seconds < 3, out.seconds)
    end)

    it("every call has a total deadline by default, and a gate's call_timeout beats it", function()
      local providers = require "codeassist.providers"
      local config = require "codeassist.config"
      local t = providers.timeouts(config.defaults())
      assert.are.same({ connect = 10, first_byte = 900, idle = 180, total = 1800 }, t)
      assert.are.equal(7, providers.timeouts(config.defaults(), 7).total)
      assert.are.equal(64 * 1024 * 1024, providers.max_answer_bytes(config.defaults()))
      claude:fault{ kind = "comments" }
      local out = call("anthropic", "timeouts:\n  total: 30\ngates:\n  review:\n    call_timeout: 1\n", "review")
      assert.are.equal("timeout_total", out.kind)
      assert.matches("within 1 s %(timeout%.total%)", out.message)
      assert.is_true(out.seconds < 2, out.seconds)
    end)

    it("doctor --probe --timeout 5 against a server sending a byte a second ends within 10 s", function()
      sim:fault{ match = { path = "/api/chat" }, times = 20, kind = "trickle", seconds = 1 }
      local r, wall = command{ "doctor", "--probe", "--timeout", "5" }
      assert.are.equal(1, r.code, r.stderr)
      assert.is_true(wall < 10, wall)
      assert.matches("Probe failed: POST [^\n]*/api/chat: no complete response within 5 s %(timeout%.total%)", r.stdout)
      assert.matches("larger %-%-probe%-timeout", r.stdout)
      -- every answer a byte a second: the first check gives up at 1.5 x --timeout
      sim:reset()
      sim:fault{ times = 20, kind = "trickle", seconds = 1 }
      r, wall = command{ "doctor", "--probe", "--timeout", "2" }
      assert.are.equal(1, r.code, r.stderr)
      assert.is_true(wall < 5, wall)
      assert.matches("answers too slowly: GET [^\n]*/api/version: no complete response within 3 s %(timeout%.total%)", r.stdout)
    end)
  end)

  describe("size", function()
    it("an answer that never ends stops at limits.max_answer_bytes, in bounded memory", function()
      claude:fault{ kind = "endless", bytes = 4000 }
      local out, wall = call("anthropic", "limits:\n  max_answer_bytes: 1048576\n")
      assert.are.equal("too_large", out.kind)
      assert.matches("/v1/messages: a streamed answer larger than the limit of 1048576 bytes %(limits%.max_answer_bytes%)$",
        out.message)
      assert.is_true(wall < 10, wall)
      assert.is_true(out.peak_mb < 64, out.peak_mb)
      sim:fault{ match = { path = "/api/chat" }, kind = "endless", bytes = 4000 }
      out = call("ollama", "limits:\n  max_answer_bytes: 1048576\n")
      assert.are.equal("too_large", out.kind)
      assert.matches("/api/chat: a streamed answer larger than the limit of 1048576 bytes %(limits%.max_answer_bytes%)$",
        out.message)
      assert.is_true(out.peak_mb < 64, out.peak_mb)
    end)
  end)

  describe("what gets printed", function()
    it("escape sequences in an error body never reach the terminal", function()
      -- raw bytes in a plain-text body, and JSON-escaped ones in Ollama's error shape
      sim:fault{ match = { path = "/api/chat" }, kind = "status", status = 500, content_type = "text/plain",
                 raw_body = "boom " .. ESC }
      local out = call("ollama")
      assert.are.equal("http", out.kind)
      assert.matches("HTTP 500: boom %?%]2;PWNED%?%?%[2J%?%[31mRED$", out.message)
      sim:fault{ match = { path = "/api/tags" }, kind = "status", status = 500, body = { error = "boom " .. ESC } }
      local r = command{ "models" }
      assert.are.equal(1, r.code)
      assert.matches("Could not list models at [^\n]*HTTP 500: boom %?%]2;PWNED", r.stdout)
      assert.is_true(raw(r.stdout .. r.stderr))
      sim:fault{ match = { path = "/api/chat" }, times = 10, kind = "status", status = 400, body = { error = "boom " .. ESC } }
      r = command{ "doctor", "--probe" }
      assert.are.equal(1, r.code)
      assert.matches("Probe failed: [^\n]*HTTP 400: boom %?%]2;PWNED", r.stdout)
      assert.is_true(raw(r.stdout .. r.stderr))
    end)

    it("a model name with escape sequences is shown clean by models and doctor, text and JSON", function()
      local tags = { models = {
        { name = "evil" .. ESC .. ":latest", size = 1e9, details = { parameter_size = "7B" .. ESC, family = "llama" } },
        { name = "qwen3-coder:latest", size = 18.6 * 2 ^ 30, details = { parameter_size = "30.5B", family = "qwen3moe" } } } }
      sim:fault{ match = { path = "/api/tags" }, times = 4, kind = "status", status = 200, body = tags }
      for _, args in ipairs{ { "models" }, { "models", "--json" }, { "doctor" }, { "doctor", "--json" } } do
        local r = command(args)
        assert.are.equal(0, r.code, table.concat(args, " ") .. ": " .. r.stdout .. r.stderr)
        assert.is_true(raw(r.stdout .. r.stderr), table.concat(args, " "))
        assert.matches("evil%?%]2;PWNED%?%?%[2J%?%[31mRED:latest", r.stdout)
      end
    end)
  end)

  describe("wrong types", function()
    it("in /api/tags: a warning naming the field, the size unknown, never nanGB, and --json still valid", function()
      local good = { name = "qwen3-coder:latest", size = 19990000000, details = { parameter_size = "30.5B" } }
      local cases = {
        { body = { models = { { name = "qwen3-coder:latest", size = "big" } } }, said = 'models%[1%]%.size is "big", expected a number of bytes' },
        { raw = '{"models":[{"name":"qwen3-coder:latest","size":NaN}]}', said = "models%[1%]%.size is NaN" },
        { raw = '{"models":[{"name":"qwen3-coder:latest","size":-5000000000000000000}]}', said = "models%[1%]%.size is %-5e%+18" },
        { raw = '{"models":[{"name":"qwen3-coder:latest","size":Infinity}]}', said = "models%[1%]%.size is Infinity" },
        { body = { models = { 42, { size = 5 }, { name = {} }, good } },
          said = "models%[1%] is 42, expected an object\n.*models%[2%] has no name\n.*models%[3%]%.name is an empty object" },
      }
      for _, case in ipairs(cases) do
        local fault = { match = { path = "/api/tags" }, times = 4, kind = "status", status = 200, body = case.body,
                        raw_body = case.raw }
        sim:fault(fault)
        local r = command{ "models" }
        assert.are.equal(0, r.code, r.stdout .. r.stderr)
        assert.matches("⚠ /api/tags: " .. case.said, r.stdout)
        assert.matches("\n  qwen3%-coder:latest +[?%d.]+B? +[?%d.]+GB", r.stdout)
        assert.not_matches("nanGB", r.stdout)
        assert.not_matches("infGB", r.stdout)
        assert.not_matches("%-%d+[%d.]*GB", r.stdout)
        r = command{ "doctor" }
        assert.matches("⚠ /api/tags: " .. case.said, r.stdout)
        assert.not_matches("nanGB", r.stdout)
        r = command{ "doctor", "--json" }
        assert.are_not.equal(3, r.code)
        local doc = cjson.decode(r.stdout)
        assert.matches("/api/tags: ", doc.servers[1].problems[1].message)
        assert.are.equal("warning", doc.servers[1].problems[1].severity)
        r = command{ "init", "--dry-run", "--ollama", sim.url }
        assert.are.equal(0, r.code, r.stdout .. r.stderr)
        assert.matches("⚠ /api/tags: " .. case.said, r.stdout)
      end
      -- a list that is not one: the models cannot be listed at all
      sim:fault{ match = { path = "/api/tags" }, kind = "status", status = 200, body = { models = "lots" } }
      local r = command{ "models" }
      assert.are.equal(1, r.code)
      assert.matches('/api/tags: models is "lots", expected a list', r.stdout)
    end)

    it("in an SSE stream: a protocol failure naming the event and field; an odd error event names no Lua value", function()
      local cases = {
        { { START, sse("error", '{"type":"error","error":{"type":{},"message":{}}}') }, "stream_error",
          '^the server reported error: {"type":"error"' },
        { { START, sse("content_block_start", '{"type":"content_block_start","index":NaN,"content_block":{"type":"text"}}') },
          "protocol", "^a content_block_start event's index is NaN, expected a whole number from 0$" },
        { { START, BLOCK, sse("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":42}}') },
          "protocol", "^a content_block_delta event's delta%.text is 42, expected a string$" },
        { { START, BLOCK, sse("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}}') },
          "protocol", "^a content_block_delta event's delta%.text is missing, expected a string$" },
        { { START, BLOCK, DELTA, sse("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}') },
          "protocol", "^an input_json_delta that is not part of a tool call's input" },
        { { START, BLOCK, DELTA, sse("message_delta", '{"type":"message_delta","delta":{"stop_reason":7}}') },
          "protocol", "^a message_delta event's delta%.stop_reason is 7, expected a string$" },
        { { START, BLOCK, DELTA, sse("message_delta", '{"type":"message_delta","delta":{},"usage":{"output_tokens":"many"}}') },
          "protocol", '^a message_delta event\'s usage%.output_tokens is "many", expected a number of tokens$' },
        { { sse("message_start", '{"type":"message_start","message":"hi"}') },
          "protocol", '^a message_start event\'s message is "hi", expected an object$' },
      }
      for _, case in ipairs(cases) do
        claude:fault{ kind = "frames", frames = case[1] }
        local out = call("anthropic")
        assert.are.equal(case[2], out.kind, out.message)
        assert.matches(case[3], out.message)
        assert.not_matches("table: 0x", out.message)
      end
    end)

    it("in an NDJSON stream: null, NaN and strings for numbers are protocol failures naming the field", function()
      local cases = {
        { { "null\n" }, "^a line of the stream is not a JSON object: null$" },
        { { '{"message":{"content":"hi"},"done":true,"eval_count":"abc"}\n' },
          '^a line of the stream: eval_count is "abc", expected a number >= 0$' },
        { { '{"message":{"content":"hi"},"done":true,"total_duration":NaN}\n' },
          "^a line of the stream: total_duration is NaN, expected a number >= 0$" },
        { { '{"message":{"content":"hi","tool_calls":[{"function":{"name":{}}}]},"done":true}\n' },
          "^a line of the stream: message%.tool_calls%[1%]%.function%.name is an empty object, expected a string$" },
        { { '{"message":"hi","done":true}\n' }, '^a line of the stream: message is "hi", expected an object$' },
      }
      for _, case in ipairs(cases) do
        sim:fault{ match = { path = "/api/chat" }, kind = "frames", frames = case[1] }
        local out = call("ollama")
        assert.are.equal("protocol", out.kind, out.message)
        assert.matches(case[2], out.message)
        assert.not_matches("userdata", out.message)
      end
    end)
  end)

  describe("encodings and redirects", function()
    it("a gzip-encoded answer is decoded: SSE, NDJSON and /api/tags", function()
      claude:fault{ kind = "gzip" }
      local out = call("anthropic")
      assert.is_true(out.ok, out.message)
      assert.are.equal(SIM_TEXT, out.text)
      sim:fault{ match = { path = "/api/chat" }, kind = "gzip" }
      out = call("ollama")
      assert.is_true(out.ok, out.message)
      assert.are.equal(SIM_TEXT, out.text)
      sim:fault{ match = { path = "/api/tags" }, kind = "gzip" }
      local r = command{ "models" }
      assert.are.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("Ollama at [^\n]*: 5 models", r.stdout)
    end)

    it("a redirect to another host is reported with its Location, never followed, and the key never leaves", function()
      local evil = support.simulator("--flavor anthropic")
      local env = {}
      for k, v in pairs(ENV) do env[k] = v end
      -- were the redirect followed, evil.test would reach the second simulator (still loopback)
      env.CODEASSIST_RESOLVE = ("evil.test:%d:127.0.0.1"):format(evil.port)
      local location = ("http://evil.test:%d/v1/messages"):format(evil.port)
      claude:fault{ kind = "redirect", location = location }
      local out, wall = call("anthropic", nil, nil, env)
      assert.are.equal("http", out.kind)
      assert.are.equal(302, out.status)
      assert.are.equal(("POST %s/v1/messages: HTTP 302 redirect to %s — codeassist does not follow redirects "
        .. "(set base_url to the final address)"):format(claude.url, location), out.message)
      assert.is_true(wall < 5, wall)
      assert.are.equal(1, #claude:log())
      assert.are.equal("sk-ant-hostile-test-key", claude:log()[1].headers["x-api-key"])   -- its own host only
      -- a 307 on Ollama's side, seen by `models` and the doctor
      sim:fault{ match = { path = "/api/tags" }, kind = "redirect", status = 307, location = "http://evil.test:1/api/tags" }
      local r = command({ "models" }, nil, env)
      assert.are.equal(1, r.code)
      assert.matches("HTTP 307 redirect to http://evil%.test:1/api/tags — codeassist does not follow redirects", r.stdout)
      sim:fault{ match = { path = "/api/version" }, kind = "redirect", location = "https://evil.test:1/" }
      r = command({ "doctor" }, nil, env)
      assert.are.equal(1, r.code)
      assert.matches("answered HTTP 302: a redirect to https://evil%.test:1/, which codeassist does not follow", r.stdout)
      assert.matches("Set base_url [^\n]* to the final address", r.stdout)
      assert.are.equal(0, #evil:log())
      evil:stop()
    end)
  end)
end)

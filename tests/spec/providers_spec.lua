-- Provider adapters against the simulator: one internal message format out of Anthropic's
-- SSE, Ollama's NDJSON and Ollama's /v1/messages; incomplete streams are errors; pools fail
-- over; secrets go only to their own host.
local providers = require "codeassist.providers"
local config = require "codeassist.config"
local anthropic = require "codeassist.providers.anthropic"
local ollama = require "codeassist.providers.ollama"
local support = require "support"
local cjson = require "cjson"

local function cfg_for(ollama_url, claude_url)
  local cfg = config.defaults()
  cfg.providers.ollama.enabled = true
  cfg.providers.ollama.base_url = ollama_url
  if claude_url then
    cfg.providers.anthropic.base_url = claude_url
    cfg.providers.anthropic.api_key = "sk-ant-secret-123"
  end
  return cfg
end

local TOOL = { name = "read_file", description = "Read a file",
               input_schema = { type = "object", properties = { path = { type = "string" } }, required = { "path" } } }
local function ask(text, extra)
  local req = { max_tokens = 200, messages = { { role = "user", content = text } } }
  for k, v in pairs(extra or {}) do req[k] = v end
  return req
end

local function blocks_of(msg, kind)
  local out = {}
  for _, b in ipairs(msg.content) do if b.type == kind then out[#out + 1] = b end end
  return out
end

describe("providers", function()
  local sim, claude
  setup(function()
    sim = support.simulator()
    claude = support.simulator("--flavor anthropic --api-key sk-ant-secret-123")
  end)
  teardown(function() sim:stop(); claude:stop(); support.cleanup() end)
  before_each(function() sim:reset(); claude:reset() end)

  local script = { conversations = { { replies = {
    { thinking = "I should read it.", text = "Reading.", tool_calls = { { name = "read_file", input = { path = "src/main.c" } } } },
  } } } }

  it("anthropic: accumulates text, thinking with its signature, tool input and usage", function()
    claude:control("/_sim/scenario", script)
    local cfg = cfg_for(sim.url, claude.url)
    local msg = assert(providers.complete(cfg, { provider = "anthropic", model = "claude-sonnet-4-5" },
      ask("go", { tools = { TOOL }, thinking = 1024 })))
    assert.are.equal("tool_use", msg.stop_reason)
    assert.are.equal("I should read it.", blocks_of(msg, "thinking")[1].thinking)
    assert.matches("^EqQB", blocks_of(msg, "thinking")[1].signature)
    assert.are.equal("Reading.", blocks_of(msg, "text")[1].text)
    local call = blocks_of(msg, "tool_use")[1]
    assert.are.same({ path = "src/main.c" }, call.input)   -- joined from fragments
    assert.matches("^toolu_", call.id)
    assert.is_true(msg.usage.output_tokens > 0)
    assert.are.equal(0, msg.usage.cache_read_input_tokens)
    assert.matches("^req_", msg.request_id)
    assert.are.equal("49", msg.rate_limits["requests-remaining"])   -- named without the prefix
    local sent = claude:log()[1]
    assert.are.equal("2023-06-01", sent.headers["anthropic-version"])
    assert.are.equal(1024, sent.body.thinking.budget_tokens)
  end)

  it("anthropic: replays real captures, keeps a cut-off tool call, reports event: error", function()
    claude:control("/_sim/scenario", { conversations = { { replies = {
      { replay = "anthropic-sse-tool-use-max-tokens-truncated.txt" },
      { replay = "anthropic-sse-error-overloaded.txt" },
      { replay = "anthropic-sse-refusal.txt" } } } } })
    local cfg = cfg_for(sim.url, claude.url)
    local route = { provider = "anthropic", model = "claude-sonnet-4-5" }
    local msg = assert(providers.complete(cfg, route, ask("a")))
    assert.are.equal("max_tokens", msg.stop_reason)
    local call = blocks_of(msg, "tool_use")[1]
    assert.is_true(call.incomplete)
    assert.is_string(call.partial_json)
    local _, err = providers.complete(cfg, route, ask("b"))
    assert.are.equal("stream_error", err.kind)
    assert.are.equal("overloaded_error", err.error_type)
    assert.is_true(err.retryable)
    msg = assert(providers.complete(cfg, route, ask("c")))
    assert.are.equal("refusal", msg.stop_reason)
  end)

  it("anthropic: a stream without message_stop is an error, never a short answer", function()
    claude:fault{ kind = "cut", after = 5 }
    local cfg = cfg_for(sim.url, claude.url)
    local _, err = providers.complete(cfg, { provider = "anthropic", model = "m" }, ask("x"))
    assert.are.equal("protocol", err.kind)
    claude:control("/_sim/scenario", { conversations = { { replies = { { replay = "anthropic-sse-text.txt", verbatim = true } } } } })
    -- the SDK capture ends without its final blank line: message_stop is never dispatched
    local msg
    msg, err = providers.complete(cfg, { provider = "anthropic", model = "m" }, ask("x"))
    assert.is_nil(msg)
    assert.are.equal("protocol", err.kind)
  end)

  it("ollama native: translates messages and tools, sizes num_ctx, maps the stop reason", function()
    sim:control("/_sim/scenario", script)
    local cfg = cfg_for(sim.url)
    local req = { system = "You are terse.", max_tokens = 1000, tools = { TOOL }, messages = {
      { role = "user", content = "read it" },
      { role = "assistant", content = { { type = "text", text = "ok" },
        { type = "tool_use", id = "call_1", name = "read_file", input = { path = "a.c" } } } },
      { role = "user", content = { { type = "tool_result", tool_use_id = "call_1", content = "int x;" },
                                   { type = "text", text = "and now?" } } } } }
    local msg = assert(providers.complete(cfg, { provider = "ollama", model = "qwen3:8b" }, req))
    assert.are.equal("tool_use", msg.stop_reason)
    assert.are.same({ path = "src/main.c" }, blocks_of(msg, "tool_use")[1].input)
    assert.are.equal("I should read it.", blocks_of(msg, "thinking")[1].thinking)
    assert.is_true(msg.usage.input_tokens > 0)
    local sent = sim:log()[1].body
    assert.are.same({ "system", "user", "assistant", "tool", "user" },
      { sent.messages[1].role, sent.messages[2].role, sent.messages[3].role, sent.messages[4].role, sent.messages[5].role })
    assert.are.equal("read_file", sent.messages[4].tool_name)
    assert.are.same({ path = "a.c" }, sent.messages[3].tool_calls[1]["function"].arguments)
    assert.are.equal("function", sent.tools[1].type)
    assert.are.equal(4096, sent.options.num_ctx)
    assert.are.equal(1000, sent.options.num_predict)
  end)

  it("ollama native: sends a verdict schema as format, think and keep_alive", function()
    sim:control("/_sim/scenario", { conversations = { { replies = { { verdict = { score = 88, passed = true } } } } } })
    local cfg = cfg_for(sim.url)
    cfg.providers.ollama.keep_alive = "30m"
    local schema = { type = "object", properties = { score = { type = "integer" }, passed = { type = "boolean" } },
                     required = { "score", "passed" } }
    local msg = assert(providers.complete(cfg, { provider = "ollama", model = "qwen3:8b" },
      ask("judge", { format = schema, thinking = true })))
    assert.are.same({ score = 88, passed = true }, cjson.decode(blocks_of(msg, "text")[1].text))
    local sent = sim:log()[1].body
    assert.are.same(schema, sent.format)
    assert.is_true(sent.think)
    assert.are.equal("30m", sent.keep_alive)
  end)

  -- Ollama silently drops the oldest messages of a prompt longer than num_ctx (4096 when the
  -- request sets none); the simulator does the same, counting tokens as a code tokenizer does.
  local function long_conversation()
    local messages = {}
    for i = 1, 40 do
      messages[#messages + 1] = { role = i % 2 == 1 and "user" or "assistant",
                                  content = ("line %d: local x = f(y) -- some code\n"):format(i):rep(120) }
    end
    messages[#messages + 1] = { role = "user", content = "and now?" }
    return messages
  end

  it("ollama native: a long conversation reaches the model whole, with room for the answer", function()
    local cfg = cfg_for(sim.url)
    local msg = assert(providers.complete(cfg, { provider = "ollama", model = "qwen3-coder" },
      { max_tokens = 4096, messages = long_conversation() }))
    local entry = sim:log()[1]
    assert.are.equal(0, entry.truncated_messages)
    assert.are.equal(entry.prompt_tokens, msg.usage.input_tokens)
    assert.is_true(entry.prompt_tokens > 40000, "a prompt far beyond Ollama's default window")
    assert.is_true(entry.body.options.num_ctx >= entry.prompt_tokens + 4096, "the window holds the prompt and the answer")
  end)

  it("ollama native: the same conversation without num_ctx loses its start (the fact above)", function()
    local http = require "codeassist.http"
    local body = cjson.encode{ model = "qwen3-coder", stream = false, messages = long_conversation() }
    local res = assert(http.request{ method = "POST", url = sim.url .. "/api/chat", body = body })
    assert(res:body())
    assert.is_true(sim:log()[1].truncated_messages > 30)
  end)

  it("ollama native: num_ctx never exceeds the model's window", function()
    local body = { messages = long_conversation() }
    assert.are.equal(32768, ollama.num_ctx(body, 4096, 32768))
    assert.is_true(ollama.num_ctx({ messages = { { role = "user", content = "hi" } } }, 64, 32768) >= 4096,
      "never below Ollama's own default window")
  end)

  it("ollama native: odd JSON from the server is a failure naming the field, or a warning, never a crash", function()
    local cfg = cfg_for(sim.url)
    -- null where an object may be is nothing; a wrong type is the server's protocol fault
    sim:fault{ match = { path = "/api/chat" }, kind = "status", status = 200,
               body = { message = cjson.null, done = true, done_reason = cjson.null } }
    local msg = assert(providers.complete(cfg, { provider = "ollama", model = "qwen3:8b" }, ask("hi")))
    assert.are.equal("", blocks_of(msg, "text")[1].text)
    assert.are.equal(0, msg.usage.output_tokens)
    assert.is_nil(msg.model)
    for _, case in ipairs{ { { model = 5, done = true }, 'model is 5, expected a string' },
                           { { done = true, done_reason = {} }, 'done_reason is an empty object, expected a string' },
                           { { done = true, eval_count = "many" }, 'eval_count is "many", expected a number >= 0' },
                           { { done = "yes" }, 'done is "yes", expected true or false' },
                           { { message = { content = 42 }, done = true }, 'message.content is 42, expected a string' } } do
      sim:fault{ match = { path = "/api/chat" }, kind = "status", status = 200, body = case[1] }
      local _, err = providers.complete(cfg, { provider = "ollama", model = "qwen3:8b" }, ask("hi"))
      assert.are.equal("protocol", err.kind)
      assert.are.equal("a line of the stream: " .. case[2], err.message)
    end
    sim:fault{ match = { path = "/api/chat" }, kind = "status", status = 200, body = 5 }
    local _, err = providers.complete(cfg, { provider = "ollama", model = "qwen3:8b" }, ask("hi"))
    assert.are.equal("protocol", err.kind)
    assert.matches("not a JSON object", err.message)
    local api = require "codeassist.ollama_api"
    sim:fault{ match = { path = "/api/tags" }, kind = "status", status = 200,
               body = { models = { 5, { name = 7 }, { name = "ok:1", details = "x" } } } }
    local list = assert(api.tags{ base_url = sim.url })
    assert.are.equal(1, #list)
    assert.are.equal("ok:1", list[1].name)
    assert.are.same({ "/api/tags: models[1] is 5, expected an object", "/api/tags: models[2].name is 7, expected a string",
                      '/api/tags: models[3].details is "x", expected an object' }, list.problems)
    sim:fault{ match = { path = "/api/version" }, kind = "status", status = 200, body = { 1 } }
    _, err = api.version{ base_url = sim.url }
    assert.are.equal("protocol", err.kind)
    assert.matches("GET .*/api/version: the answer is not a JSON object", err.message)
  end)

  it("ollama native: a stream without done: true, or with an error line, is an error", function()
    sim:fault{ kind = "cut", after = 3 }
    local cfg = cfg_for(sim.url)
    local _, err = providers.complete(cfg, { provider = "ollama", model = "qwen3-coder" }, ask("x"))
    assert.are.equal("protocol", err.kind)
    local _, e2 = providers.complete(cfg, { provider = "ollama", model = "missing" }, ask("x"))
    assert.are.equal("http", e2.kind)
    assert.are.equal(404, e2.status)
  end)

  it("ollama with protocol: anthropic uses /v1/messages with thinking off and its quirks", function()
    sim:control("/_sim/scenario", script)
    local cfg = cfg_for(sim.url)
    cfg.providers.ollama.protocol = "anthropic"
    local msg = assert(providers.complete(cfg, { provider = "ollama", model = "qwen3:8b" }, ask("go", { tools = { TOOL } })))
    local call = blocks_of(msg, "tool_use")[1]
    assert.matches("^call_", call.id)
    assert.are.same({ path = "src/main.c" }, call.input)
    local sent = sim:log()[1]
    assert.are.equal("/v1/messages", sent.path)
    assert.are.equal("disabled", sent.body.thinking.type)
  end)

  it("sends each call to the least busy healthy server of a pool, failing over", function()
    local second = support.simulator()
    local dead = "http://127.0.0.1:1"
    local cfg = cfg_for({ dead, sim.url, second.url })
    local task = require "codeassist.task"
    -- the first call finds the dead server and fails over; it stays marked down
    assert.are.equal(sim.url, assert(providers.complete(cfg, { provider = "ollama", model = "qwen3-coder" }, ask("x"))).base_url)
    local ts = {}
    for i = 1, 4 do
      ts[i] = task.spawn(function() return assert(providers.complete(cfg, { provider = "ollama", model = "qwen3-coder" }, ask("x"))).base_url end)
    end
    local used = {}
    for i = 1, 4 do local _, url = task.join(ts[i]); used[url] = (used[url] or 0) + 1 end
    assert.is_nil(used[dead])
    assert.are.equal(2, used[sim.url])
    assert.are.equal(2, used[second.url])
    second:stop()
  end)

  it("keeps the Anthropic key on the Anthropic host and the Ollama key on Ollama, out of every message", function()
    local cfg = cfg_for(sim.url, claude.url)
    cfg.providers.ollama.api_key = "ollama-proxy-key-456"
    local _, err = providers.complete(cfg, { provider = "ollama", model = "nope" }, ask("x"))
    assert(providers.complete(cfg, { provider = "anthropic", model = "claude-sonnet-4-5" }, ask("x")))
    assert(providers.complete(cfg, { provider = "ollama", model = "qwen3-coder" }, ask("x")))
    local o_log, c_log = cjson.encode(sim:log()), cjson.encode(claude:log())
    assert.is_nil(o_log:find("sk-ant-secret-123", 1, true))
    assert.is_truthy(c_log:find("sk-ant-secret-123", 1, true))
    assert.is_nil(c_log:find("ollama-proxy-key-456", 1, true))
    assert.is_truthy(o_log:find("Bearer ollama-proxy-key-456", 1, true))
    assert.is_nil(err.message:find("ollama-proxy-key-456", 1, true))
  end)
end)

describe("secrets in a hybrid doctor run", function()
  it("reach only their own hosts and appear in no output", function()
    local o = support.simulator()
    local c = support.simulator("--flavor anthropic --api-key sk-ant-secret-789")
    local dir = support.tmpdir()
    support.write(dir .. "/.claude/autonomous.yml", ([[
providers:
  default: claude
  ollama:
    enabled: true
    base_url: %s
    model: qwen3-coder
    api_key: ollama-proxy-key-000
  gate_providers:
    build: { provider: ollama, model: qwen3-coder }
    devops: { provider: ollama, model: qwen3-coder }
    architect: { provider: ollama, model: qwen3-coder }
]]):format(o.url))
    local r = support.codeassist({ "doctor", "ollama_hybrid", "--probe" }, { cwd = dir,
      env = { ANTHROPIC_API_KEY = "sk-ant-secret-789", ANTHROPIC_BASE_URL = c.url, NO_COLOR = "1" } })
    assert.are.equal(0, r.code, r.stdout)
    local o_log, c_log = cjson.encode(o:log()), cjson.encode(c:log())
    assert.is_true(#o:log() > 0 and #c:log() > 0)
    assert.is_nil(o_log:find("sk-ant-secret-789", 1, true))
    assert.is_nil(c_log:find("ollama-proxy-key-000", 1, true))
    assert.is_truthy(c_log:find("sk-ant-secret-789", 1, true))
    for _, text in ipairs{ r.stdout, r.stderr } do
      assert.is_nil(text:find("sk-ant-secret-789", 1, true))
      assert.is_nil(text:find("ollama-proxy-key-000", 1, true))
    end
    r = support.codeassist({ "doctor", "ollama_hybrid", "--probe", "--json" }, { cwd = dir,
      env = { ANTHROPIC_API_KEY = "sk-ant-secret-789", ANTHROPIC_BASE_URL = c.url } })
    assert.is_nil(r.stdout:find("sk-ant-secret-789", 1, true))
    o:stop(); c:stop()
    support.cleanup()
  end)
end)

-- The model simulator itself: later tests stand on what it claims to do.
local http = require "codeassist.http"
local cjson = require "cjson"
local support = require "support"

local function post(sim, path, doc, stream)
  local res, err = http.request{ url = sim.url .. path, body = cjson.encode(doc), stream = stream }
  return res, err
end

local function collect_sse(res)
  local events = {}
  for data, name in res:events() do events[#events + 1] = { name = name, data = cjson.decode(data) } end
  assert.is_nil(res.err)
  return events
end

describe("the model simulator", function()
  local sim
  setup(function() sim = support.simulator("--vram-gb 24") end)
  teardown(function() sim:stop(); support.cleanup() end)
  before_each(function() sim:reset() end)

  local script = { conversations = { { replies = {
    { thinking = "Let me look.", tool_calls = { { name = "read_file", input = { path = "src/main.c" } } } },
    { verdict = { score = 92, passed = true } },
  } } } }

  it("plays a scripted conversation over Ollama's native chat", function()
    sim:control("/_sim/scenario", script)
    local res = assert(post(sim, "/api/chat", { model = "qwen3:8b", messages = { { role = "user", content = "go" } },
                                                tools = { { type = "function", ["function"] = { name = "read_file" } } } }, "ndjson"))
    local calls, thinking, final = nil, {}, nil
    for obj in res:lines() do
      if obj.message.thinking then thinking[#thinking + 1] = obj.message.thinking end
      calls = obj.message.tool_calls or calls
      final = obj
    end
    assert.are.equal("Let me look.", table.concat(thinking))
    assert.are.same({ path = "src/main.c" }, calls[1]["function"].arguments)   -- an object, whole
    assert.matches("^call_", calls[1].id)
    assert.is_true(final.done)
    assert.are.equal("stop", final.done_reason)

    res = assert(post(sim, "/api/chat", { model = "qwen3:8b", stream = false, messages = { { role = "user", content = "go" } } }))
    local doc = cjson.decode(res:body())
    assert.are.same({ score = 92, passed = true }, cjson.decode(doc.message.content))
  end)

  it("speaks Ollama's /v1/messages with its quirks", function()
    sim:control("/_sim/scenario", script)
    local res = assert(post(sim, "/v1/messages", { model = "qwen3:8b", max_tokens = 100, stream = true,
                                                   messages = { { role = "user", content = "go" } } }, "sse"))
    local events = collect_sse(res)
    assert.are.equal("message_start", events[1].name)
    assert.is_nil(events[1].data.message.stop_reason)           -- key absent, not null
    for _, e in ipairs(events) do assert.are_not.equal("ping", e.name) end
    local tool_start, deltas = nil, 0
    for _, e in ipairs(events) do
      if e.name == "content_block_start" and e.data.content_block.type == "thinking" then
        assert.is_nil(e.data.content_block.signature)
      end
      if e.name == "content_block_start" and e.data.content_block.type == "tool_use" then tool_start = e.data end
      if e.name == "content_block_delta" and e.data.delta.type == "input_json_delta" then deltas = deltas + 1 end
    end
    assert.matches("^call_[a-z0-9]+$", tool_start.content_block.id)
    assert.are.equal(1, deltas)                                   -- the whole input at once
    assert.are.equal("tool_use", events[#events - 1].data.delta.stop_reason)
    assert.is_nil(events[#events - 1].data.delta.stop_sequence)
  end)

  it("refuses /v1/messages on a server older than 0.14.0", function()
    local old = support.simulator("--version 0.13.5")
    local res, err = post(old, "/v1/messages", { model = "qwen3:8b", max_tokens = 5, messages = { { role = "user", content = "x" } } })
    assert.is_nil(res)
    assert.are.equal(404, err.status)
    assert.are.equal("404 page not found", err.body)
    old:stop()
  end)

  it("speaks Anthropic's /v1/messages and checks the key", function()
    local claude = support.simulator("--flavor anthropic --api-key sk-test")
    local body = { model = "claude-sonnet-4-5", max_tokens = 50, stream = true, messages = { { role = "user", content = "x" } } }
    local res, err = http.request{ url = claude.url .. "/v1/messages", body = cjson.encode(body), stream = "sse",
                                   headers = { ["x-api-key"] = "wrong" } }
    assert.are.equal(401, err.status)
    assert.matches("authentication_error", err.message)
    res = assert(http.request{ url = claude.url .. "/v1/messages", body = cjson.encode(body), stream = "sse",
                               headers = { ["x-api-key"] = "sk-test", ["anthropic-version"] = "2023-06-01" } })
    assert.matches("^req_", res.headers["request-id"])
    local events = collect_sse(res)
    local names = {}
    for _, e in ipairs(events) do names[e.name] = true end
    assert.is_true(names.ping)
    assert.are.equal(cjson.null, events[1].data.message.stop_reason)
    local log = claude:log()
    assert.are.equal("sk-test", log[#log].headers["x-api-key"])
    claude:stop()
  end)

  it("lists, shows and pulls models like Ollama", function()
    local tags = cjson.decode(assert(http.request{ url = sim.url .. "/api/tags" }):body())
    local names = {}
    for _, m in ipairs(tags.models) do names[m.name] = m end
    assert.are.equal("30.5B", names["qwen3-coder:latest"].details.parameter_size)
    local show = cjson.decode(assert(post(sim, "/api/show", { model = "qwen3-coder" })):body())
    assert.are.equal(262144, show.model_info["qwen3moe.context_length"])
    assert.are.same({ "completion", "tools" }, show.capabilities)
    local _, err = post(sim, "/api/show", { model = "missing" })
    assert.are.equal("POST " .. sim.url .. "/api/show: HTTP 404: model 'missing:latest' not found", err.message)
    local res = assert(post(sim, "/api/pull", { model = "llama3.2" }, "ndjson"))
    local statuses = {}
    for obj in res:lines() do statuses[#statuses + 1] = obj.status end
    assert.are.equal("pulling manifest", statuses[1])
    assert.are.equal("success", statuses[#statuses])
  end)

  it("simulates a GPU: loads take time, the least recently used model is evicted", function()
    sim:control("/_sim/models", { vram_gb = 24, load_seconds = 0.2 })
    local function chat(model)
      local clock = require "codeassist.clock"
      local t0 = clock.monotonic()
      assert(post(sim, "/api/chat", { model = model, stream = false, messages = { { role = "user", content = "x" } },
                                      options = { num_ctx = 8192 } })):body()
      return clock.monotonic() - t0
    end
    assert.is_true(chat("qwen3-coder") >= 0.2)      -- 18.6 GB: a cold load
    assert.is_true(chat("qwen3-coder") < 0.15)      -- warm
    chat("qwen3:8b")                                -- 5.2 GB: fits beside it
    chat("gpt-oss:20b")                             -- 13.8 GB: evicts qwen3-coder, the oldest
    local ps = cjson.decode(assert(http.request{ url = sim.url .. "/api/ps" }):body())
    local loaded = {}
    for _, m in ipairs(ps.models) do loaded[m.name] = m end
    assert.is_nil(loaded["qwen3-coder:latest"])
    assert.are.equal(8192, loaded["qwen3:8b"].context_length)
    local stats = sim:control("/_sim/stats")
    assert.are.same({ ["qwen3-coder:latest"] = 1, ["qwen3:8b"] = 1, ["gpt-oss:20b"] = 1 }, stats.loads)
    assert.are.equal(1, stats.evictions)
  end)

  it("never evicts a model that is serving: a model that does not fit waits, as Ollama's scheduler does", function()
    sim:control("/_sim/scenario", { vram_gb = 24, load_seconds = 0.2, reply_seconds = 0.3 })
    local task, clock = require "codeassist.task", require "codeassist.clock"
    local t0 = clock.monotonic()
    local function chat(model, keep_alive)
      return task.spawn(function()
        assert(post(sim, "/api/chat", { model = model, stream = false, keep_alive = keep_alive,
                                        messages = { { role = "user", content = "x" } } })):body()
        return clock.monotonic() - t0
      end)
    end
    -- 18.6 + 13.8 GB do not fit in 24 GB: the second load waits for the first reply
    local a = chat("qwen3-coder", 0)
    task.sleep(0.05)
    local b = chat("gpt-oss:20b")
    local _, ta = task.join(a)
    local _, tb = task.join(b)
    assert.is_true(ta >= 0.5 and ta < 0.8, "first " .. ta)          -- load + reply
    assert.is_true(tb >= 1.0, "second " .. tb)                      -- then load + reply again
    local stats = sim:control("/_sim/stats")
    assert.are.same({ ["qwen3-coder:latest"] = 1, ["gpt-oss:20b"] = 1 }, stats.loads)
    -- keep_alive 0 unloaded qwen3-coder when its reply was done: nothing had to be evicted
    assert.are.equal(0, stats.evictions)
    local ps = cjson.decode(assert(http.request{ url = sim.url .. "/api/ps" }):body())
    assert.are.equal(1, #ps.models)
    assert.are.equal("gpt-oss:20b", ps.models[1].name)
  end)

  it("takes requests in arrival order: alternating models that do not fit reload each time", function()
    sim:control("/_sim/scenario", { vram_gb = 24, load_seconds = 0.1, reply_seconds = 0.1 })
    local task = require "codeassist.task"
    local tasks = {}
    for i, model in ipairs{ "qwen3-coder", "gpt-oss:20b", "qwen3-coder" } do
      if i > 1 then task.sleep(0.03) end
      tasks[i] = task.spawn(function()
        assert(post(sim, "/api/chat", { model = model, stream = false, messages = { { role = "user", content = "x" } } })):body()
      end)
    end
    for _, t in ipairs(tasks) do assert(task.join(t)) end
    -- the third waited behind the second even though its model was loaded when it came
    local stats = sim:control("/_sim/stats")
    assert.are.same({ ["qwen3-coder:latest"] = 2, ["gpt-oss:20b"] = 1 }, stats.loads)
    assert.are.equal(2, stats.evictions)
  end)

  it("rejects what Ollama rejects: tools on a model without them, unknown models", function()
    local _, err = post(sim, "/api/chat", { model = "gemma3:4b", messages = { { role = "user", content = "x" } },
                                             tools = { { type = "function", ["function"] = { name = "f" } } } }, "ndjson")
    assert.are.equal(400, err.status)
    assert.matches("does not support tools", err.message)
    _, err = post(sim, "/api/chat", { model = "nope:7b", messages = { { role = "user", content = "x" } } }, "ndjson")
    assert.are.equal("POST " .. sim.url .. "/api/chat: HTTP 404: model 'nope:7b' not found", err.message)
  end)
end)

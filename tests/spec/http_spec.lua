-- codeassist.http against the model simulator over real loopback sockets: requests,
-- streams, every fault's err.kind within its timeout, backpressure, cancellation.
local http = require "codeassist.http"
local task = require "codeassist.task"
local clock = require "codeassist.clock"
local cjson = require "cjson"
local support = require "support"

local sim

local function chat_body(extra)
  local body = { model = "qwen3-coder", messages = { { role = "user", content = "hi" } } }
  for k, v in pairs(extra or {}) do body[k] = v end
  return cjson.encode(body)
end

-- Waits (up to 10 s, however loaded the machine) until cond() holds.
local function eventually(cond, what)
  local deadline = clock.monotonic() + 10
  while not cond() do
    assert(clock.monotonic() < deadline, "never happened: " .. what)
    task.sleep(0.02)
  end
end

local timed = support.timed

describe("codeassist.http", function()
  setup(function() sim = support.simulator() end)
  teardown(function() sim:stop(); support.cleanup() end)
  before_each(function() sim:reset() end)

  it("gets a plain body with status and lowercased headers", function()
    local res = assert(http.request{ url = sim.url .. "/api/version" })
    assert.are.equal(200, res.status)
    assert.are.equal("application/json", res.headers["content-type"])
    assert.are.same({ version = "0.32.15" }, cjson.decode(res:body()))
  end)

  it("sends method, headers and body, as the request log shows", function()
    local res = assert(http.request{ url = sim.url .. "/api/show", method = "POST",
      headers = { ["content-type"] = "application/json", "X-Probe: 1" }, body = '{"model":"llama3.2"}' })
    assert.are.equal(200, res.status)
    res:body()
    local entry = sim:log()[1]
    assert.are.equal("POST", entry.method)
    assert.are.equal("/api/show", entry.path)
    assert.are.equal("1", entry.headers["x-probe"])
    assert.are.equal("llama3.2", entry.body.model)
    assert.matches("^codeassist/", entry.headers["user-agent"])
  end)

  it("reuses the connection for a second request to the same host", function()
    local a = assert(http.request{ url = sim.url .. "/api/version" }); a:body()
    local b = assert(http.request{ url = sim.url .. "/api/tags" }); b:body()
    assert.are.equal(0, b:info().new_connections)
  end)

  it("streams NDJSON lines decoded, and SSE events as strings", function()
    local res = assert(http.request{ url = sim.url .. "/api/chat", body = chat_body(), stream = "ndjson" })
    local text, last = {}, nil
    for obj in res:lines() do text[#text + 1] = obj.message.content; last = obj end
    assert.is_nil(res.err)
    assert.matches("^Hello! This is the codeassist model simulator", table.concat(text))
    assert.is_true(last.done)

    res = assert(http.request{ url = sim.url .. "/v1/messages", stream = "sse",
      body = chat_body{ model = "qwen3:8b", max_tokens = 50, stream = true } })
    local names = {}
    for data, name in res:events() do
      names[#names + 1] = name
      assert.is_string(data)
    end
    assert.is_nil(res.err)
    assert.are.equal("message_start", names[1])
    assert.are.equal("message_stop", names[#names])
  end)

  it("delivers a replayed real capture event for event", function()
    sim:control("/_sim/scenario", { conversations = { { replies = { { replay = "anthropic-sse-tool-use.txt" } } } } })
    local res = assert(http.request{ url = sim.url .. "/v1/messages", stream = "sse",
      body = chat_body{ max_tokens = 5, stream = true } })
    local partial = {}
    for data, name in res:events() do
      if name == "content_block_delta" then
        local d = cjson.decode(data).delta
        if d.type == "input_json_delta" then partial[#partial + 1] = d.partial_json end
      end
    end
    assert.is_nil(res.err)
    assert.are.same({ location = "Paris" }, cjson.decode(table.concat(partial)))
  end)

  it("turns an error status into kind http with the server's message", function()
    local res, err = http.request{ url = sim.url .. "/api/chat", body = chat_body{ model = "nope" }, stream = "ndjson" }
    assert.is_nil(res)
    assert.are.equal("http", err.kind)
    assert.are.equal(404, err.status)
    assert.are.equal("POST " .. sim.url .. "/api/chat: HTTP 404: model 'nope' not found", err.message)

    sim:fault{ kind = "status", status = 429, retry_after = 3 }
    res, err = http.request{ url = sim.url .. "/v1/messages", body = chat_body{ max_tokens = 5 } }
    assert.is_nil(res)
    assert.are.equal("http", err.kind)
    assert.are.equal(429, err.status)
    assert.are.equal("3", err.headers["retry-after"])
    assert.are.equal("POST " .. sim.url .. "/v1/messages: HTTP 429: rate_limit_error: simulated 429", err.message)
  end)

  it("reports a refused connection as kind connect", function()
    sim:control("/_sim/refuse", { seconds = 1 })
    local res, err = http.request{ url = sim.url .. "/api/version" }
    assert.is_nil(res)
    assert.are.equal("connect", err.kind)
    assert.are.equal(("GET %s/api/version: Failed to connect to 127.0.0.1 port %d "):format(sim.url, sim.port),
                     err.message:match("^.- port %d+ "))
    assert.matches("Couldn't connect to server$", err.message)
    eventually(function()
      local r = http.request{ url = sim.url .. "/api/version" }
      return r and r:body()
    end, "the simulator listened again")
  end)

  it("gives up connecting after timeout.connect", function()
    local port = sim:control("/_sim/blackhole", {}).port
    local res, err, dt = timed(function()
      return http.request{ url = "http://127.0.0.1:" .. port .. "/", timeout = { connect = 0.3 } }
    end)
    assert.is_nil(res)
    assert.are.equal("timeout_connect", err.kind)
    assert.are.equal(("GET http://127.0.0.1:%d/: could not connect within 0.3 s (timeout.connect)"):format(port),
                     err.message)
    assert.is_true(dt >= 0.25 and dt < 5, "took " .. dt)
  end)

  it("gives up waiting for the first byte after timeout.first_byte", function()
    sim:fault{ kind = "delay", seconds = 3 }
    local res, err, dt = timed(function()
      return http.request{ url = sim.url .. "/api/chat", body = chat_body(), stream = "ndjson",
                           timeout = { first_byte = 0.3 } }
    end)
    assert.is_nil(res)
    assert.are.equal("timeout_first_byte", err.kind)
    assert.are.equal("POST " .. sim.url .. "/api/chat: no response within 0.3 s of sending the request "
      .. "(timeout.first_byte)", err.message)
    assert.is_true(dt >= 0.28 and dt < 2.5, "took " .. dt)
  end)

  it("gives up on a stalled stream after timeout.idle", function()
    sim:fault{ kind = "stall", after = 3, seconds = 5 }
    local res = assert(http.request{ url = sim.url .. "/api/chat", body = chat_body(), stream = "ndjson",
                                     timeout = { idle = 0.3 } })
    local n, t0 = 0, clock.monotonic()
    for _ in res:lines() do n = n + 1 end
    local dt = clock.monotonic() - t0
    assert.are.equal(3, n)
    assert.are.equal("timeout_idle", res.err.kind)
    assert.are.equal("POST " .. sim.url .. "/api/chat: the response stalled: no bytes for 0.3 s (timeout.idle)",
                     res.err.message)
    assert.is_true(dt >= 0.28 and dt < 4, "took " .. dt)
  end)

  it("stops at timeout.total however the bytes trickle", function()
    sim:fault{ kind = "stall", after = 2, seconds = 5 }
    local res = assert(http.request{ url = sim.url .. "/api/chat", body = chat_body(), stream = "ndjson",
                                     timeout = { total = 0.4, idle = 10 } })
    local _, _, dt = timed(function() for _ in res:lines() do end end)
    assert.are.equal("timeout_total", res.err.kind)
    assert.are.equal("POST " .. sim.url .. "/api/chat: no complete response within 0.4 s (timeout.total)",
                     res.err.message)
    assert.is_true(dt < 4, "took " .. dt)   -- the stall lasts 5 s
  end)

  it("reports a cut stream and a silent hang-up as protocol errors", function()
    sim:fault{ kind = "cut", after = 4 }
    local res = assert(http.request{ url = sim.url .. "/v1/messages", stream = "sse",
      body = chat_body{ max_tokens = 5, stream = true } })
    local n = 0
    for _ in res:events() do n = n + 1 end
    assert.are.equal(4, n)
    assert.are.equal("protocol", res.err.kind)
    assert.matches("^POST " .. sim.url:gsub("%p", "%%%0") .. "/v1/messages: the connection was cut in the middle "
      .. "of the response %(", res.err.message)

    sim:fault{ kind = "close", times = 2 }   -- libcurl retries once on a reused connection
    local r2, err = http.request{ url = sim.url .. "/api/version" }
    assert.is_nil(r2)
    assert.are.equal("protocol", err.kind)
    assert.are.equal("GET " .. sim.url .. "/api/version: the server closed the connection without answering",
                     err.message)
  end)

  it("reports a malformed NDJSON line and a wrong content type as protocol errors", function()
    sim:fault{ kind = "malformed", at = 2 }
    local res = assert(http.request{ url = sim.url .. "/api/chat", body = chat_body(), stream = "ndjson" })
    local n = 0
    for _ in res:lines() do n = n + 1 end
    assert.are.equal(2, n)
    assert.are.equal("protocol", res.err.kind)
    assert.matches("^POST " .. sim.url:gsub("%p", "%%%0") .. "/api/chat: a line of the stream is not JSON %(.*%): "
      .. '{"model": broken$', res.err.message)

    sim:fault{ kind = "content_type", content_type = "text/html" }
    local r2, err = http.request{ url = sim.url .. "/v1/messages", stream = "sse",
      body = chat_body{ max_tokens = 5, stream = true } }
    assert.is_nil(r2)
    assert.are.equal("protocol", err.kind)
    assert.matches("expected a sse stream but the server sent text/html: <html>", err.message)
  end)

  it("bounds an event's size and a plain body's size", function()
    local res = assert(http.request{ url = sim.url .. "/api/chat", body = chat_body(), stream = "ndjson",
                                     max_event = 40 })
    for _ in res:lines() do end
    assert.are.equal("too_large", res.err.kind)
    assert.are.equal("POST " .. sim.url .. "/api/chat: a streamed line larger than the limit of 40 bytes (max_event)",
                     res.err.message)
    res = assert(http.request{ url = sim.url .. "/api/tags", max_body = 100 })
    local body, err = res:body()
    assert.is_nil(body)
    assert.are.equal("too_large", err.kind)
    assert.are.equal("GET " .. sim.url .. "/api/tags: response body larger than the limit of 100 bytes (max_body)",
                     err.message)
  end)

  it("never puts credentials of the URL into messages", function()
    sim:control("/_sim/refuse", { seconds = 0.3 })
    local _, err = http.request{ url = ("http://alice:s3cret@127.0.0.1:%d/x?api_key=SECRET&model=m"):format(sim.port) }
    assert.are.equal("connect", err.kind)
    assert.not_matches("s3cret", err.message)
    assert.not_matches("SECRET", err.message)
    assert.matches("%*%*%*@127%.0%.0%.1", err.message)
    assert.matches("api_key=%*%*%*&model=m: Failed to connect", err.message)
    eventually(function()
      local r = http.request{ url = sim.url .. "/api/version" }
      return r and r:body()
    end, "the simulator listened again")
  end)

  it("pauses a transfer Lua does not read, without buffering it all", function()
    local res = assert(http.request{ url = sim.url .. "/_sim/bench/sse?events=100000", stream = "sse" })
    local events = res:events()
    assert.is_string(events())
    eventually(function() return res:info().paused end, "the transfer paused")
    task.sleep(0.2)   -- the loop keeps running; the queue must stay as it is
    local info = res:info()
    assert.is_true(info.paused)
    -- the stream is 11 MB; the queue holds 32 KiB and pauses, the rest waits in the kernel
    assert.is_true(info.bytes < 128 * 1024, "received " .. info.bytes)
    local n = 1
    for _ in events do n = n + 1 end
    assert.is_nil(res.err)
    assert.are.equal(100000, n)
  end)

  it("does not count a pause for a slow reader as the server being idle", function()
    -- The whole stream is in the kernel's buffers at once, so every byte is there the moment
    -- the transfer resumes: only the reader is slow, for twice timeout.idle at a time.
    local res = assert(http.request{ url = sim.url .. "/_sim/bench/sse?events=20000", stream = "sse",
                                     timeout = { idle = 0.5 } })
    local events, n = res:events(), 0
    for _ = 1, 3 do
      assert.is_string(events())
      n = n + 1
      eventually(function() return res:info().paused end, "the transfer paused")
      task.sleep(0.8)
    end
    for _ in events do n = n + 1 end
    assert.is_nil(res.err)
    assert.are.equal(20000, n)
  end)

  it("keeps timeout.total for a paused stream", function()
    local res = assert(http.request{ url = sim.url .. "/_sim/bench/sse?events=20000", stream = "sse",
                                     timeout = { total = 1 } })
    local events = res:events()
    assert.is_string(events())
    task.sleep(1.2)   -- the 2.4 MB cannot all be in before the deadline: we hold it back
    local n = 1
    for _ in events do n = n + 1 end
    assert.is_true(n < 20000, "read " .. n)
    assert.are.equal("timeout_total", res.err.kind)
    assert.matches("^GET http://127%.0%.0%.1:%d+/_sim/bench/sse%?events=20000: no complete response within 1 s %(timeout%.total%)$",
                   res.err.message)
  end)

  it("delivers an event larger than the queue whole, to a slow reader too", function()
    local big = ("0123456789"):rep(30000)   -- 300 KB in one text delta
    sim:control("/_sim/scenario", { conversations = { { replies = { { text = big, chunk = #big } } } } })
    local res = assert(http.request{ url = sim.url .. "/v1/messages", stream = "sse",
      body = chat_body{ model = "qwen3:8b", max_tokens = 5, stream = true } })
    local text = {}
    for data, name in res:events() do
      task.sleep(0.01)
      if name == "content_block_delta" then text[#text + 1] = cjson.decode(data).delta.text end
    end
    assert.is_nil(res.err)
    assert.are.equal(big, table.concat(text))
  end)

  it("frees a paused transfer that is closed or whose task is cancelled", function()
    local res = assert(http.request{ url = sim.url .. "/_sim/bench/sse?events=20000", stream = "sse" })
    assert.is_string(res:events()())
    eventually(function() return res:info().paused end, "the transfer paused")
    res:close()
    assert.are.equal("closed", res._t:state())

    local held
    local t = task.spawn(function()
      held = assert(http.request{ url = sim.url .. "/_sim/bench/sse?events=20000", stream = "sse" })
      held:events()()
      task.sleep(30)
    end)
    eventually(function() return held and held:info().paused end, "the transfer paused")
    task.cancel(t)
    assert.are.equal("closed", held._t:state())
    -- the connections were dropped, not left half-read: the server still answers
    assert.are.equal(200, assert(http.request{ url = sim.url .. "/api/version" }).status)
  end)

  it("does not stall waiting for the end of a large stream of the wrong content type", function()
    -- 2.4 MB of SSE where NDJSON was asked for: nothing reads its lines, so none may be kept
    local res, err = http.request{ url = sim.url .. "/_sim/bench/sse?events=20000", stream = "ndjson",
                                   timeout = { total = 20 } }
    assert.is_nil(res)
    assert.are.equal("protocol", err.kind)
    assert.matches("expected a ndjson stream but the server sent text/event%-stream: event: content_block_delta",
                   err.message)
  end)

  it("runs eight slow requests concurrently on one thread", function()
    local t0 = clock.monotonic()
    local ts = {}
    for i = 1, 8 do
      ts[i] = task.spawn(function()
        return assert(http.request{ url = sim.url .. "/_sim/sleep?seconds=0.4" }):body()
      end)
    end
    for i = 1, 8 do assert.is_true((task.join(ts[i]))) end
    local dt = clock.monotonic() - t0
    assert.is_true(dt < 1.6, "took " .. dt .. " s; one after another takes 3.2 s")
  end)

  it("interleaves three streams and a child process on one thread", function()
    local proc = require "codeassist.proc"
    sim:fault{ kind = "pace", seconds = 0.02, times = 3 }
    local spans = {}
    local function stream(i)
      local res = assert(http.request{ url = sim.url .. "/api/chat", body = chat_body(), stream = "ndjson" })
      local first, n = nil, 0
      for _ in res:lines() do first = first or clock.monotonic(); n = n + 1 end
      spans[i] = { first, clock.monotonic(), n }
    end
    local t0 = clock.monotonic()
    local ts = { task.spawn(stream, 1), task.spawn(stream, 2), task.spawn(stream, 3) }
    ts[4] = task.spawn(function()
      local start = clock.monotonic()
      local r = assert(proc.run{ "for i in 1 2 3 4; do echo $i; sleep 0.1; done", shell = true })
      spans[4] = { start, clock.monotonic(), r.stdout }
    end)
    for i = 1, 4 do assert.is_true((task.join(ts[i]))) end
    local total = clock.monotonic() - t0
    assert.are.equal("1\n2\n3\n4\n", spans[4][3])
    for i = 1, 3 do
      assert.is_true(spans[i][3] > 10)
      assert.is_true(spans[4][1] < spans[i][2], "the child started before stream " .. i .. " ended")
      assert.is_true(spans[i][1] < spans[4][2], "stream " .. i .. " made progress while the child ran")
    end
    assert.is_true(total < 0.9, "took " .. total .. " s; one after another takes over 1.5 s")
  end)

  it("caps requests per endpoint with http.limit", function()
    http.limit(sim.url, 2)
    local t0 = clock.monotonic()
    local ts = {}
    for i = 1, 4 do
      ts[i] = task.spawn(function() return assert(http.request{ url = sim.url .. "/_sim/sleep?seconds=0.2" }):body() end)
    end
    for i = 1, 4 do assert.is_true((task.join(ts[i]))) end
    http.limit(sim.url, nil)
    local dt = clock.monotonic() - t0
    assert.is_true(dt >= 0.39 and dt < 0.8, "took " .. dt)
  end)

  it("frees the transfer of a cancelled task at once", function()
    sim:fault{ kind = "stall", after = 2, seconds = 5 }
    local res
    local t = task.spawn(function()
      res = assert(http.request{ url = sim.url .. "/api/chat", body = chat_body(), stream = "ndjson" })
      for _ in res:lines() do end
    end)
    while not res do task.sleep(0.01) end
    task.sleep(0.05)
    task.cancel(t)
    assert.are.equal("closed", res._t:state())
    local ok, err = task.join(t)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.kind)
    assert.are.equal("task cancelled", err.message)
  end)

  it("keeps caller mistakes as errors, raised at the caller's line", function()
    -- busted's error assertions drop the position: look at the raw message
    local function raised(fn)
      local ok, err = pcall(fn)
      assert.is_false(ok, "no error was raised")
      return err
    end
    assert.matches("^[^:]*http_spec%.lua:%d+: http: url must be an http:// or https:// address$",
      raised(function() http.request{ url = "ftp://x" } end))
    assert.matches('^[^:]*http_spec%.lua:%d+: http: stream must be "sse", "ndjson" or nil$',
      raised(function() http.request{ url = sim.url, stream = "xml" } end))
    assert.matches("^[^:]*http_spec%.lua:%d+: http: a header contains a line break$",
      raised(function() http.request{ url = sim.url, headers = { "X: a\r\nInjected: 1" } } end))
    assert.matches("^[^:]*http_spec%.lua:%d+: http: timeout%.idle must be a number of seconds > 0",
      raised(function() http.request{ url = sim.url, timeout = { idle = 0 } } end))
    assert.matches("^[^:]*http_spec%.lua:%d+: http%.request: give a table {url = %.%.%., %.%.%.}, not a string$",
      raised(function() http.request("http://x") end))
  end)
end)

-- A loopback port nothing listens on: bound, then closed.
local function closed_port()
  local r = support.sh([[python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()']])
  return assert(tonumber(r.stdout), r.stderr)
end

-- One GET in a child codeassist whose proxy variables are exactly env (the others unset):
-- "ok" and the status, or the failure's kind and message.
local function get_in_child(url, env)
  local dir = support.tmpdir()
  support.write(dir .. "/get.lua", [[
local http = require "codeassist.http"
local res, err = http.request{ url = arg[1], timeout = { total = 10 } }
io.write(res and "ok" or err.kind, "\n", res and tostring(res.status) or err.message)
]])
  local full = { http_proxy = false, https_proxy = false, HTTPS_PROXY = false, all_proxy = false,
                 ALL_PROXY = false, no_proxy = false, NO_PROXY = false, CODEASSIST_RESOLVE = false }
  for k, v in pairs(env) do full[k] = v end
  local r = support.codeassist({ "run", dir .. "/get.lua", url }, { env = full })
  assert.are.equal(0, r.code, r.stderr)
  return r.stdout:match("^([^\n]*)\n(.*)$")
end

describe("codeassist.http with proxies and TLS", function()
  teardown(function() support.cleanup() end)

  it("names a proxy that refuses the connection, without its password, and says what to do", function()
    local port = closed_port()
    local kind, message = get_in_child("http://models.example.invalid/api/version",
      { http_proxy = ("http://alice:s3cret@127.0.0.1:%d"):format(port) })
    assert.are.equal("proxy", kind)
    local head = ("GET http://models.example.invalid/api/version: could not connect to the proxy "
      .. "http://***@127.0.0.1:%d (from http_proxy): "):format(port)
    assert.are.equal(head, message:sub(1, #head))
    assert.matches("; check the http_proxy variable, or add models%.example%.invalid to no_proxy to connect directly$",
                   message)
    assert.not_matches("s3cret", message)
    assert.not_matches("alice", message)
  end)

  it("names a proxy that refuses the tunnel to an https URL", function()
    local sim = support.simulator()   -- answers CONNECT with 501
    local kind, message = get_in_child("https://models.example.invalid/v1/messages", { https_proxy = sim.url })
    assert.are.equal("proxy", kind)
    assert.are.equal(("GET https://models.example.invalid/v1/messages: the proxy %s (from https_proxy) refused "
      .. "the tunnel: CONNECT answered HTTP 501; check the https_proxy variable, or add models.example.invalid "
      .. "to no_proxy to connect directly"):format(sim.url), message)
    sim:stop()
  end)

  it("blames the server, not the proxy, for a refusal on a host no_proxy sends direct", function()
    local proxy, server = closed_port(), closed_port()
    for _, case in ipairs{
      { url = ("http://127.0.0.1:%d/x"):format(server), no_proxy = "localhost, 127.0.0.1" },
      { url = ("http://127.0.0.1:%d/x"):format(server), no_proxy = "10.0.0.0/8,127.0.0.0/8" },
      { url = ("http://api.models.test:%d/x"):format(server), no_proxy = ".models.test" },
      { url = ("http://api.models.test:%d/x"):format(server), no_proxy = "*" },
    } do
      local kind, message = get_in_child(case.url, { http_proxy = "http://127.0.0.1:" .. proxy,
        no_proxy = case.no_proxy, CODEASSIST_RESOLVE = ("api.models.test:%d:127.0.0.1"):format(server) })
      assert.are.equal("connect", kind, case.no_proxy)
      local head = "GET " .. case.url .. ": Failed to connect to "
      assert.are.equal(head, message:sub(1, #head))
      assert.matches(" port " .. server .. " ", message)
    end
    -- a suffix that is not a whole label does not match: the proxy is used (and refuses)
    local kind, message = get_in_child(("http://api.models.test:%d/x"):format(server), { http_proxy = "http://127.0.0.1:" .. proxy,
      no_proxy = "dels.test", CODEASSIST_RESOLVE = ("api.models.test:%d:127.0.0.1"):format(server) })
    assert.are.equal("proxy", kind)
    assert.matches("could not connect to the proxy http://127%.0%.0%.1:" .. proxy .. " %(from http_proxy%)", message)
  end)

  it("honours the http_proxy variable", function()
    local sim = support.simulator()
    local dir = support.tmpdir()
    support.write(dir .. "/p.lua", [[
local http = require "codeassist.http"
local res = assert(http.request{ url = "http://models.example.invalid/api/version" })
print(res.status, res:body())
]])
    local r = support.codeassist({ "run", dir .. "/p.lua" },
      { env = { http_proxy = sim.url, no_proxy = false, NO_PROXY = false } })
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^200\t{\"version\": \"0%.32%.15\"}", r.stdout)
    assert.are.equal("models.example.invalid", sim:log()[1].host)
    sim:stop()
    support.cleanup()
  end)

  it("verifies TLS certificates, and trusts an extra CA file when given", function()
    local dir = support.tmpdir()
    local gen = support.sh(table.concat({
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=codeassist-test-ca",
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1",
      "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf",
      "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf",
    }, " && "), { cwd = dir })
    assert.are.equal(0, gen.code, gen.stderr)
    local sim = support.simulator(("--tls-cert %s/srv.pem --tls-key %s/srv.key"):format(dir, dir))
    local url = "https://127.0.0.1:" .. sim.port .. "/api/version"
    local res, err = http.request{ url = url }
    assert.is_nil(res)
    assert.are.equal("tls", err.kind)
    assert.matches("^GET https://127%.0%.0%.1:%d+/api/version: .*certificate", err.message)
    res = assert(http.request{ url = url, ca_file = dir .. "/ca.pem" })
    assert.are.equal(200, res.status)
    assert.matches("0%.32%.15", res:body())
    sim:stop()
    support.cleanup()
  end)
end)

describe("codeassist.http and signals", function()
  it("stops a stream on Ctrl-C and exits 130 at once", function()
    local sim = support.simulator()
    sim:fault{ kind = "stall", after = 2, seconds = 30 }
    local dir = support.tmpdir()
    support.write(dir .. "/s.lua", ([[
local http = require "codeassist.http"
local res = assert(http.request{ url = "%s/api/chat", stream = "ndjson",
  body = '{"model":"qwen3-coder","messages":[{"role":"user","content":"hi"}]}' })
for obj in res:lines() do print("line") io.stdout:flush() end
print("not reached", res.err and res.err.kind)
]]):format(sim.url))
    local r = support.sh(("%s run s.lua & pid=$!; sleep 0.5; kill -INT $pid; wait $pid; echo rc=$?")
      :format(support.bin), { cwd = dir, timeout = 10 })
    assert.matches("line\nline\n", r.stdout)
    assert.matches("rc=130", r.stdout)
    assert.not_matches("not reached", r.stdout)
    assert.matches("codeassist: interrupted", r.stderr)
    assert.is_true(r.duration < 2)
    sim:stop()
    support.cleanup()
  end)
end)

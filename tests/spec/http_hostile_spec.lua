-- codeassist.http against a hostile server (tests/spec/hostile_http_server.py) over real
-- loopback sockets (issue 13): total deadlines that trickles and comments cannot dodge, a
-- byte cap on whole streams, compressed and wrongly encoded bodies, redirects never
-- followed, an endless error text, a last NDJSON line without its newline.
local http = require "codeassist.http"
local core = require "codeassist.http_core"
local task = require "codeassist.task"
local clock = require "codeassist.clock"
local fs = require "codeassist.fs"
local cjson = require "cjson"
local support = require "support"

local server = {}

-- Starts the server in its own session, under `timeout` so a crashed spec cannot leave it.
local function start_server()
  local dir = support.tmpdir()
  local port_file = dir .. "/port"
  local r = support.sh(("setsid timeout 300 python3 '%s/tests/spec/hostile_http_server.py' --port-file '%s' "
    .. "> '%s/server.log' 2>&1 < /dev/null & echo $!; i=0; "
    .. "while [ ! -f '%s' ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done")
    :format(support.root, port_file, dir, port_file))
  server.pid = tonumber(r.stdout)
  local deadline = clock.monotonic() + 10
  while not fs.stat(port_file) do
    assert(clock.monotonic() < deadline, "the server did not start: " .. (fs.read(dir .. "/server.log") or ""))
    clock.sleep(0.02)
  end
  server.url = "http://127.0.0.1:" .. fs.read(port_file)
end

local timed = support.timed

-- Reads a whole SSE stream; returns the number of events and how it ended.
local function drain_events(res)
  local n = 0
  for _ in res:events() do n = n + 1 end
  return n, res.err
end

describe("codeassist.http against a hostile server", function()
  setup(start_server)
  teardown(function()
    if server.pid then support.sh("kill " .. server.pid .. " 2>/dev/null; true") end
    support.cleanup()
  end)

  describe("deadlines", function()
    it("ends a stream of SSE comments at its total deadline: comments keep idle from firing, not total", function()
      local res = assert(http.request{ url = server.url .. "/sse/comments?every=0.2", stream = "sse",
        timeout = { connect = 5, first_byte = 5, idle = 1, total = 2 } })
      local n, err, took = timed(function() return drain_events(res) end)
      assert.are.equal(0, n)
      assert.are.equal("timeout_total", err.kind)
      assert.are.equal("GET " .. server.url .. "/sse/comments?every=0.2: no complete response within 2 s (timeout.total)",
                       err.message)
      assert.is_true(res:info().total_time < 3, "ended after " .. res:info().total_time .. " s, not within total + 1 s")
      assert.is_true(took < 3)
    end)

    it("ends a body trickling in byte by byte at its total deadline", function()
      local res = assert(http.request{ url = server.url .. "/sse/trickle?every=0.25", stream = "sse",
        timeout = { idle = 1, total = 2 } })
      local n, err = drain_events(res)
      assert.are.equal(0, n)   -- no event completes at 4 bytes a second
      assert.are.equal("timeout_total", err.kind)
      local info = res:info()
      assert.is_true(info.bytes >= 4, "bytes " .. info.bytes)
      assert.is_true(info.total_time >= 1.9 and info.total_time < 3, "ended after " .. info.total_time .. " s")
      -- the same trickle as a plain body
      local plain = assert(http.request{ url = server.url .. "/sse/trickle?every=0.25", timeout = { idle = 1, total = 1.5 } })
      local body, e2 = plain:body()
      assert.is_nil(body)
      assert.are.equal("timeout_total", e2.kind)
      assert.is_true(plain:info().total_time < 2.5)
    end)

    it("keeps the total deadline while a transfer is paused for a reader that fell behind", function()
      local res = assert(http.request{ url = server.url .. "/sse/endless", stream = "sse", timeout = { idle = 0.5, total = 1.5 } })
      local t0 = clock.monotonic()
      while res:info().total_time == nil and clock.monotonic() - t0 < 5 do task.sleep(0.1) end
      local info = res:info()
      assert.is_true(info.total_time ~= nil and info.total_time < 2.5, "still going after " .. (clock.monotonic() - t0) .. " s")
      local _, err = drain_events(res)   -- what was queued is still read, then how it ended
      assert.are.equal("timeout_total", err.kind)
    end)
  end)

  describe("size", function()
    it("bounds the whole of an endless stream with max_body: SSE and NDJSON", function()
      local res = assert(http.request{ url = server.url .. "/sse/endless", stream = "sse", max_body = 1048576,
        timeout = { total = 20 } })
      local n, err = drain_events(res)
      assert.is_true(n > 1000, "events " .. n)
      assert.are.equal("too_large", err.kind)
      assert.are.equal("GET " .. server.url .. "/sse/endless: a streamed answer larger than the limit of 1048576 bytes (max_body)",
                       err.message)
      assert.is_true(res:info().bytes <= 1048576)

      res = assert(http.request{ url = server.url .. "/ndjson/endless", stream = "ndjson", max_body = 1048576,
        timeout = { total = 20 } })
      local lines = 0
      for obj in res:lines() do lines = lines + 1; assert.is_false(obj.done) end
      assert.is_true(lines > 1000, "lines " .. lines)
      assert.are.equal("too_large", res.err.kind)
      assert.matches("a streamed answer larger than the limit of 1048576 bytes %(max_body%)$", res.err.message)
    end)

    it("bounds an endless stream at 64 MiB when max_body is not given", function()
      local res = assert(http.request{ url = server.url .. "/sse/endless", stream = "sse", timeout = { total = 60 } })
      local _, err = drain_events(res)
      assert.are.equal("too_large", err.kind)
      assert.matches("larger than the limit of 67108864 bytes %(max_body%)$", err.message)
      local bytes = res:info().bytes
      assert.is_true(bytes <= 64 * 1048576 and bytes > 60 * 1048576, "bytes " .. bytes)
    end)

    it("reads only the start of an endless error text, then reports it", function()
      local res, err, took = timed(function()
        return http.request{ url = server.url .. "/error/endless", stream = "ndjson", timeout = { total = 30 } }
      end)
      assert.is_nil(res)
      assert.are.equal("http", err.kind)
      assert.are.equal(500, err.status)
      assert.matches("HTTP 500: internal error: xxxx", err.message)
      assert.are.equal(65536, #err.body)
      assert.is_true(took < 5, "took " .. took .. " s")
    end)

    it("refuses a size limit that is not a number of bytes >= 1", function()
      for _, v in ipairs{ 0, -1, 0 / 0, 0.5 } do
        local ok, msg = pcall(http.request, { url = server.url .. "/echo", max_body = v })
        assert.is_false(ok)
        assert.matches("http: max_body must be a number of bytes >= 1", msg)
        ok, msg = pcall(http.request, { url = server.url .. "/echo", stream = "sse", max_event = v })
        assert.is_false(ok)
        assert.matches("http: max_event must be a number of bytes >= 1", msg)
      end
    end)
  end)

  describe("encodings", function()
    it("asks for the body uncompressed", function()
      local res = assert(http.request{ url = server.url .. "/echo" })
      local headers = cjson.decode(res:body())
      assert.are.equal("identity", headers["accept-encoding"])
    end)

    it("decodes gzip sent anyway: a plain body, an SSE stream, an NDJSON stream", function()
      local res = assert(http.request{ url = server.url .. "/gzip/json", timeout = { total = 10 } })
      assert.are.equal("gzip", res.headers["content-encoding"])
      assert.are.equal('{"version":"0.32.0"}\n', res:body())

      res = assert(http.request{ url = server.url .. "/gzip/sse", stream = "sse", timeout = { total = 10 } })
      local names = {}
      for data, name in res:events() do
        names[#names + 1] = name
        assert.are.equal("more and more ", cjson.decode(data).delta.text)
      end
      assert.is_nil(res.err)
      assert.are.same({ "content_block_delta", "content_block_delta", "content_block_delta" }, names)

      res = assert(http.request{ url = server.url .. "/gzip/ndjson", stream = "ndjson", timeout = { total = 10 } })
      local got = {}
      for obj in res:lines() do got[#got + 1] = obj.n end
      assert.is_nil(res.err)
      assert.are.same({ 0, 1, 2 }, got)
    end)

    it("names an encoding it cannot decode, and a body that is not what its encoding says", function()
      local res = assert(http.request{ url = server.url .. "/encoding/unknown", timeout = { total = 10 } })
      local body, err = res:body()
      assert.is_nil(body)
      assert.are.equal("protocol", err.kind)
      assert.matches('^GET [^ ]+/encoding/unknown: the body came with content%-encoding "x%-hostile" %(codeassist asks for '
        .. 'identity%), which could not be decoded: ', err.message)

      res = assert(http.request{ url = server.url .. "/encoding/corrupt-gzip", timeout = { total = 10 } })
      body, err = res:body()
      assert.is_nil(body)
      assert.are.equal("protocol", err.kind)
      assert.matches('content%-encoding "gzip" %(codeassist asks for identity%), which could not be decoded: .', err.message)
    end)
  end)

  describe("redirects", function()
    local function hits()
      local res = assert(http.request{ url = server.url .. "/hits" })
      return cjson.decode(res:body())
    end

    it("never follows one: the status and the location reach the caller", function()
      local res = assert(http.request{ url = server.url .. "/redirect", headers = { ["x-api-key"] = "sk-secret" },
        timeout = { total = 10 } })
      assert.are.equal(302, res.status)
      assert.are.equal(server.url .. "/redirected", res.headers.location)
      assert.are.equal("<html>Moved</html>", res:body())

      -- asked for a stream: the transfer keeps the redirect as a body, no framing
      local tr = core.open{ url = server.url .. "/redirect", stream = "sse", timeout = { total = 10 } }
      while tr:body() == false do assert(task.wait(tr, 10, tr)) end
      assert.are.equal(302, tr:status())
      assert.are.equal(server.url .. "/redirected", tr:headers().location)
      assert.are.equal("<html>Moved</html>", tr:body())
      assert.is_nil(tr:failure())
      tr:close()
      assert.are.equal(2, hits()["/redirect"])   -- the counter works: both asks reached the server
      assert.is_nil(hits()["/redirected"])
    end)
  end)

  describe("NDJSON framing", function()
    it("delivers a last line that has no newline, whether the body has a length or ends with the connection", function()
      for _, q in ipairs{ "", "?close=1" } do
        local res = assert(http.request{ url = server.url .. "/ndjson/no-final-newline" .. q, stream = "ndjson",
          timeout = { total = 10 } })
        local got = {}
        for obj in res:lines() do got[#got + 1] = obj end
        assert.is_nil(res.err, q)
        assert.are.same({ { n = 1 }, { n = 2, done = true } }, got)
      end
    end)

    it("accepts a line of exactly max_event bytes then CRLF, with the CR in the same or a later chunk", function()
      for _, split in ipairs{ "0", "1" } do
        local res = assert(http.request{ url = server.url .. "/ndjson/crlf-at-limit?n=1000&split=" .. split,
          stream = "ndjson", max_event = 1000, timeout = { total = 10 } })
        local got = {}
        for obj in res:lines() do got[#got + 1] = obj end
        assert.is_nil(res.err, "split " .. split)
        assert.are.equal(1, #got)
        assert.are.equal(998, #got[1])
        -- one byte more is too large, wherever the chunks fall
        res = assert(http.request{ url = server.url .. "/ndjson/crlf-at-limit?n=1001&split=" .. split,
          stream = "ndjson", max_event = 1000, timeout = { total = 10 } })
        for _ in res:lines() do end
        assert.are.equal("too_large", res.err.kind)
        assert.matches("a streamed line larger than the limit of 1000 bytes %(max_event%)$", res.err.message)
      end
    end)
  end)
end)

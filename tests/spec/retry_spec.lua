-- codeassist.retry: what is retried, how long it waits, and the budgets — against the
-- simulator's faults, and with a fake sleep for the arithmetic.
local retry = require "codeassist.retry"
local http = require "codeassist.http"
local clock = require "codeassist.clock"
local support = require "support"

local function http_err(status, headers)
  return { kind = "http", status = status, headers = headers or {} }
end

describe("codeassist.retry", function()
  it("retries connection failures, timeouts, 408, 409, 429, 5xx and 529 only", function()
    for _, s in ipairs{ 408, 409, 429, 500, 502, 503, 529 } do assert.is_true((retry.retryable(http_err(s)))) end
    for _, s in ipairs{ 400, 401, 403, 404, 413, 422 } do assert.is_false((retry.retryable(http_err(s)))) end
    for _, k in ipairs{ "connect", "dns", "timeout_connect", "timeout_first_byte", "timeout_idle", "timeout_total" } do
      assert.is_true((retry.retryable{ kind = k }))
    end
    for _, k in ipairs{ "tls", "protocol", "too_large", "cancelled" } do assert.is_false((retry.retryable{ kind = k })) end
    assert.is_false((retry.retryable(http_err(529, { ["x-should-retry"] = "false" }))))
    assert.is_true((retry.retryable(http_err(400, { ["x-should-retry"] = "true" }))))
  end)

  it("honours retry-after-ms, then retry-after, trusting at most 60 s", function()
    assert.are.equal(0.25, retry.server_delay(http_err(429, { ["retry-after-ms"] = "250", ["retry-after"] = "9" })))
    assert.are.equal(2, retry.server_delay(http_err(429, { ["retry-after"] = "2" })))
    assert.are.equal(1.5, retry.server_delay(http_err(429, { ["retry-after"] = "1.5" })))
    assert.is_nil(retry.server_delay(http_err(429, { ["retry-after"] = "3600" })))
    assert.is_nil(retry.server_delay(http_err(429, { ["retry-after"] = "0" })))
    local soon = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 10)
    local d = retry.server_delay(http_err(503, { ["retry-after"] = soon }))
    assert.is_true(d >= 8 and d <= 11, "HTTP date gave " .. tostring(d))
  end)

  it("backs off exponentially with jitter, capped", function()
    local opts = { base = 0.5, max_delay = 8, jitter = 0.25, random = function() return 0 end }
    assert.are.same({ 0.5, 1, 2, 4, 8, 8 }, { retry.backoff(1, opts), retry.backoff(2, opts), retry.backoff(3, opts),
      retry.backoff(4, opts), retry.backoff(5, opts), retry.backoff(9, opts) })
    opts.random = function() return 1 end
    assert.are.equal(0.375, retry.backoff(1, opts))
  end)

  it("stops at the attempt budget and at the time budget", function()
    local slept, calls = {}, 0
    local function failing() calls = calls + 1; return nil, http_err(503) end
    local r, err = retry.call(failing, { attempts = 4, sleep = function(s) slept[#slept + 1] = s; return true end,
                                         random = function() return 0 end })
    assert.is_nil(r)
    assert.are.equal(4, calls)
    assert.are.equal(4, err.attempts)
    assert.are.same({ 0.5, 1, 2 }, slept)

    calls = 0
    r, err = retry.call(failing, { attempts = 10, budget = 1.6, sleep = function() return true end,
                                   random = function() return 0 end })
    assert.are.equal(3, calls)   -- waits of 0.5 + 1 fit in 1.6 s; a further 2 would not
    assert.is_true(err.budget_spent)
  end)

  it("does not retry what a retry cannot fix, and returns success at once", function()
    local calls = 0
    local r, err = retry.call(function() calls = calls + 1; return nil, http_err(401) end)
    assert.is_nil(r)
    assert.are.equal(1, calls)
    assert.are.equal(401, err.status)
    assert.are.same({ "ok", 2 }, { retry.call(function() return "ok", 2 end) })
  end)

  describe("against the simulator", function()
    local sim
    setup(function() sim = support.simulator() end)
    teardown(function() sim:stop(); support.cleanup() end)

    it("waits what retry-after-ms says and reports each retry", function()
      sim:fault{ kind = "status", status = 429, retry_after_ms = 150, times = 2 }
      local seen = {}
      local t0 = clock.monotonic()
      local res, err = retry.call(function()
        return http.request{ url = sim.url .. "/api/version" }
      end, { on_retry = function(info) seen[#seen + 1] = info end })
      assert.is_nil(err)
      assert.are.equal(200, res.status)
      local dt = clock.monotonic() - t0
      assert.is_true(dt >= 0.3 and dt < 0.8, "took " .. dt)
      assert.are.equal(2, #seen)
      assert.are.equal(1, seen[1].attempt)
      assert.are.equal(0.15, seen[1].delay)
      assert.are.equal(429, seen[2].err.status)
    end)

    it("retries a refused connection until the server is back", function()
      sim:control("/_sim/refuse", { seconds = 0.4 })
      local kinds = {}
      local res = retry.call(function() return http.request{ url = sim.url .. "/api/version" } end,
        { attempts = 6, base = 0.2, on_retry = function(info) kinds[#kinds + 1] = info.err.kind end })
      assert.are.equal(200, res.status)
      assert.is_true(#kinds >= 1)
      assert.are.equal("connect", kinds[1])
    end)
  end)
end)

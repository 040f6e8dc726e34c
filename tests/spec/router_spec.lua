-- The router: the one call path (route hook, floor and fallback, retry, pool failover,
-- circuit breaker, an event for everything it does).
local support = require "support"
local router = require "codeassist.router"
local preset = require "codeassist.preset"
local config = require "codeassist.config"
local events = require "codeassist.events"
local errors = require "codeassist.errors"

local function cfg_with(ollama_base)
  local path = support.write(support.tmpdir() .. "/autonomous.yml", "{}\n")
  local cfg = config.load{ path = path, env = function() return nil end }
  cfg.providers.ollama.base_url = ollama_base or cfg.providers.ollama.base_url
  cfg.providers.anthropic.api_key = "sk-test"
  return cfg
end

local function plan_of(spec, cfg)
  return preset.plan(preset.define(spec), cfg)
end

-- A bus that keeps every event.
local function recorder()
  local bus, seen = events.new(), {}
  bus:add({ event = function(_, ev) seen[#seen + 1] = ev end })
  return bus, seen
end

local function types(seen, prefix)
  local out = {}
  for _, ev in ipairs(seen) do
    if ev.type:find(prefix, 1, true) == 1 then out[#out + 1] = ev.type end
  end
  return out
end

-- A fake provider: results scripted per model, each a list consumed in order.
local function scripted(results)
  local calls = {}
  return function(_, route, _, _)
    calls[#calls + 1] = route.model
    local list = results[route.model]
    local r = table.remove(list, 1)
    if r == "ok" then return { content = { { type = "text", text = "ok" } }, model = route.model, usage = {} } end
    return nil, errors.failure(r, ("%s failed (%s)"):format(route.model, r), r == "http" and { status = 400 } or nil)
  end, calls
end

describe("router", function()
  teardown(support.cleanup)

  it("falls back from a degradable route and says why", function()
    local cfg = cfg_with()
    local plan = plan_of({ routes = { review = { provider = "ollama", model = "local", floor = "degradable",
                                                  fallback = { provider = "claude", model = "cloud" } } } }, cfg)
    local complete, calls = scripted{ ["local"] = { "http" }, cloud = { "ok" } }
    local bus, seen = recorder()
    local r = router.new{ cfg = cfg, plan = plan, bus = bus, complete = complete }
    local msg = assert(r:call("review", { messages = {} }))
    assert.are.equal("cloud", msg.route.model)
    assert.are.same({ "local", "cloud" }, calls)
    assert.are.same({ "call.attempt", "call.failed", "call.fallback", "call.attempt", "call.done" }, types(seen, "call."))
    assert.matches("local failed %(http%)", seen[3].reason)
    assert.are.equal("ollama local", seen[3].from)
  end)

  it("never serves a critical gate by another model, not even Claude", function()
    local cfg = cfg_with()
    local plan = plan_of({ routes = {
      security = { provider = "ollama", model = "big", floor = "critical", fallback = { provider = "ollama", model = "small" } },
      test = { provider = "ollama", model = "big2", floor = "critical", fallback = { provider = "claude", model = "cloud" } },
    } }, cfg)
    local complete, calls = scripted{ big = { "connect" }, small = { "ok" }, big2 = { "connect" }, cloud = { "ok" } }
    local bus, seen = recorder()
    local r = router.new{ cfg = cfg, plan = plan, bus = bus, complete = complete, retry = { attempts = 1 } }
    local msg, err = r:call("security", {})
    assert.is_nil(msg)
    assert.are.equal("connect", err.kind)
    assert.are.same({ "big" }, calls)
    local skipped = types(seen, "call.skipped")
    assert.are.equal(1, #skipped)
    assert.matches("ollama big is critical: it is never handed to another model", seen[#seen].reason)
    msg, err = r:call("test", {})
    assert.is_nil(msg)
    assert.are.same({ "big", "big2" }, calls)
    assert.matches("ollama big2 is critical: it is never handed to another model", seen[#seen].reason)
  end)

  it("asks the preset's route hook, with ctx, and reports the reroute", function()
    local cfg = cfg_with()
    local seen_ctx
    local plan = plan_of({
      routes = { review = { provider = "ollama", model = "local" } },
      route = function(gate, ctx)
        seen_ctx = ctx
        if gate == "review" and ctx.failures("review") >= 2 then return { provider = "claude", model = "cloud" } end
      end,
    }, cfg)
    local complete = scripted{ ["local"] = { "ok" }, cloud = { "ok" } }
    local bus, seen = recorder()
    local r = router.new{ cfg = cfg, plan = plan, bus = bus, complete = complete }
    local ctx = preset.context(plan, { phase = "gates", iteration = 3,
      history = { review = { { passed = true }, { passed = false }, { passed = false } } } })
    local msg = assert(r:call("review", {}, { ctx = ctx }))
    assert.are.equal("cloud", msg.route.model)
    assert.matches("^hook route%(%) in .*router_spec%.lua", msg.route.origin)
    assert.are.equal("review", seen_ctx.gate_name)
    assert.are.equal(3, seen_ctx.iteration)
    assert.are.equal("call.rerouted", seen[1].type)
    assert.matches("^the route%(%) hook of .*router_spec%.lua", seen[1].reason)
    -- with one failure the plan's route stands
    ctx.history.review = { { passed = false } }
    msg = assert(r:call("review", {}, { ctx = ctx }))
    assert.are.equal("local", msg.route.model)
  end)

  it("refuses a route hook's answer that cannot be used, naming the preset", function()
    local cfg = cfg_with()
    local plan = plan_of({ route = function() return { provider = "olama" } end }, cfg)
    local r = router.new{ cfg = cfg, plan = plan, complete = scripted{} }
    local ok, err = pcall(r.call, r, "review", {})
    assert.is_false(ok)
    assert.are.equal(2, err.code)
    assert.matches("the route%(gate, ctx%) hook of .*router_spec%.lua returned a route for review that cannot be used:\n  provider: 'olama' is not one of claude, anthropic, ollama — did you mean 'ollama'%?", err.message)
  end)

  it("opens a circuit after repeated unreachable failures, then tries again after the cooldown", function()
    local now = 0
    local breaker = router.breaker{ failures = 2, cooldown = 30, clock = function() return now end }
    local cfg = cfg_with()
    local plan = plan_of({ routes = { review = { provider = "ollama", model = "dead" } } }, cfg)
    local complete, calls = scripted{ dead = { "connect", "connect", "ok" } }
    local bus, seen = recorder()
    local r = router.new{ cfg = cfg, plan = plan, bus = bus, complete = complete, breaker = breaker, retry = { attempts = 1 } }
    assert.is_nil(r:call("review", {}))
    assert.is_nil(r:call("review", {}))
    local msg, err = r:call("review", {})
    assert.is_nil(msg)
    assert.are.equal("unavailable", err.kind)
    assert.is_true(err.circuit_open)
    assert.are.equal(2, #calls)                                  -- the third call never went out
    assert.matches("^circuit open: the last 2 calls could not reach it; trying again in 30s", seen[#seen].reason)
    now = 31
    -- half-open: one call tries again; while it is out, the others are refused
    local trying = breaker.allow(plan.routes.review)
    assert.is_true(trying)
    local second, why = breaker.allow(plan.routes.review)
    assert.is_false(second)
    assert.matches("one call is trying it again", why)
    breaker.record(plan.routes.review, false, errors.failure("connect", "refused"))   -- it failed: open again
    assert.is_false((breaker.allow(plan.routes.review)))
    now = 62
    assert(r:call("review", {}))
    assert.are.equal(3, #calls)
  end)

  it("half-open, lets one call try while the others wait for its answer", function()
    local now = 0
    local breaker = router.breaker{ failures = 1, cooldown = 30, clock = function() return now end }
    local cfg = cfg_with()
    local plan = plan_of({ routes = { review = { provider = "ollama", model = "m" }, ux = { provider = "ollama", model = "m" } } }, cfg)
    local task = require "codeassist.task"
    local calls = {}
    local function complete(_, route)
      calls[#calls + 1] = route.model
      if #calls == 1 then return nil, errors.failure("connect", "refused") end
      task.sleep(0.3)                                   -- the trial takes a while, then succeeds
      return { content = {}, usage = {} }
    end
    local r = router.new{ cfg = cfg, plan = plan, complete = complete, breaker = breaker, retry = { attempts = 1 } }
    assert.is_nil(r:call("review", {}))                 -- opens the circuit
    now = 31
    local a = task.spawn(function() return r:call("review", {}) end)
    local b = task.spawn(function() return r:call("ux", {}) end)
    local _, ma = task.join(a)
    local _, mb = task.join(b)
    assert.is_truthy(ma)
    assert.is_truthy(mb)                                -- it waited, then went through
    assert.are.equal(3, #calls)
  end)

  it("keeps one circuit per endpoint: a dead server is skipped for every model it serves", function()
    local now = 0
    local cfg = cfg_with("http://gpu.test:11434")
    local plan = plan_of({ routes = { review = { provider = "ollama", model = "a" }, ux = { provider = "ollama", model = "b" },
                                      security = { provider = "claude", model = "c" } } }, cfg)
    local complete, calls = scripted{ a = { "connect", "connect", "connect" }, b = { "ok" }, c = { "ok" } }
    local bus, seen = recorder()
    local r = router.new{ cfg = cfg, plan = plan, bus = bus, complete = complete, retry = { attempts = 1 } }
    for _ = 1, 3 do assert.is_nil(r:call("review", {})) end
    local msg, err = r:call("ux", {})                   -- another model on the same server
    assert.is_nil(msg)
    assert.is_true(err.circuit_open)
    assert.matches("the last 3 calls could not reach ollama at http://gpu%.test:11434; trying again in %d+s",
      seen[#seen].reason)
    assert(r:call("security", {}))                      -- another endpoint is not affected
    assert.are.same({ "a", "a", "a", "c" }, calls)
  end)

  it("retries a 429 from a real server, honouring retry-after-ms", function()
    local sim = support.simulator()
    local cfg = cfg_with(sim.url)
    local plan = plan_of({ routes = { review = { provider = "ollama", model = "qwen3-coder" } } }, cfg)
    sim:fault{ match = { path = "/api/chat" }, times = 1, kind = "status", status = 429, retry_after_ms = 50 }
    local bus, seen = recorder()
    local r = router.new{ cfg = cfg, plan = plan, bus = bus }
    local msg = assert(r:call("review", { max_tokens = 8, messages = { { role = "user", content = "hi" } } }))
    assert.are.equal(2, msg.attempts)
    assert.are.equal(sim.url, msg.base_url)
    local retry
    for _, ev in ipairs(seen) do if ev.type == "call.retry" then retry = ev end end
    assert.are.equal("http", retry.kind)
    assert.are.equal(0.05, retry.delay)
    assert.matches("HTTP 429", retry.reason)
    sim:stop()
  end)

  it("fails over inside a pool when one server is down", function()
    local sim = support.simulator()
    local dead = support.closed_port_url()
    local cfg = cfg_with({ dead, sim.url })
    local plan = plan_of({ routes = { review = { provider = "ollama", model = "qwen3-coder" } } }, cfg)
    local r = router.new{ cfg = cfg, plan = plan }
    local msg = assert(r:call("review", { max_tokens = 8, messages = { { role = "user", content = "hi" } } }))
    assert.are.equal(sim.url, msg.base_url)
    assert.are.equal(1, msg.attempts)
    sim:stop()
  end)

  it("stops at a cancellation instead of falling back", function()
    local cfg = cfg_with()
    local plan = plan_of({ routes = { review = { provider = "ollama", model = "a", fallback = { provider = "claude", model = "b" } } } }, cfg)
    local complete, calls = scripted{ a = { "cancelled" }, b = { "ok" } }
    local r = router.new{ cfg = cfg, plan = plan, complete = complete }
    local msg, err = r:call("review", {})
    assert.is_nil(msg)
    assert.are.equal("cancelled", err.kind)
    assert.are.same({ "a" }, calls)
  end)

  it("raises at the caller for a gate it has no route for", function()
    local cfg = cfg_with()
    local r = router.new{ cfg = cfg, plan = plan_of({}, cfg), complete = scripted{} }
    local ok, err = pcall(function() local m = r:call("reveiw", {}) return m end)
    assert.is_false(ok)
    assert.matches("router_spec%.lua:%d+: router: no route for 'reveiw' — did you mean 'review'%?", err)
  end)
end)

-- The one call path for model calls: the agent, the gates and the doctor's probes all go
-- through a router, so routing, fallback, retries and their reporting behave the same
-- everywhere.
--
--   local router = require "codeassist.router"
--   local r = router.new{ cfg = cfg, plan = plan, bus = bus }
--   local msg, err = r:call("review", req, { ctx = ctx })   -- the gate's route, then its fallbacks
--   local msg, err = r:call_route(route, req)               -- one route, retried, no fallback
--
-- For a gate: the plan's route, or what the preset's route(gate, ctx) hook returns; then
-- each route of its chain in turn. A degradable route may fall back to its fallback; a
-- critical one never changes model. Each route is retried (codeassist.retry: connection
-- failures, timeouts, 408/409/429/5xx/529, honouring retry-after) and a pool of servers fails
-- over inside providers.complete. A circuit breaker per endpoint (a provider's server, or its
-- pool) skips one that keeps failing to connect, for every model it serves. Every attempt, retry, skip and switch is an
-- event on the bus ("call.*") with its reason; msg.route says which route answered.
local providers = require "codeassist.providers"
local retry = require "codeassist.retry"
local clock = require "codeassist.clock"
local task = require "codeassist.task"
local errors = require "codeassist.errors"
local schema = require "codeassist.schema"
local preset = require "codeassist.preset"
local deep_copy = require("codeassist.config").deep_copy

local M = {}

local function key_of(route)
  return route.provider .. "|" .. tostring(route.model)
end
M.key_of = key_of

local label = preset.route_label
M.label = label

-- ===== circuit breaker =====


-- The endpoint a route's calls go to: its provider's server (or pool of servers).
function M.endpoint_of(cfg, route)
  local urls = providers.base_urls(cfg, route.provider == "ollama" and "ollama" or "anthropic")
  local shown = {}
  for i, u in ipairs(urls) do shown[i] = require("codeassist.http").redact(tostring(u)) end
  return preset.provider_label(route.provider) .. " at " .. table.concat(shown, ", ")
end

-- The default breaker: after `failures` calls in a row that could not reach an endpoint, skip
-- it for `cooldown` seconds; then let one call through to try again (half-open).
-- A breaker is {allow = fn(route) -> true | false, reason; record = fn(route, ok, err)}.
-- opts.key(route) names the endpoint (default: the route itself).
function M.breaker(opts)
  opts = opts or {}
  local limit, cooldown = opts.failures or 3, opts.cooldown or 60
  local now = opts.clock or clock.monotonic
  local key = opts.key or key_of
  local state = {}
  return {
    allow = function(route)
      local s = state[key(route)]
      if not s or s.failures < limit then return true end
      local where = opts.key and key(route) or "it"
      if now() >= s.open_until then
        -- half-open: one call tries; the others wait for its answer (a try that never reported,
        -- cancelled on the way, is given up after another cooldown)
        if not s.trying or now() - s.trying >= cooldown then s.trying = now() return true end
        return false, ("the last %d calls could not reach %s; one call is trying it again"):format(s.failures, where), true
      end
      return false, ("the last %d calls could not reach %s; trying again in %ds"):format(s.failures,
        where, math.ceil(s.open_until - now()))
    end,
    record = function(route, ok, err)
      local k = key(route)
      if ok then state[k] = nil return end
      local s = state[k] or { failures = 0, open_until = 0 }
      s.trying = nil
      if not (err and errors.UNREACHABLE[err.kind]) then
        if s.failures > 0 then state[k] = s end
        return
      end
      s.failures = s.failures + 1
      if s.failures >= limit then s.open_until = now() + cooldown end
      state[k] = s
    end,
    -- the circuits as plain data with wall-clock times, for a run's saved state, and back
    export = function()
      local out, wall, mono = {}, clock.wall(), now()
      for k, s in pairs(state) do out[k] = { failures = s.failures, open_until = s.open_until - mono + wall } end
      return out
    end,
    import = function(saved)
      local wall, mono = clock.wall(), now()
      for k, s in pairs(type(saved) == "table" and saved or {}) do
        if type(k) == "string" and type(s) == "table" and tonumber(s.failures) then
          state[k] = { failures = tonumber(s.failures), open_until = (tonumber(s.open_until) or 0) - wall + mono }
        end
      end
    end,
  }
end

-- ===== the router =====

local Router = {}
Router.__index = Router

-- opts: {cfg, plan, bus (codeassist.events, optional), retry = {attempts, budget, ...},
--        breaker = a breaker (default: one per endpoint), complete = fn (default
--        providers.complete), before_call = fn(route, gate) -> nil | failure (refuses the call),
--        on_call = fn{gate, route, attempt, request, message, error, seconds} (after every
--        attempt: the ledger, the trace), on_stream = fn(gate, route, characters so far)}
function M.new(opts)
  errors.argcheck(type(opts) == "table" and type(opts.cfg) == "table",
    "router.new: give {cfg = <loaded config>, plan = <preset plan>, ...}")
  return setmetatable({
    cfg = opts.cfg, plan = opts.plan, bus = opts.bus,
    retry = opts.retry or {},
    breaker = opts.breaker or M.breaker{ key = function(route) return M.endpoint_of(opts.cfg, route) end },
    complete = opts.complete or providers.complete,
    before_call = opts.before_call, on_call = opts.on_call, on_stream = opts.on_stream,
  }, Router)
end

function Router:emit(name, fields)
  if self.bus then self.bus:emit(name, fields) end
end

-- A route as ctx.route shows it, made a route spec again: `gate` and `origin` are bookkeeping.
local function without_bookkeeping(spec, depth)
  if type(spec) ~= "table" or not (spec.origin or spec.gate) or (depth or 0) > 16 then return spec end
  local plain = {}
  for k, v in pairs(spec) do
    if k == "fallback" then plain[k] = without_bookkeeping(v, (depth or 0) + 1)
    elseif k ~= "origin" and k ~= "gate" then plain[k] = v end
  end
  return plain
end

-- The route for a gate now: the plan's, or the preset's route(gate, ctx) hook's answer.
function Router:route_for(gate, ctx)
  local plan = self.plan
  local planned = plan.routes[gate]
  if not planned then
    errors.misuse("router: no route for '%s'%s", tostring(gate), schema.did_you_mean(gate, schema.sorted_keys(plan.routes)))
  end
  if not plan.route then return planned end
  ctx = ctx or preset.context(plan)
  ctx.gate_name, ctx.gate, ctx.route = gate, deep_copy(plan.gates[gate]), deep_copy(planned)
  local where = ("the route(gate, ctx) hook of %s"):format(tostring(plan.source))
  local spec = errors.call_user(where, plan.route, gate, ctx)
  if spec == nil then return planned end
  spec = without_bookkeeping(spec)
  local problems = schema.problems(spec, preset.route_node, { unknown = "error", lua = true })
  if #problems.errors > 0 then
    errors.config("%s returned a route for %s that cannot be used:\n  %s", where, gate,
      table.concat(problems.errors, "\n  "))
  end
  local route = preset.resolve_route(self.cfg, gate, spec, "hook route() in " .. tostring(plan.source),
    (plan.gates[gate] or {}).required == true)
  if key_of(route) ~= key_of(planned) then
    self:emit("call.rerouted", { gate = gate, from = label(planned), to = label(route),
                                 reason = ("the route() hook of %s"):format(tostring(plan.source)) })
  end
  return route
end

-- Whether a route may hand over to its fallback. A critical gate is served by the model it was
-- given or not at all: it retries (and an Ollama pool tries its other hosts), and when the model
-- cannot be reached the run stops with exit 1. Which model is "weaker" cannot be known in
-- general, so a critical gate never changes model by itself; a preset that wants that says so
-- in its route() hook (presets/escalate.lua).
local function may_fall_back(from, to)
  if from.floor ~= "critical" then return true end
  return false, ("%s is critical: it is never handed to another model"):format(label(from))
end
M.may_fall_back = may_fall_back

-- One route, retried; no fallback. Returns msg (msg.route, msg.attempts) or nil and a failure.
function Router:call_route(route, req, opts)
  opts = opts or {}
  local gate = opts.gate or route.gate
  local allowed, why, trying = self.breaker.allow(route)
  -- another call is trying the endpoint again: wait for its answer rather than fail now
  local waited = 0
  while not allowed and trying and waited < 120 do
    if not task.sleep(0.2) then break end
    waited = waited + 0.2
    allowed, why, trying = self.breaker.allow(route)
  end
  if not allowed then
    self:emit("call.skipped", { gate = gate, route = label(route), reason = "circuit open: " .. why })
    return nil, errors.failure("unavailable", ("%s: %s is skipped: %s"):format(tostring(gate), label(route), why),
      { route = route, circuit_open = true })
  end
  -- a budget (the loop's) may refuse a call before anything is spent
  if self.before_call then
    local refused = self.before_call(route, gate)
    if refused then
      self:emit("call.skipped", { gate = gate, route = label(route), reason = refused.message })
      return nil, refused
    end
  end
  -- the gate's own deadline for each call (gates.<gate>.call_timeout), unless the caller gave one;
  -- providers.complete fills in the rest from the config's timeouts
  local call_opts = opts
  local settings = self.plan and self.plan.gates and self.plan.gates[gate]
  if opts.timeout == nil and type(settings) == "table" and settings.call_timeout then
    call_opts = setmetatable({ timeout = { total = settings.call_timeout } }, { __index = opts })
  end
  -- what streams in, for a live line: characters of text, thinking and tool input so far
  local streamed = 0
  if self.on_stream then
    call_opts = setmetatable({ on_event = function(name, ev)
      local d = type(ev) == "table" and type(ev.delta) == "table" and ev.delta
        or type(name) == "table" and type(name.message) == "table" and name.message or nil
      if d then
        for _, k in ipairs{ "text", "thinking", "partial_json", "content" } do
          if type(d[k]) == "string" then streamed = streamed + #d[k] end
        end
        self.on_stream(gate, route, streamed)
      end
      if opts.on_event then opts.on_event(name, ev) end
    end }, { __index = call_opts })
  end
  local policy = {}
  for k, v in pairs(self.retry) do policy[k] = v end
  for k, v in pairs(opts.retry or {}) do policy[k] = v end
  policy.on_retry = function(info)
    self:emit("call.retry", { gate = gate, route = label(route), attempt = info.attempt, delay = info.delay,
                              reason = info.reason, kind = info.err and info.err.kind,
                              message = info.err and info.err.message })
  end
  local attempts = 0
  local msg, err = retry.call(function(attempt)
    attempts = attempt
    self:emit("call.attempt", { gate = gate, route = label(route), provider = route.provider, model = route.model,
                                attempt = attempt })
    local t0 = clock.monotonic()
    local m, e = self.complete(self.cfg, route, req, call_opts)
    if self.on_call then
      self.on_call{ gate = gate, route = route, attempt = attempt, request = req, message = m, error = e,
                    seconds = clock.monotonic() - t0 }
    end
    if m then
      self:emit("call.done", { gate = gate, route = label(route), attempt = attempt, base_url = m.base_url,
                               seconds = clock.monotonic() - t0, usage = m.usage })
    else
      self:emit("call.failed", { gate = gate, route = label(route), attempt = attempt, kind = e.kind,
                                 message = e.message, seconds = clock.monotonic() - t0 })
    end
    return m, e
  end, policy)
  self.breaker.record(route, msg ~= nil, err)
  if msg then
    msg.route, msg.attempts = route, attempts
    return msg
  end
  err.route, err.attempts = route, attempts
  return nil, err
end

-- A gate's call: its route now, then its fallbacks as the floor allows. The failure of the
-- last route tried is returned, with err.tried listing every route and why it failed. req may
-- be a function(route) -> request, for requests that differ by provider (a verdict's schema
-- is a format for Ollama, a forced tool for Claude).
function Router:call(gate, req, opts)
  opts = opts or {}
  errors.argcheck(self.plan.routes[gate] ~= nil, "router: no route for '%s'%s", tostring(gate),
    schema.did_you_mean(gate, schema.sorted_keys(self.plan.routes)))
  local route = self:route_for(gate, opts.ctx)
  local tried = {}
  local previous
  for candidate in preset.route_chain(route) do
    if previous then
      local ok, why = may_fall_back(route, candidate)
      if not ok then
        self:emit("call.skipped", { gate = gate, route = label(candidate), reason = why, refused = true })
        break
      end
      self:emit("call.fallback", { gate = gate, from = label(previous), to = label(candidate),
                                   reason = tried[#tried].err.message })
    end
    local o = setmetatable({ gate = gate }, { __index = opts })
    local msg, err = self:call_route(candidate, type(req) == "function" and req(candidate) or req, o)
    if msg then
      msg.fallback_from = previous and tried or nil
      return msg
    end
    tried[#tried + 1] = { route = candidate, err = err }
    if err.kind == "cancelled" or err.kind == "interrupted" then break end   -- stopping, not failing
    previous = candidate
  end
  local last = tried[#tried].err
  last.tried = tried
  return nil, last
end

return M

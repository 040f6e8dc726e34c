-- Retrying requests that failed for a passing reason, the way Anthropic's SDKs do.
--
--   local retry = require "codeassist.retry"
--   local res, err = retry.call(function(attempt) return http.request{...} end, {
--     attempts = 3,            -- tries in all (the SDKs' max_retries = 2)
--     budget = 120,            -- seconds for all tries and waits together
--     on_retry = function(info) ... end,   -- {attempt, delay, err, reason} before each wait
--   })
--
-- Retried: connection failures and timeouts, HTTP 408, 409, 429, 5xx (529 included); an
-- `x-should-retry: true|false` header overrides that. The wait honours `retry-after-ms`, then
-- `retry-after` (seconds or an HTTP date) when it is between 0 and 60 s; otherwise capped
-- exponential backoff with jitter: min(base * 2^(n-1), max_delay) * (1 - jitter * random).
local task = require "codeassist.task"
local clock = require "codeassist.clock"
local errors = require "codeassist.errors"

local M = {}

M.defaults = { attempts = 3, budget = 300, base = 0.5, max_delay = 8, jitter = 0.25, trust_limit = 60 }

local RETRY_KINDS = {
  connect = true, dns = true, timeout_connect = true, timeout_first_byte = true,
  timeout_idle = true, timeout_total = true,
}

local function header(err, name)
  return type(err.headers) == "table" and err.headers[name] or nil
end

-- Whether err is worth another try, and a word on why.
function M.retryable(err)
  if type(err) ~= "table" then return false, "not a request failure" end
  if err.retryable ~= nil then return err.retryable, tostring(err.error_type or err.kind) end
  if err.kind == "http" then
    local say = header(err, "x-should-retry")
    if say == "true" then return true, "the server asked for a retry" end
    if say == "false" then return false, "the server said not to retry" end
    local s = err.status or 0
    if s == 408 or s == 409 or s == 429 or s >= 500 then return true, "HTTP " .. s end
    return false, "HTTP " .. s .. " will not change on a retry"
  end
  if RETRY_KINDS[err.kind] then return true, err.kind end
  return false, tostring(err.kind)
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9,
                 Oct = 10, Nov = 11, Dec = 12 }

-- "Wed, 21 Oct 2015 07:28:00 GMT" -> seconds since the epoch (UTC).
function M.parse_http_date(s)
  local d, mon, y, h, mi, sec = tostring(s):match("^%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT$")
  if not d or not MONTHS[mon] then return nil end
  local t = { year = tonumber(y), month = MONTHS[mon], day = tonumber(d), hour = tonumber(h),
              min = tonumber(mi), sec = tonumber(sec), isdst = false }
  -- os.time reads a local time: correct by this zone's offset at that moment.
  local as_local = os.time(t)
  local utc = os.date("!*t", as_local)
  utc.isdst = false
  return as_local + (as_local - os.time(utc))
end

-- Seconds the server asked us to wait, if it did and the value is believable.
function M.server_delay(err, opts)
  opts = opts or M.defaults
  local limit = opts.trust_limit or M.defaults.trust_limit
  local ms = tonumber(header(err, "retry-after-ms") or "")
  local s = ms and ms / 1000
  if not s then
    local ra = header(err, "retry-after")
    s = tonumber(ra or "")
    if not s and ra then
      local at = M.parse_http_date(ra)
      s = at and at - os.time()
    end
  end
  if s and s > 0 and s <= limit then return s end
  return nil
end

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

function M.backoff(attempt, opts)
  errors.argcheck(finite(attempt) and attempt >= 1, "retry.backoff: attempt must be a number >= 1, not %s", tostring(attempt))
  opts = opts or M.defaults
  local base, cap = opts.base or M.defaults.base, opts.max_delay or M.defaults.max_delay
  local jitter = opts.jitter or M.defaults.jitter
  local random = opts.random or math.random
  return math.min(base * 2 ^ (attempt - 1), cap) * (1 - jitter * random())
end

-- Calls fn(attempt) until it returns a non-nil first value or a failure not worth retrying,
-- within the attempt and time budget. Returns fn's results, or nil and the last failure
-- (with err.attempts set).
local function pack(...) return { n = select("#", ...), ... } end

function M.call(fn, opts)
  errors.argcheck(type(fn) == "function", "retry.call: the first argument must be a function(attempt), not a %s", type(fn))
  errors.argcheck(opts == nil or type(opts) == "table", "retry.call: options must be a table, not a %s", type(opts))
  for _, k in ipairs{ "attempts", "budget", "base", "max_delay", "jitter", "trust_limit" } do
    local v = opts and opts[k]
    errors.argcheck(v == nil or (finite(v) and v >= 0), "retry.call: %s must be a finite number >= 0, not %s", k, tostring(v))
  end
  errors.argcheck(not (opts and opts.attempts) or opts.attempts >= 1, "retry.call: attempts must be at least 1")
  opts = setmetatable(opts or {}, { __index = M.defaults })
  local sleep = opts.sleep or task.sleep
  local started = clock.monotonic()
  local attempt, waited = 0, 0
  while true do
    attempt = attempt + 1
    local r = pack(fn(attempt))
    if r[1] ~= nil then return unpack(r, 1, r.n) end
    local err = r[2]
    if type(err) == "table" then err.attempts = attempt end
    local again, reason = M.retryable(err)
    if not again or attempt >= opts.attempts then return nil, err end
    local delay = M.server_delay(err, opts) or M.backoff(attempt, opts)
    local spent = math.max(clock.monotonic() - started, waited)
    if spent + delay > opts.budget then
      if type(err) == "table" then err.budget_spent = true end
      return nil, err
    end
    if opts.on_retry then
      opts.on_retry{ attempt = attempt, next_attempt = attempt + 1, delay = delay, err = err, reason = reason }
    end
    waited = waited + delay
    local slept, why = sleep(delay)
    if not slept and why then return nil, err end   -- interrupted: stop retrying
  end
end

return M

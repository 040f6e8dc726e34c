-- Providers: where a route's calls go, and how.
--
--   local providers = require "codeassist.providers"
--   local msg, err = providers.complete(cfg, route, req, opts)
--
-- route = {provider = "anthropic" | "ollama", model}. Anthropic calls carry the key from the
-- environment and go only to providers.anthropic.base_url. Ollama calls go to the native
-- /api/chat, or to Ollama's /v1/messages with `protocol: anthropic`; an Ollama `api_key`
-- (for a reverse proxy) goes only to Ollama. A provider with several base URLs (a pool of GPU
-- servers) sends each call to the healthy server with the fewest calls in flight, and fails
-- over to the next when one cannot be reached.
local anthropic = require "codeassist.providers.anthropic"
local ollama = require "codeassist.providers.ollama"
local clock = require "codeassist.clock"
local errors = require "codeassist.errors"
local config = require "codeassist.config"

local M = {}

M.DOWN_SECONDS = 30
local pool = {}   -- base URL -> {in_flight, down_until}

local function state(url)
  pool[url] = pool[url] or { in_flight = 0, down_until = 0 }
  return pool[url]
end

-- The base URLs of a provider, as a list.
function M.base_urls(cfg, provider)
  local b = provider == "ollama" and cfg.providers.ollama.base_url or cfg.providers.anthropic.base_url
  return type(b) == "table" and b or { b }
end

-- Healthy servers first, fewest calls in flight first, config order otherwise.
function M.order(urls)
  local now = clock.monotonic()
  local list = {}
  for i, u in ipairs(urls) do list[i] = { url = u, i = i, s = state(u) } end
  table.sort(list, function(a, b)
    local da, db = a.s.down_until > now, b.s.down_until > now
    if da ~= db then return db end
    if a.s.in_flight ~= b.s.in_flight then return a.s.in_flight < b.s.in_flight end
    return a.i < b.i
  end)
  local out = {}
  for i, e in ipairs(list) do out[i] = e.url end
  return out
end


function M.settings(cfg, provider, base_url)
  if provider == "anthropic" then
    local a = cfg.providers.anthropic
    return { base_url = base_url or a.base_url, api_key = a.api_key, auth_token = a.auth_token }
  end
  local o = cfg.providers.ollama
  return { base_url = base_url, api_key = o.api_key, protocol = o.protocol, keep_alive = o.keep_alive }
end

-- A model call's deadlines: the config's `timeouts` over the built-in ones, then the caller's
-- (a table of some of {connect, first_byte, idle, total}, or seconds for the total). Every call
-- has a total deadline: a server sending keep-alives or a byte a second cannot hold it.
function M.timeouts(cfg, given)
  local t = {}
  for k, v in pairs(config.DEFAULT_TIMEOUTS) do t[k] = v end
  for k, v in pairs(type(cfg.timeouts) == "table" and cfg.timeouts or {}) do
    if t[k] and type(v) == "number" then t[k] = v end
  end
  if type(given) == "number" then
    t.total = given
  elseif type(given) == "table" then
    for k, v in pairs(given) do t[k] = v end
  end
  return t
end

-- The most bytes one answer may stream (limits.max_answer_bytes).
function M.max_answer_bytes(cfg)
  local limits = type(cfg.limits) == "table" and cfg.limits or {}
  return type(limits.max_answer_bytes) == "number" and limits.max_answer_bytes or config.DEFAULT_MAX_ANSWER_BYTES
end

local function call_one(cfg, route, req, opts, url)
  local settings = M.settings(cfg, route.provider, url)
  if route.provider == "anthropic" then
    return anthropic.complete(settings, route, req, opts)
  end
  if settings.protocol == "anthropic" then
    -- Ollama ignores the key on this path; a reverse proxy in front of it may not.
    local s = { base_url = url, api_key = settings.api_key or "ollama" }
    local o = setmetatable({ quirks = "ollama" }, { __index = opts })
    return anthropic.complete(s, route, req, o)
  end
  local o = setmetatable({ keep_alive = opts.keep_alive or settings.keep_alive }, { __index = opts })
  return ollama.complete(settings, route, req, o)
end

-- ===== shared by the providers' doctor checks =====

-- A base URL that ends in /v1 (the OpenAI-style path people paste) is the most common mistake.
function M.v1_problem(url, origin)
  url = require("codeassist.http").redact(url)
  local root = url:gsub("/v1/?$", "")
  return { check = "base_url", severity = "error",
           message = ("%s ends in /v1; requests would go to %s/v1/..."):format(origin or url, url),
           remedy = ("Use the server root: %s (codeassist adds the API path itself)"):format(root) }
end

function M.has_error(problems)
  for _, p in ipairs(problems) do if p.severity == "error" then return true end end
  return false
end

-- One model call along a route; msg.base_url tells which server answered.
function M.complete(cfg, route, req, opts)
  errors.argcheck(type(cfg) == "table" and type(cfg.providers) == "table",
    "providers.complete: the first argument must be the loaded config (config.load)")
  errors.argcheck(type(route) == "table" and (route.provider == "anthropic" or route.provider == "ollama"),
    "providers.complete: the route must be a table {provider = \"anthropic\"|\"ollama\", model = ...}")
  errors.argcheck(type(req) == "table", "providers.complete: the request must be a table {messages = ..., ...}")
  opts = setmetatable({ timeout = M.timeouts(cfg, (opts or {}).timeout), max_body = (opts or {}).max_body
                         or M.max_answer_bytes(cfg) }, { __index = opts })
  local last_err
  for _, url in ipairs(M.order(M.base_urls(cfg, route.provider))) do
    local s = state(url)
    s.in_flight = s.in_flight + 1
    local t0 = clock.monotonic()
    local ok, msg, err = pcall(call_one, cfg, route, req, opts, url)
    s.in_flight = s.in_flight - 1
    if not ok then error(msg, 0) end
    if msg then
      s.down_until = 0
      msg.provider, msg.base_url, msg.seconds = route.provider, url, clock.monotonic() - t0
      return msg
    end
    last_err = err
    if err.kind == "too_large" then   -- the answer's cap is the config's: name it
      err.message = err.message:gsub("%(max_body%)", "(limits.max_answer_bytes)")
    end
    if not errors.UNREACHABLE[err.kind] then break end
    s.down_until = clock.monotonic() + M.DOWN_SECONDS
  end
  return nil, last_err
end

return M

-- HTTP requests with streaming, on the host's event loop (codeassist.http_core).
--
--   local http = require "codeassist.http"
--   local res, err = http.request{ method = "POST", url = "http://127.0.0.1:11434/api/chat",
--     headers = { ["content-type"] = "application/json" }, body = json,
--     stream = "ndjson",                                    -- or "sse", or nil for a plain body
--     timeout = { connect = 10, first_byte = 600, idle = 120, total = 3600 } }
--   if not res then print(err.kind, err.message) end        -- kinds: errors.KINDS
--   for data, event in res:events() do ... end              -- SSE: data and event name
--   for obj in res:lines() do ... end                       -- NDJSON, decoded
--   local text = res:body()                                  -- plain body
--   if res.err then ... end                                  -- how a stream ended, if badly
--
-- request() returns once the response headers are in. A status >= 400 is a failure of kind
-- "http" carrying status, headers and the (capped) body. A redirect (3xx) is never followed (a
-- key must not go to another host): a plain request returns it (res.status, res.headers.
-- location); where a stream or JSON was asked for, it is a failure of kind "http" naming the
-- Location (redacted). max_body bounds a plain body and, on a stream, the bytes of all its
-- frames together (then the stream ends with kind "too_large"). Messages name the method and
-- URL with credentials redacted; header values other than a redirect's Location never appear
-- in them.
local core = require "codeassist.http_core"
local task = require "codeassist.task"
local cjson = require "cjson.safe"
local errors = require "codeassist.errors"
local json = require "codeassist.json"
local ffi = require "ffi"

local M = {}

-- The per-event hot path goes through LuaJIT's FFI (compiled into the loop's trace); the
-- classic transfer:next() is the fallback should the symbol be missing.
ffi.cdef[[
int codeassist_next_frame(void *t, const char **name, size_t *name_len,
                          const char **data, size_t *data_len);
]]
local C = ffi.C
local has_ffi_path = pcall(function() return C.codeassist_next_frame end)
local ffi_string = ffi.string

-- Query parameters whose values are secrets.
local SECRET_PARAMS = { key = true, api_key = true, apikey = true, token = true, access_token = true,
                        auth = true, password = true, secret = true, sig = true, signature = true }

-- The URL with user:password@ and secret query values replaced by "***".
function M.redact(url)
  url = tostring(url):gsub("^(%a[%w+.-]*://)[^/@?#]*@", "%1***@")
  url = url:gsub("^([^:/@?#]*:[^/@?#]*)@", "***@")   -- "user:pw@host" written without a scheme
  url = url:gsub("([?&])([^=&#]+)=([^&#]*)", function(sep, name, value)
    if SECRET_PARAMS[name:lower()] or name:lower():find("token", 1, true)
       or name:lower():find("key", 1, true) then
      return sep .. name .. "=***"
    end
  end)
  return url
end

local function failure(kind, method, url, text, extra)
  local e = extra or {}
  e.url, e.method = M.redact(url), method
  return errors.failure(kind, ("%s %s: %s"):format(method, e.url, text), e)
end

-- A short, single-line excerpt of a body for a message.
local function excerpt(body, limit)
  limit = limit or 300
  local s = tostring(body or ""):gsub("%s+", " "):gsub("%c", "?"):gsub("^ ", ""):gsub(" $", "")
  if #s > limit then s = s:sub(1, limit) .. "…" end
  return s
end
M.excerpt = excerpt

-- "Anthropic: {"error":{"type":..,"message":..}}" and "Ollama: {"error":"..."}": the text,
-- on one line and without control characters (it is the server's, and it gets printed).
local function error_text(body)
  local doc = cjson.decode(body or "")
  if type(doc) == "table" then
    local e = doc.error
    if type(e) == "table" and type(e.message) == "string" then
      return excerpt((type(e.type) == "string" and (e.type .. ": ") or "") .. e.message)
    elseif type(e) == "string" then
      return excerpt(e)
    end
  end
  return excerpt(body)
end
local function is_redirect(res)
  return res.status >= 300 and res.status < 400
end

-- A redirect as a failure: where it pointed, and what to do. Its body is not read.
local function redirect_failure(res)
  local location = res.headers.location
  return failure("http", res.method, res._raw_url, ("HTTP %d %s — codeassist does not follow redirects "
      .. "(set base_url to the final address)"):format(res.status,
      location and ("redirect to " .. excerpt(M.redact(location), 200)) or "redirect without a Location"),
    { status = res.status, headers = res.headers, location = location and M.redact(location) or nil })
end

-- Concurrency caps per origin (scheme://host:port), set with http.limit.
local limits = {}

local function origin(url)
  return (url:match("^(%a[%w+.-]*://[^/?#]*)") or url):gsub("^(%a[%w+.-]*://)[^@]*@", "%1"):lower()
end

-- At most n requests at once to the origin of base_url (nil removes the cap).
function M.limit(base_url, n)
  errors.argcheck(type(base_url) == "string", "http.limit: the first argument must be a base URL, not a %s", type(base_url))
  errors.argcheck(n == nil or (type(n) == "number" and n >= 1 and n % 1 == 0),
    "http.limit: the cap must be a whole number >= 1 (or nil to remove it), not %s", tostring(n))
  limits[origin(base_url)] = n and task.semaphore(n) or nil
end

-- CODEASSIST_RESOLVE="host:port:addr,...": fixed name resolution (tests map names to loopback).
local function resolve_list(opts)
  local list = {}
  for _, r in ipairs(opts.resolve or {}) do list[#list + 1] = r end
  for r in (os.getenv("CODEASSIST_RESOLVE") or ""):gmatch("[^,%s]+") do list[#list + 1] = r end
  return #list > 0 and list or nil
end

local Response = {}
Response.__index = Response

local function finish(res)
  if res._permit then
    res._permit:release()
    res._permit = nil
  end
end

-- Waits for the transfer to change; false and a failure when the wait itself ended badly.
local function await(tr, method, url)
  local ok, err = task.wait(tr, nil, tr)   -- a cancelled task unwinds there, closing tr
  if ok then return true end
  tr:close()
  if err.kind == "interrupted" then return false, failure("interrupted", method, url, "interrupted (SIGINT/SIGTERM)") end
  return false, failure("cancelled", method, url, "cancelled (" .. err.kind .. ")")
end

local function transfer_failure(tr, method, url)
  local kind, text = tr:failure()
  return failure(kind or "cancelled", method, url, text or "the request was closed")
end

local function wait_finished(tr, method, url)
  while tr:body() == false do
    local ok, err = await(tr, method, url)
    if not ok then return nil, err end
  end
  return true
end

local CONTENT_TYPES = {
  sse = { ["text/event-stream"] = true },
  ndjson = { ["application/x-ndjson"] = true, ["application/ndjson"] = true,
             ["application/jsonl"] = true, ["application/json"] = true },
}

function M.request(opts)
  errors.argcheck(type(opts) == "table", "http.request: give a table {url = ..., ...}, not a %s", type(opts))
  errors.argcheck(type(opts.url) == "string", "http.request: url must be a string, not a %s", type(opts.url))
  for _, f in ipairs{ { "method", "string" }, { "body", "string" }, { "headers", "table" }, { "resolve", "table" },
                      { "ca_file", "string" }, { "max_body", "number" }, { "max_event", "number" } } do
    local v = opts[f[1]]
    errors.argcheck(v == nil or type(v) == f[2], "http.request: %s must be a %s, not a %s", f[1], f[2], type(v))
  end
  errors.argcheck(opts.timeout == nil or type(opts.timeout) == "table" or type(opts.timeout) == "number",
    "http.request: timeout must be a table {connect, first_byte, idle, total} or seconds, not a %s", type(opts.timeout))
  local url = opts.url
  local method = (opts.method or (opts.body and "POST" or "GET")):upper()

  local permit = limits[origin(url)]
  if permit then
    local ok, why = permit:acquire()
    if not ok then
      return nil, failure(why.kind == "interrupted" and "interrupted" or "cancelled", method, url,
        "stopped while queued behind http.limit: " .. why.message)
    end
  end

  local ok, tr = pcall(core.open, {
    url = url, method = method, headers = opts.headers, body = opts.body, stream = opts.stream,
    timeout = opts.timeout, max_body = opts.max_body, max_event = opts.max_event,
    ca_file = opts.ca_file, resolve = resolve_list(opts),
  })
  if not ok then
    if permit then permit:release() end
    error(tr, 2)
  end
  local res = setmetatable({ url = M.redact(url), method = method, _t = tr, _permit = permit,
                             _raw_url = url }, Response)

  while not tr:status() do
    local st = tr:state()
    if st == "failed" or st == "closed" then
      finish(res)
      return nil, transfer_failure(tr, method, url)
    end
    local waited, err = await(tr, method, url)
    if not waited then finish(res); return nil, err end
  end
  res.status, res.headers = tr:status(), tr:headers()

  if res.status >= 400 then
    local waited, err = wait_finished(tr, method, url)
    if not waited then finish(res); return nil, err end
    local body = tr:body() or ""
    tr:close()
    finish(res)
    return nil, failure("http", method, url, ("HTTP %d: %s"):format(res.status, error_text(body)),
      { status = res.status, headers = res.headers, body = body })
  end

  if opts.stream and is_redirect(res) then
    res:close()
    return nil, redirect_failure(res)
  end

  local want = CONTENT_TYPES[opts.stream or ""]
  if want then
    local ctype = (res.headers["content-type"] or ""):match("^%s*([^;%s]+)") or ""
    if not want[ctype:lower()] then
      wait_finished(tr, method, url)
      local body = tr:head()
      tr:close()
      finish(res)
      return nil, failure("protocol", method, url,
        ("expected a %s stream but the server sent %s: %s"):format(opts.stream,
          ctype ~= "" and ctype or "no content-type", excerpt(body, 200)),
        { status = res.status, headers = res.headers, body = body })
    end
  end
  return res
end

-- The whole body of a plain (non-streaming) response, or nil and a failure.
function Response:body()
  local tr, method, url = self._t, self.method, self._raw_url
  local ok, err = wait_finished(tr, method, url)
  if not ok then self.err = err; finish(self); return nil, err end
  local body = tr:body()
  if not body then
    self.err = transfer_failure(tr, method, url)
    finish(self)
    return nil, self.err
  end
  finish(self)
  return body
end

-- The frame after waiting; sets self.err when the stream ended badly.
local function slow_next(self, tr)
  tr = tr or self._t
  while true do
    local data, name = tr:next()
    if data then return data, name end
    if data == nil then
      if tr:failure() then self.err = transfer_failure(tr, self.method, self._raw_url) end
      finish(self)
      return nil, self.err
    end
    local ok, err = await(tr, self.method, self._raw_url)
    if not ok then
      self.err = err
      finish(self)
      return nil, err
    end
  end
end

-- A function returning the next queued frame (data, name) or false/nil like transfer:next().
local function frame_reader(tr)
  if not has_ffi_path then
    return function() return tr:next() end
  end
  local ptr = ffi.cast("void *", tr:pointer())   -- a cdata pointer: compiled calls
  local name, name_len = ffi.new("const char *[1]"), ffi.new("size_t[1]")
  local data, data_len = ffi.new("const char *[1]"), ffi.new("size_t[1]")
  return function()
    local rc = C.codeassist_next_frame(ptr, name, name_len, data, data_len)
    if rc == 1 then
      local n = tonumber(name_len[0])
      return ffi_string(data[0], data_len[0]), n > 0 and ffi_string(name[0], n) or nil
    end
    if rc == 0 then return false end
    return nil
  end
end

-- for data, event_name in res:events() do ... end   (SSE; strings, undecoded)
function Response:events()
  local next_frame = frame_reader(self._t)
  local tr = self._t   -- keeps the transfer alive while its pointer is in use
  -- (the transfer bounds the stream as a whole by max_body: an endless answer ends too_large)
  return function()
    local data, name = next_frame()
    if not data then
      data, name = slow_next(self, tr)
      if not data then return data, name end
    end
    return data, name
  end
end

-- for obj in res:lines() do ... end   (NDJSON; each line decoded)
function Response:lines()
  local next_frame = frame_reader(self._t)
  local decode = cjson.decode
  return function()
    local line = next_frame()
    if not line then
      local err
      line, err = slow_next(self)
      if not line then return nil, err end
    end
    local obj, why = decode(line)
    if obj == nil then
      self.err = failure("protocol", self.method, self._raw_url,
        ("a line of the stream is not JSON (%s): %s"):format(why, excerpt(line, 200)))
      self:close()
      return nil, self.err
    end
    return obj
  end
end

-- GET url (or POST opts.body encoded as JSON) and decode the JSON answer: the document, or
-- nil and a failure (a body that is not JSON is kind "protocol"). opts: {body, headers, timeout}.
function M.json(url, opts)
  errors.argcheck(type(url) == "string", "http.json: url must be a string, not a %s", type(url))
  opts = opts or {}
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local body
  if opts.body ~= nil then
    local e
    body, e = json.encode(opts.body)
    errors.argcheck(body ~= nil, "http.json: the body cannot be encoded: %s", tostring(e))
    headers["content-type"] = "application/json"
  end
  local res, err = M.request{ url = url, method = body and "POST" or "GET", body = body,
    headers = headers, timeout = opts.timeout }
  if not res then return nil, err end
  if is_redirect(res) then
    res:close()
    return nil, redirect_failure(res)
  end
  local text, e = res:body()
  if not text then return nil, e end
  local doc = cjson.decode(text)
  if doc == nil then
    return nil, failure("protocol", res.method, url, "the answer is not JSON: " .. excerpt(text, 100))
  end
  return doc
end

function Response:info()
  return self._t:info()
end

function Response:close()
  self._t:close()
  finish(self)
end

return M

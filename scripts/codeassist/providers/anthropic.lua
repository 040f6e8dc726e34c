-- The Anthropic Messages adapter: POST {base}/v1/messages, streamed as SSE, accumulated into
-- one message of content blocks (text, thinking, tool_use). Works against Claude and any
-- Anthropic-compatible server; `quirks = "ollama"` handles Ollama's layer (no ping, no
-- signature, thinking on unless disabled).
local http = require "codeassist.http"
local json = require "codeassist.json"
local cjson = require "cjson.safe"
local ffi = require "ffi"

local M = {}

local VERSION = "2023-06-01"

local failure = require("codeassist.errors").failure

-- Request headers. The key goes only here, to this provider's own base URL.
function M.headers(settings)
  local h = { ["content-type"] = "application/json", ["anthropic-version"] = VERSION,
              accept = "text/event-stream" }
  if settings.api_key then h["x-api-key"] = settings.api_key end
  if settings.auth_token then h.authorization = "Bearer " .. settings.auth_token end
  return h
end

-- The request body for a call (internal format is already Anthropic's).
function M.body(req, route, quirks)
  local body = {
    model = route.model, max_tokens = req.max_tokens or 4096, stream = true,
    messages = req.messages, system = req.system, temperature = req.temperature,
    stop_sequences = req.stop_sequences,
  }
  if req.tools and #req.tools > 0 then
    body.tools = req.tools
    body.tool_choice = req.tool_choice
  end
  if req.thinking then
    body.thinking = { type = "enabled", budget_tokens = type(req.thinking) == "number" and req.thinking or 2048 }
  elseif quirks == "ollama" then
    body.thinking = { type = "disabled" }   -- Ollama turns thinking on by default
  end
  return body
end

-- Text put together from deltas, kept in C memory until it is whole. Lua memory would do for
-- the appending, but LuaJIT's collector lets garbage grow in step with what the heap retains:
-- with megabytes of text held, decoding every further delta touched more memory, and a
-- million deltas took 15 times as long as a hundred thousand.
pcall(ffi.cdef, "void *realloc(void *p, size_t n); void free(void *p);")   -- once per process
local C = ffi.C
local Text = {}
Text.__index = Text

local function new_text()
  return setmetatable({ len = 0, cap = 0 }, Text)
end

function Text:put(piece)
  local n, len = #piece, self.len
  if len + n > self.cap then
    local cap = math.max(4096, self.cap * 2, len + n)
    local old = self.ptr and ffi.gc(self.ptr, nil)
    local p = C.realloc(old, cap)
    if p == nil then
      if old then ffi.gc(old, C.free) end
      error("out of memory", 0)
    end
    self.ptr, self.cap = ffi.gc(ffi.cast("char *", p), C.free), cap
  end
  if n > 0 then ffi.copy(self.ptr + len, piece, n) end
  self.len = len + n
  return self
end

-- The text as a Lua string; the C memory is freed.
function Text:take()
  if not self.ptr then return "" end
  local s = ffi.string(self.ptr, self.len)
  C.free(ffi.gc(self.ptr, nil))
  self.ptr, self.len, self.cap = nil, 0, 0
  return s
end

-- The block field each kind of delta adds to.
local DELTA_FIELD = { text_delta = "text", thinking_delta = "thinking", signature_delta = "signature" }

-- Sets each collected field of a block to its text.
local function join_fields(block, fields)
  for field, text in pairs(fields) do block[field] = text:take() end
end

-- A server's JSON is checked before use: any field may hold anything. A field that is not what
-- the protocol says is a protocol failure naming the event, the field and what it held.
local describe = json.describe

local function wrong(event, field, value, expected)
  return failure("protocol", ("a %s event's %s is %s, expected %s"):format(event, field, describe(value), expected))
end

local absent = require("codeassist.json").absent
local function valid_index(i) return type(i) == "number" and i >= 0 and i < 10000 and i % 1 == 0 end

-- usage: token counts are numbers >= 0; other entries (service_tier, server_tool_use) are kept
-- when they are plain values.
local function usage_merge(into, from, event, field)
  if absent(from) then return end
  if type(from) ~= "table" then return wrong(event, field, from, "an object") end
  for k, v in pairs(from) do
    if type(k) == "string" and (k:find("_tokens$") or type(v) == "number") then
      if not absent(v) and not json.is_count(v) then
        return wrong(event, field .. "." .. k, v, "a number of tokens")
      end
      if not absent(v) then into[k] = v end
    elseif type(k) == "string" and (type(v) == "string" or type(v) == "boolean") then
      into[k] = v
    end
  end
end

-- Checks one event's fields; the failure, or nil when they are all usable.
local function check_event(name, ev, blocks, partial)
  if name:find("^content_block_") and not valid_index(ev.index) then
    return wrong(name, "index", ev.index, "a whole number from 0")
  end
  if name == "message_start" then
    local m = ev.message
    if type(m) ~= "table" then return wrong(name, "message", m, "an object") end
    for _, f in ipairs{ "id", "model" } do
      if not absent(m[f]) and type(m[f]) ~= "string" then return wrong(name, "message." .. f, m[f], "a string") end
    end
  elseif name == "content_block_start" then
    local b = ev.content_block
    if type(b) ~= "table" then return wrong(name, "content_block", b, "an object") end
    if type(b.type) ~= "string" then return wrong(name, "content_block.type", b.type, "a string") end
    if b.type == "tool_use" then
      for _, f in ipairs{ "id", "name" } do
        if type(b[f]) ~= "string" then return wrong(name, "content_block." .. f, b[f], "a string") end
      end
    end
    local field = b.type == "text" and "text" or b.type == "thinking" and "thinking" or nil
    if field and not absent(b[field]) and type(b[field]) ~= "string" then
      return wrong(name, "content_block." .. field, b[field], "a string")
    end
  elseif name == "content_block_delta" then
    if not blocks[ev.index + 1] then
      return failure("protocol", "a content_block_delta for a block that was never started")
    end
    local d = ev.delta
    if type(d) ~= "table" then return wrong(name, "delta", d, "an object") end
    if type(d.type) ~= "string" then return wrong(name, "delta.type", d.type, "a string") end
    local field = DELTA_FIELD[d.type]
    if field and type(d[field]) ~= "string" then return wrong(name, "delta." .. field, d[field], "a string") end
    if d.type == "input_json_delta" then
      if not partial[ev.index] then
        return failure("protocol", "an input_json_delta that is not part of a tool call's input: "
          .. describe(d.partial_json))
      end
      if not absent(d.partial_json) and type(d.partial_json) ~= "string" then
        return wrong(name, "delta.partial_json", d.partial_json, "a string")
      end
    end
  elseif name == "message_delta" then
    local d = ev.delta
    if not absent(d) and type(d) ~= "table" then return wrong(name, "delta", d, "an object") end
    for _, f in ipairs{ "stop_reason", "stop_sequence" } do
      local v = type(d) == "table" and d[f]
      if v and not absent(v) and type(v) ~= "string" then return wrong(name, "delta." .. f, v, "a string") end
    end
  end
end

-- Accumulates one streamed message; returns it, or nil and a failure.
-- Deltas are appended to one Text per block and field, made a string once, when the block
-- stops (or at the end for a block left open). Appending each delta to the string so far
-- copied it every time (quadratic); a table of parts keeps every delta alive as an object.
function M.read_stream(res, on_event)
  local msg = { role = "assistant", content = {}, usage = {} }
  local blocks, partial = msg.content, {}   -- partial: [index] = Text of a tool call's input
  local open = {}   -- [index] = { [field] = Text }, for text, thinking and signature
  local stopped = false
  for data, name in res:events() do
    local ev = cjson.decode(data)
    local bad
    if name == "error" then
      local e = type(ev) == "table" and type(ev.error) == "table" and ev.error or {}
      local etype = type(e.type) == "string" and http.excerpt(e.type, 60) or "error"
      local text = type(e.message) == "string" and http.excerpt(e.message) or http.excerpt(data, 200)
      res:close()
      return nil, failure("stream_error", ("the server reported %s: %s"):format(etype, text),
        { error_type = etype, retryable = etype == "overloaded_error" or etype == "api_error" or etype == "rate_limit_error" })
    elseif name == "ping" or name == nil then
      -- keep-alive, or data without an event name: ignored as the SDKs do
    elseif type(ev) ~= "table" then
      res:close()
      return nil, failure("protocol", ("a %s event is not a JSON object: %s"):format(http.excerpt(name, 60),
        http.excerpt(data, 120)))
    else
      bad = check_event(name, ev, blocks, partial)
    end
    if not bad then
      if name == "message_start" then
        msg.id, msg.model = ev.message.id, ev.message.model
        bad = usage_merge(msg.usage, ev.message.usage, name, "message.usage")
      elseif name == "content_block_start" then
        local block = {}
        for k, v in pairs(ev.content_block) do block[k] = v end
        if block.type == "tool_use" then block.input = nil; partial[ev.index] = new_text() end
        blocks[ev.index + 1] = block
        open[ev.index] = nil
      elseif name == "content_block_delta" then
        local block, d = blocks[ev.index + 1], ev.delta
        local field = DELTA_FIELD[d.type]
        if field then
          local fields = open[ev.index]
          if not fields then fields = {}; open[ev.index] = fields end
          local text = fields[field]
          if not text then
            text = new_text()
            local first = block[field]   -- what content_block_start carried, usually ""
            if type(first) == "string" then text:put(first) end
            fields[field] = text
          end
          text:put(d[field])
        elseif d.type == "input_json_delta" and type(d.partial_json) == "string" then
          partial[ev.index]:put(d.partial_json)
        end
      elseif name == "content_block_stop" then
        local block = blocks[ev.index + 1]
        if block and open[ev.index] then join_fields(block, open[ev.index]) end
        open[ev.index] = nil
        if block and block.type == "tool_use" then
          local text = partial[ev.index] and partial[ev.index]:take() or ""
          local input = text == "" and {} or cjson.decode(text)
          if type(input) ~= "table" then
            -- the model's mistake, not the stream's: the caller answers it with a tool error
            block.input, block.input_error = {}, ("not a JSON object: %s"):format(http.excerpt(text, 200))
          else
            block.input = input
          end
          partial[ev.index] = nil
        end
      elseif name == "message_delta" then
        local d = type(ev.delta) == "table" and ev.delta or {}
        if type(d.stop_reason) == "string" then msg.stop_reason = d.stop_reason end
        if type(d.stop_sequence) == "string" then msg.stop_sequence = d.stop_sequence end
        bad = usage_merge(msg.usage, ev.usage, name, "usage")
      elseif name == "message_stop" then
        stopped = true
      end
    end
    if bad then
      res:close()
      return nil, bad
    end
    if on_event then on_event(name, ev) end
  end
  if res.err then return nil, res.err end
  if not stopped then
    return nil, failure("protocol", "the stream ended before message_stop: the answer is incomplete")
  end
  -- Blocks that never got their content_block_stop keep what came.
  for index, fields in pairs(open) do join_fields(blocks[index + 1], fields) end
  -- A tool call cut off by max_tokens never got its content_block_stop: keep what came.
  for index, text in pairs(partial) do
    local block = blocks[index + 1]
    block.input, block.incomplete, block.partial_json = {}, true, text:take()
  end
  return msg
end

-- One call. settings: {base_url, api_key, auth_token}; route: {model}; req: internal request.
function M.complete(settings, route, req, opts)
  opts = opts or {}
  local base = settings.base_url:gsub("/+$", "")
  local body, why = json.encode(M.body(req, route, opts.quirks))   -- keeps json.array lists as []
  if not body then return nil, why end
  local res, err = http.request{
    method = "POST", url = base .. "/v1/messages", stream = "sse",
    headers = M.headers(settings),
    body = body,
    timeout = opts.timeout or require("codeassist.config").DEFAULT_TIMEOUTS,
    max_body = opts.max_body or require("codeassist.config").DEFAULT_MAX_ANSWER_BYTES,
    ca_file = settings.ca_file,
  }
  if not res then
    if err.kind == "http" then
      local doc = cjson.decode(err.body or "")
      local e = type(doc) == "table" and doc.error
      err.error_type = type(e) == "table" and type(e.type) == "string" and http.excerpt(e.type, 60) or nil
    end
    return nil, err
  end
  local rate = {}
  for k, v in pairs(res.headers) do
    if k:find("^anthropic%-ratelimit%-") then rate[k:sub(#"anthropic-ratelimit-" + 1)] = v end
  end
  local msg, failure_ = M.read_stream(res, opts.on_event)
  if not msg then return nil, failure_ end
  msg.rate_limits = next(rate) and rate or nil
  msg.request_id = res.headers["request-id"]
  return msg
end

-- ===== what the doctor checks =====

-- Problems of a Claude route (facts.claude from doctor/collect.lua); each {check, message,
-- remedy, severity}.
function M.assess_route(route, gate, facts)
  local c = facts.claude
  local list = {}
  if c.base_url:match("/v1/?$") then list[#list + 1] = require("codeassist.providers").v1_problem(c.base_url, c.origin) end
  if not c.key_set and not c.token_set then
    list[#list + 1] = { check = "credentials", severity = "error", message = "ANTHROPIC_API_KEY is not set",
      remedy = "export ANTHROPIC_API_KEY=sk-ant-... (or ANTHROPIC_AUTH_TOKEN), or route this gate to Ollama" }
  end
  return list
end

return M

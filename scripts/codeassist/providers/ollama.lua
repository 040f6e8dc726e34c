-- The native Ollama adapter: POST {base}/api/chat, streamed as NDJSON. The only path that can
-- size the context window per request (options.num_ctx), keep a model loaded (keep_alive) and
-- constrain a verdict with a JSON schema (format). Internal messages are Anthropic content
-- blocks; this file translates at the edge both ways.
local http = require "codeassist.http"
local cjson = require "cjson.safe"

local M = {}

M.MIN_CTX = 4096
M.CTX_STEP = 1024

local failure = require("codeassist.errors").failure

-- A reverse proxy in front of Ollama may want a key: sent only to Ollama's own base URL.
function M.headers(settings)
  local h = { ["content-type"] = "application/json", accept = "application/x-ndjson" }
  if settings.api_key and settings.api_key ~= "" and settings.api_key ~= "ollama" then
    h.authorization = "Bearer " .. settings.api_key
  end
  return h
end

local function text_of(content)
  if type(content) == "string" then return content end
  local parts = {}
  for _, b in ipairs(content or {}) do
    if b.type == "text" then parts[#parts + 1] = b.text end
  end
  return table.concat(parts)
end

-- Anthropic-style messages -> Ollama chat messages.
function M.messages(req)
  local out = {}
  if req.system then
    out[#out + 1] = { role = "system", content = type(req.system) == "string" and req.system or text_of(req.system) }
  end
  local names = {}   -- tool_use id -> tool name, for tool results
  for _, m in ipairs(req.messages or {}) do
    if type(m.content) == "string" then
      out[#out + 1] = { role = m.role, content = m.content }
    elseif m.role == "assistant" then
      local msg = { role = "assistant", content = "" }
      local texts, calls = {}, {}
      for _, b in ipairs(m.content) do
        if b.type == "text" then texts[#texts + 1] = b.text
        elseif b.type == "thinking" then msg.thinking = b.thinking
        elseif b.type == "tool_use" then
          names[b.id] = b.name
          calls[#calls + 1] = { id = b.id, ["function"] = { name = b.name, arguments = b.input or {} } }
        end
      end
      msg.content = table.concat(texts)
      if #calls > 0 then msg.tool_calls = calls end
      out[#out + 1] = msg
    else
      -- tool results first (Ollama's own layer orders them so), then the user's text
      for _, b in ipairs(m.content) do
        if b.type == "tool_result" then
          out[#out + 1] = { role = "tool", content = text_of(b.content), tool_call_id = b.tool_use_id,
                            tool_name = names[b.tool_use_id] }
        end
      end
      local text = text_of(m.content)
      local images = {}
      for _, b in ipairs(m.content) do
        if b.type == "image" and b.source and b.source.type == "base64" then images[#images + 1] = b.source.data end
      end
      if text ~= "" or #images > 0 then
        out[#out + 1] = { role = m.role, content = text, images = #images > 0 and images or nil }
      end
    end
  end
  return out
end

function M.tools(req)
  if not req.tools or #req.tools == 0 then return nil end
  local out = {}
  for _, t in ipairs(req.tools) do
    out[#out + 1] = { type = "function", ["function"] = { name = t.name, description = t.description,
                                                            parameters = t.input_schema } }
  end
  return out
end

-- The context window for this request: the prompt's estimated tokens x 1.25 plus the answer's
-- reserve, rounded up, at least MIN_CTX, at most the model's own context length — so Ollama
-- never silently drops the start of a long prompt.
function M.num_ctx(body, max_tokens, model_ctx)
  local chars = #(cjson.encode(body.messages) or "") + #(cjson.encode(body.tools or {}) or "")
  local want = math.ceil(chars / 4 * 1.25) + (max_tokens or 4096)
  want = math.max(M.MIN_CTX, math.ceil(want / M.CTX_STEP) * M.CTX_STEP)
  if model_ctx and model_ctx > 0 then want = math.min(want, model_ctx) end
  return want
end

function M.body(req, route, opts)
  local body = {
    model = route.model, stream = true, messages = M.messages(req), tools = M.tools(req),
    think = req.thinking and true or nil, format = req.format, keep_alive = opts.keep_alive,
  }
  body.options = { num_ctx = M.num_ctx(body, req.max_tokens, opts.context_length),
                   num_predict = req.max_tokens, temperature = req.temperature, stop = req.stop_sequences }
  return body
end

local STOP = { stop = "end_turn", length = "max_tokens", load = "end_turn", unload = "end_turn" }

-- Accumulates the NDJSON stream into one internal message.
function M.read_stream(res, on_event)
  local msg = { role = "assistant", content = {}, usage = {} }
  local text, thinking, calls = {}, {}, {}
  local final
  for line, err in res:lines() do
    if line.error then
      res:close()
      return nil, failure("stream_error", "the server reported: " .. tostring(line.error), { retryable = false })
    end
    local m = line.message or {}
    if type(m.thinking) == "string" and m.thinking ~= "" then thinking[#thinking + 1] = m.thinking end
    if type(m.content) == "string" and m.content ~= "" then text[#text + 1] = m.content end
    for _, c in ipairs(type(m.tool_calls) == "table" and m.tool_calls or {}) do
      local f = c["function"] or {}
      local input = f.arguments
      if type(input) == "string" then input = cjson.decode(input) end
      if type(input) ~= "table" then
        res:close()
        return nil, failure("protocol", ("the arguments of tool call %s are not a JSON object"):format(tostring(f.name)))
      end
      calls[#calls + 1] = { type = "tool_use", id = c.id or ("call_" .. #calls + 1), name = f.name, input = input }
    end
    if on_event then on_event(line) end
    if line.done then final = line end
  end
  if res.err then return nil, res.err end
  if not final then
    return nil, failure("protocol", "the stream ended before its final line (done: true): the answer is incomplete")
  end
  if #thinking > 0 then msg.content[#msg.content + 1] = { type = "thinking", thinking = table.concat(thinking) } end
  if #text > 0 or #calls == 0 then msg.content[#msg.content + 1] = { type = "text", text = table.concat(text) } end
  for _, c in ipairs(calls) do msg.content[#msg.content + 1] = c end
  msg.model = final.model
  msg.stop_reason = #calls > 0 and "tool_use" or STOP[final.done_reason or "stop"] or final.done_reason
  msg.done_reason = final.done_reason
  msg.usage = { input_tokens = final.prompt_eval_count or 0, output_tokens = final.eval_count or 0 }
  msg.durations = {
    total = (final.total_duration or 0) / 1e9, load = (final.load_duration or 0) / 1e9,
    prompt = (final.prompt_eval_duration or 0) / 1e9, generate = (final.eval_duration or 0) / 1e9,
  }
  return msg
end

function M.complete(settings, route, req, opts)
  opts = opts or {}
  local base = settings.base_url:gsub("/+$", "")
  local body = M.body(req, route, opts)
  local res, err = http.request{
    method = "POST", url = base .. "/api/chat", stream = "ndjson",
    headers = M.headers(settings), body = cjson.encode(body),
    timeout = opts.timeout or { connect = 10, first_byte = 900, idle = 180 },
  }
  if not res then return nil, err end
  local msg, e = M.read_stream(res, opts.on_event)
  if msg then msg.num_ctx = body.options.num_ctx end
  return msg, e
end

return M

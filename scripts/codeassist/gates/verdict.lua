-- A gate's verdict: strict JSON against the gate's schema, asked the way each path can
-- enforce it — Ollama's native `format` (the schema itself), Claude a forced tool call,
-- Ollama's /v1/messages (which ignores tool_choice) plain text parsed as JSON. The answer is
-- checked fail-closed; one repair is asked for; then the gate fails with the stated reason.
--
--   local verdict = require "codeassist.gates.verdict"
--   local v, info = verdict.ask(router, gate_name, { system = ..., prompt = ..., schema = ... }, opts)
--   -- v: the decoded verdict, or nil; info = {reason, attempts, msg (the last answer), route}
local cjson = require "cjson.safe"
local json = require "codeassist.json"

local M = {}

M.TOOL = "submit_verdict"

-- ===== checking against a JSON schema (the subset gate schemas use) =====

local function type_ok(t, v)
  if t == "object" then return type(v) == "table" and (next(v) == nil or #v == 0) end
  if t == "array" then return type(v) == "table" and (next(v) == nil or #v > 0) end
  if t == "string" then return type(v) == "string" end
  if t == "boolean" then return type(v) == "boolean" end
  if t == "integer" then return type(v) == "number" and v == v and v % 1 == 0 end
  if t == "number" then return type(v) == "number" and v == v end
  if t == "null" then return v == cjson.null end
  return true
end

-- true, or false and "findings[2].severity: 'bad' is not one of critical, high, ..."
function M.check(schema, value, path)
  path = path or ""
  local where = path == "" and "the answer" or path
  local t = schema.type
  if t and not type_ok(t, value) then
    return false, ("%s must be %s %s"):format(where, (t == "array" or t == "object" or t == "integer") and "an" or "a", t)
  end
  if schema.enum then
    for _, e in ipairs(schema.enum) do if e == value then goto enum_ok end end
    do return false, ("%s: '%s' is not one of %s"):format(where, tostring(value), table.concat(schema.enum, ", ")) end
    ::enum_ok::
  end
  if type(value) == "number" then
    if schema.minimum and value < schema.minimum then return false, ("%s must be at least %s"):format(where, schema.minimum) end
    if schema.maximum and value > schema.maximum then return false, ("%s must be at most %s"):format(where, schema.maximum) end
  end
  if t == "object" then
    for _, k in ipairs(schema.required or {}) do
      if value[k] == nil or value[k] == cjson.null and not (schema.properties[k] or {}).nullable then
        return false, ("%s: '%s' is required"):format(where, k)
      end
    end
    for k, v in pairs(value) do
      local sub = schema.properties and schema.properties[k]
      if sub then
        local ok, why = M.check(sub, v, path == "" and k or (path .. "." .. k))
        if not ok then return false, why end
      end
    end
  elseif t == "array" and schema.items then
    for i, v in ipairs(value) do
      local ok, why = M.check(schema.items, v, ("%s[%d]"):format(path == "" and "items" or path, i))
      if not ok then return false, why end
    end
  end
  return true
end

-- The JSON object in a model's text: the whole answer, a ```json fence, or the first {...}
-- that decodes.
function M.extract(text)
  if type(text) ~= "string" then return nil end
  local t = text:gsub("^%s+", ""):gsub("%s+$", "")
  local v = cjson.decode(t)
  if type(v) == "table" then return v end
  local fenced = t:match("```[%w]*%s*\n(.-)\n%s*```")
  v = fenced and cjson.decode(fenced)
  if type(v) == "table" then return v end
  local s = t:find("{", 1, true)
  while s do
    local candidate = t:match("^%b{}", s)
    v = candidate and cjson.decode(candidate)
    if type(v) == "table" then return v end
    s = t:find("{", s + 1, true)
  end
  return nil
end

-- ===== asking =====

-- How this route can be held to a schema.
function M.mechanism(cfg, route)
  if route.provider == "anthropic" then return "tool" end
  if (cfg.providers.ollama.protocol or "native") == "anthropic" then return "text" end
  return "format"
end

local function request(gate, mechanism, schema, messages, system, max_tokens)
  local req = { system = system, messages = messages, max_tokens = max_tokens or 2048, temperature = 0 }
  if mechanism == "format" then
    req.format = schema
  elseif mechanism == "tool" then
    req.tools = { { name = M.TOOL, description = ("Submit the %s gate's verdict."):format(gate),
                    input_schema = schema } }
    req.tool_choice = { type = "tool", name = M.TOOL }
  end
  return req
end

local function answer_of(msg, mechanism)
  local text = {}
  for _, b in ipairs(msg.content or {}) do
    if mechanism == "tool" and b.type == "tool_use" and b.name == M.TOOL then
      if b.input_error then return nil, "the verdict was not valid JSON: " .. b.input_error end
      return b.input
    end
    if b.type == "text" then text[#text + 1] = b.text end
  end
  local joined = table.concat(text)
  if mechanism == "tool" and joined == "" then return nil, "no verdict was submitted" end
  local v = M.extract(joined)
  if not v then return nil, "the answer was not a JSON object: " .. joined:sub(1, 200) end
  return v
end

-- ask(router, gate, {system, prompt, schema}, {ctx, timeout}) -> verdict | nil, info
function M.ask(router, gate, spec, opts)
  opts = opts or {}
  local messages = { { role = "user", content = spec.prompt } }
  -- the request for whichever route serves it: a fallback may be another provider
  local function for_route(route)
    local mechanism = M.mechanism(router.cfg, route)
    local system = spec.system .. "\n\nAnswer with your verdict as JSON that matches this schema exactly: "
      .. (json.encode(spec.schema) or "{}")
      .. (mechanism == "tool" and ("\nSubmit it by calling the " .. M.TOOL .. " tool.") or "\nAnswer with the JSON object only.")
    return request(gate, mechanism, spec.schema, messages, system, spec.max_tokens)
  end
  local info = { attempts = 0 }
  for attempt = 1, 2 do
    info.attempts = attempt
    local msg, err = router:call(gate, for_route, { ctx = opts.ctx, timeout = opts.timeout, keep_alive = opts.keep_alive })
    if not msg then
      info.reason, info.failure = "no answer: " .. err.message, err
      return nil, info
    end
    info.msg, info.route, info.usage = msg, msg.route, msg.usage
    local mechanism = M.mechanism(router.cfg, msg.route)
    info.mechanism = mechanism
    local v, why = answer_of(msg, mechanism)
    local ok = v ~= nil
    if ok then ok, why = M.check(spec.schema, v) end
    if ok then return v, info end
    info.reason = why
    if attempt == 1 then
      -- one repair: the model hears what was wrong and answers again
      local content = {}
      for _, b in ipairs(msg.content or {}) do
        if b.type == "text" and b.text ~= "" then content[#content + 1] = { type = "text", text = b.text }
        elseif b.type == "tool_use" then content[#content + 1] = { type = "tool_use", id = b.id, name = b.name, input = b.input } end
      end
      if #content == 0 then content[1] = { type = "text", text = "(no answer)" } end
      messages[#messages + 1] = { role = "assistant", content = content }
      local repair = ("Your verdict was not valid: %s. Answer again with JSON that matches the schema exactly."):format(why)
      local tool_use
      for _, b in ipairs(content) do if b.type == "tool_use" then tool_use = b end end
      if tool_use then
        messages[#messages + 1] = { role = "user", content = { { type = "tool_result", tool_use_id = tool_use.id,
          is_error = true, content = repair } } }
      else
        messages[#messages + 1] = { role = "user", content = repair }
      end
    end
  end
  info.reason = "no valid verdict after one repair: " .. tostring(info.reason)
  return nil, info
end

return M

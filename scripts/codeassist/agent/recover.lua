-- Local models often print a tool call instead of making one. These are the shapes their
-- chat templates teach them (Ollama's templates for Qwen 2.5/3 and Hermes, Qwen3-Coder's XML,
-- Llama 3.x, Mistral), plus a JSON object in a code fence: each becomes a real call, so the
-- conversation goes on in the proper form.
--
--   <tool_call>{"name": "read", "arguments": {"path": "a.c"}}</tool_call>      Qwen 2.5/3, Hermes
--   <tool_call><function=read><parameter=path>a.c</parameter></function></tool_call>   Qwen3-Coder
--   <|python_tag|>{"name": "read", "parameters": {"path": "a.c"}}              Llama 3.1+
--   {"name": "read", "parameters": {"path": "a.c"}}                            Llama 3.2 (the whole answer)
--   [TOOL_CALLS] [{"name": "read", "arguments": {"path": "a.c"}}]              Mistral
--   ```json {"name": "read", "arguments": {...}} ```                           any (the whole answer)
--
-- Prose is never taken for a call: tagged calls count only when they end the answer, a fence
-- or a bare object only when it is the whole answer, and an object only when it names a tool
-- and carries its arguments.
local cjson = require "cjson.safe"

local M = {}

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- {name, input} from a decoded object that names a known tool and carries its arguments.
local function as_call(obj, known)
  if type(obj) ~= "table" then return nil end
  if type(obj["function"]) == "table" then obj = obj["function"] end   -- {"type":"function","function":{...}}
  local name = obj.name
  if type(name) ~= "string" or not known[name] then return nil end
  local input = obj.arguments
  if input == nil then input = obj.parameters end
  if input == nil then input = obj.input end
  if type(input) == "string" then input = cjson.decode(input) end
  if type(input) ~= "table" then return nil end
  return { name = name, input = input }
end

local function decode_calls(text, known)
  local decoded = cjson.decode(text)
  if type(decoded) ~= "table" then return nil end
  local list = #decoded > 0 and decoded or { decoded }
  local calls = {}
  for _, o in ipairs(list) do
    local c = as_call(o, known)
    if not c then return nil end     -- all of it must be calls, or none is taken
    calls[#calls + 1] = c
  end
  return #calls > 0 and calls or nil
end

-- Qwen3-Coder: <function=NAME><parameter=KEY>VALUE</parameter>...</function>. Values are
-- text; the tool's schema says which are numbers or booleans.
local function xml_call(body, known)
  local name = body:match("^%s*<function=([%w_%-]+)>")
  local tool = name and known[name]
  if not tool then return nil end
  local input = {}
  local props = type(tool) == "table" and tool.input_schema and tool.input_schema.properties or {}
  for key, value in body:gmatch("<parameter=([%w_%-]+)>\n?(.-)\n?</parameter>") do
    local kind = props[key] and props[key].type
    if kind == "integer" or kind == "number" then input[key] = tonumber(value) or value
    elseif kind == "boolean" then input[key] = value == "true" and true or value == "false" and false or value
    else input[key] = value end
  end
  return { name = name, input = input }
end

-- The <tool_call> blocks that end the text (nothing after the last one), and the text before.
local function tagged(text, known)
  local calls, pos, first = {}, 1, nil
  while true do
    local s, e = text:find("<tool_call>", pos, true)
    if not s then break end
    local cs, ce = text:find("</tool_call>", e + 1, true)
    if not cs then return nil end
    first = first or s
    local body = text:sub(e + 1, cs - 1)
    local got = body:find("<function=", 1, true) and { xml_call(body, known) } or decode_calls(trim(body), known)
    if not got or #got == 0 then return nil end
    for _, c in ipairs(got) do calls[#calls + 1] = c end
    pos = ce + 1
  end
  if #calls == 0 or text:sub(pos):find("%S") then return nil end
  return calls, text:sub(1, first - 1)
end

-- The tool calls printed in text, for the tools in known (name -> tool, or true); nil when it
-- is not a call. Also returns the prose before the calls.
function M.calls_in_text(text, known)
  if type(text) ~= "string" or not text:find("%S") then return nil end
  local calls, prose = tagged(text, known)
  if calls then return calls, trim(prose) end
  local t = trim(text)
  for _, tag in ipairs{ "<|python_tag|>", "[TOOL_CALLS]" } do
    local s, e = t:find(tag, 1, true)
    if s then
      calls = decode_calls(trim(t:sub(e + 1)), known)
      if calls then return calls, trim(t:sub(1, s - 1)) end
    end
  end
  local fenced = t:match("^```[%w]*%s*\n(.*)\n%s*```$")
  if fenced and not fenced:find("```", 1, true) then
    calls = decode_calls(trim(fenced), known)
    if calls then return calls, "" end
  end
  if t:sub(1, 1) == "{" or t:sub(1, 1) == "[" then
    calls = decode_calls(t, known)
    if calls then return calls, "" end
  end
  return nil
end

return M
